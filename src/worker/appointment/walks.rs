//! The walk role: objects named `walk:…` (the same `AppointmentLedger` class) continue a walk
//! the Worker started (`crate::worker::walk`: the reminder sweep, a destination's release), one
//! batch per alarm, until nothing is left. The walk is kept in `meta` (`walk`, and `walk_at`,
//! when its next batch is due); a batch whose calls failed is tried again 30 s later.

use super::error::Result;
use serde_json::json;

use super::storage::now_ms;
use super::AppointmentLedger;
use crate::settings::Settings;
use crate::support::object_store;
use crate::worker::runtime::log;
use crate::worker::walk::{batch, Walk};

/// A batch whose calls failed is tried again this much later.
const WALK_RETRY_MS: i64 = 30_000;

impl AppointmentLedger {
    /// Keeps `walk` (replacing one in progress), due now.
    pub(super) fn keep_walk(&self, walk: &Walk) -> Result<()> {
        self.set_walk(Some(walk), now_ms())
    }

    fn set_walk(&self, walk: Option<&Walk>, at: i64) -> Result<()> {
        match walk {
            Some(walk) => {
                for (key, value) in [("walk", walk.to_text()), ("walk_at", at.to_string())] {
                    self.exec(&object_store::meta_set(key, &value))?;
                }
            }
            None => {
                for key in ["walk", "walk_at"] {
                    self.exec(&object_store::meta_delete(key))?;
                }
            }
        }
        Ok(())
    }

    fn walk(&self) -> Result<Option<(Walk, i64)>> {
        let Some(text) = self.text_of(&object_store::meta_get("walk"))? else {
            return Ok(None);
        };
        let at = self
            .text_of(&object_store::meta_get("walk_at"))?
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0);
        Ok(Walk::from_text(&text).map(|w| (w, at)))
    }

    /// When the walk's next batch is due.
    pub(super) fn walk_wake(&self) -> Result<Option<i64>> {
        Ok(self.walk()?.map(|(_, at)| at))
    }

    /// Runs the walk's next batch when it is due.
    pub(super) async fn continue_walk(&self, settings: &Settings) -> Result<()> {
        let Some((walk, at)) = self.walk()? else {
            return Ok(());
        };
        if at > now_ms() {
            return Ok(());
        }
        match batch(&self.env, settings, &walk).await {
            Ok((done, rest)) => {
                let at = if done.failed > 0 {
                    now_ms() + WALK_RETRY_MS
                } else {
                    now_ms()
                };
                self.set_walk(rest.as_ref(), at)?;
                log::warn(
                    settings.debug,
                    "walk batch",
                    json!({ "walk": walk.object_name(), "done": done.to_json() }),
                );
            }
            Err(e) => {
                self.set_walk(Some(&walk), now_ms() + WALK_RETRY_MS)?;
                log::failed(settings.debug, "walk batch failed", &e);
            }
        }
        Ok(())
    }
}
