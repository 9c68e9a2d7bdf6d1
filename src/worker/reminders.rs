//! `AppointmentReminders`: one Durable Object per appointment (`id_from_name(appointment_id)`),
//! bound as `REMINDERS`. It keeps that appointment's reminders in its own SQLite storage and
//! arms its single alarm for the earliest pending one. When the alarm fires it fetches fresh
//! appointment, patient, doctor and clinic, and POSTs the reminder context to
//! `REMINDER_CALLBACK_URL`, signed with `REMINDER_SIGNING_KEY`; on 2xx the reminder is `sent`
//! and `reminder_sent_at` is written. An appointment no longer active is not reminded (the
//! reminder is `cancelled` with the reason). Failures retry with jittered exponential backoff
//! counted in our own `attempts`, then `failed`. `alarm()` never fails: every error re-arms.
//!
//! Internal API (called by the Worker): `POST /schedule`, `POST /plan`, `POST /cancel`,
//! `POST /cancel-pending`, `GET /list`.

use std::time::Duration;

use serde::Deserialize;
use serde_json::{json, Value};
use worker::{durable_object, DurableObject, Env, Method, Request, Response, Result, State};

use super::env::{client_for, settings};
use super::fetch_client::{FetchClient, WorkerClock};
use super::log;
use super::queued_store::QueuedStore;
use crate::enrich::enrich;
use crate::http::{Clock, HttpClient, HttpRequest};
use crate::reminder::{
    context_json, decide_fire, plan_auto, reminder_id, retry_delay_ms, FireDecision, Reminder,
    ReminderState, MAX_RETRY_MS,
};
use crate::schedule::{ScheduleStore, ScheduleWrite};
use crate::settings::Settings;
use crate::signature::{sign, RustMac, SIGNATURE_HEADER};

const CALLBACK_TIMEOUT_MS: u32 = 15_000;
/// When processing itself fails, try again this much later.
const RECOVERY_DELAY_MS: i64 = 60_000;

/// The Durable Object.
#[durable_object]
pub struct AppointmentReminders {
    state: State,
    env: Env,
}

#[derive(Deserialize)]
struct Row {
    id: String,
    appointment_id: String,
    fire_at: f64,
    source: String,
    state: String,
    attempts: f64,
    last_error: Option<String>,
}

impl Row {
    fn reminder(self) -> Reminder {
        Reminder {
            id: self.id,
            appointment_id: self.appointment_id,
            fire_at: self.fire_at as i64,
            source: self.source,
            state: ReminderState::parse(&self.state).unwrap_or(ReminderState::Failed),
            attempts: self.attempts.max(0.0) as u32,
            last_error: self.last_error,
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScheduleBody {
    appointment_id: String,
    fire_at: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PlanBody {
    appointment_id: String,
    start_time: i64,
    create_missing: bool,
}

#[derive(Deserialize)]
struct CancelBody {
    id: String,
}

#[derive(Deserialize)]
struct CancelPendingBody {
    reason: String,
}

fn now_ms() -> i64 {
    WorkerClock.now_ms()
}

impl DurableObject for AppointmentReminders {
    fn new(state: State, env: Env) -> Self {
        // Errors here surface on first use, where they are answered as 500s.
        let _ = state.storage().sql().exec(
            "CREATE TABLE IF NOT EXISTS reminders (id TEXT PRIMARY KEY, appointment_id TEXT NOT NULL, \
             fire_at INTEGER NOT NULL, source TEXT NOT NULL, state TEXT NOT NULL, \
             attempts INTEGER NOT NULL DEFAULT 0, last_error TEXT, next_attempt_at INTEGER NOT NULL, \
             updated_at INTEGER NOT NULL)",
            None,
        );
        AppointmentReminders { state, env }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        match (req.method(), req.path().as_str()) {
            (Method::Post, "/schedule") => {
                let body: ScheduleBody = req.json().await?;
                let suffix = format!("m{:016x}", (js_sys::Math::random() * 2f64.powi(53)) as u64);
                let id = reminder_id(&body.appointment_id, &suffix);
                self.insert(&id, &body.appointment_id, body.fire_at, "manual")?;
                self.arm_next().await?;
                let reminder = self.get(&id)?;
                Ok(Response::from_json(&reminder)?.with_status(201))
            }
            (Method::Post, "/plan") => {
                let body: PlanBody = req.json().await?;
                let outcome = self.plan(&body).await?;
                Response::from_json(&outcome)
            }
            (Method::Post, "/cancel") => {
                let body: CancelBody = req.json().await?;
                let Some(reminder) = self.find(&body.id)? else {
                    return Response::error("Reminder not found", 404);
                };
                match reminder.state {
                    ReminderState::Pending => {
                        self.set_state(&body.id, ReminderState::Cancelled, Some("cancelled by admin"))?;
                        self.arm_next().await?;
                        Response::from_json(&self.get(&body.id)?)
                    }
                    ReminderState::Cancelled => Response::from_json(&reminder),
                    ReminderState::Sent | ReminderState::Failed => Ok(Response::from_json(
                        &json!({ "error": format!("Reminder is already {}", reminder.state.as_str()) }),
                    )?
                    .with_status(409)),
                }
            }
            (Method::Post, "/cancel-pending") => {
                let body: CancelPendingBody = req.json().await?;
                let cancelled = self.cancel_pending(&body.reason)?;
                self.arm_next().await?;
                Response::from_json(&json!({ "cancelled": cancelled }))
            }
            (Method::Get, "/list") => Response::from_json(&json!({ "reminders": self.list()? })),
            _ => Response::error("Not Found", 404),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        if let Err(e) = self.fire_due().await {
            let debug = settings(&self.env).debug;
            log::warn(
                debug,
                "reminder alarm failed; re-armed",
                json!({ "error": e.to_string() }),
            );
            // Re-arm no later than the recovery delay, whatever else failed.
            let _ = self
                .state
                .storage()
                .set_alarm(Duration::from_millis(RECOVERY_DELAY_MS as u64))
                .await;
        }
        Response::ok("")
    }
}

impl AppointmentReminders {
    fn rows(&self, filter: &str, params: Vec<wasm_bindgen::JsValue>) -> Result<Vec<Reminder>> {
        let rows: Vec<Row> = self
            .state
            .storage()
            .sql()
            .exec_raw(
                &format!(
                    "SELECT id, appointment_id, fire_at, source, state, attempts, last_error \
                     FROM reminders WHERE {filter} ORDER BY fire_at, id"
                ),
                params,
            )?
            .to_array()?;
        Ok(rows.into_iter().map(Row::reminder).collect())
    }

    fn list(&self) -> Result<Vec<Reminder>> {
        self.rows("1 = 1", vec![])
    }

    fn find(&self, id: &str) -> Result<Option<Reminder>> {
        Ok(self.rows("id = ?", vec![id.into()])?.into_iter().next())
    }

    fn get(&self, id: &str) -> Result<Reminder> {
        self.find(id)?
            .ok_or_else(|| worker::Error::RustError("reminder vanished".into()))
    }

    fn insert(&self, id: &str, appointment_id: &str, fire_at: i64, source: &str) -> Result<()> {
        self.state.storage().sql().exec_raw(
            "INSERT OR IGNORE INTO reminders (id, appointment_id, fire_at, source, state, attempts, \
             last_error, next_attempt_at, updated_at) VALUES (?, ?, ?, ?, 'pending', 0, NULL, ?, ?)",
            vec![
                id.into(),
                appointment_id.into(),
                (fire_at as f64).into(),
                source.into(),
                (fire_at as f64).into(),
                (now_ms() as f64).into(),
            ],
        )?;
        Ok(())
    }

    fn set_state(&self, id: &str, state: ReminderState, note: Option<&str>) -> Result<()> {
        self.state.storage().sql().exec_raw(
            "UPDATE reminders SET state = ?, last_error = COALESCE(?, last_error), updated_at = ? WHERE id = ?",
            vec![
                state.as_str().into(),
                note.map_or(wasm_bindgen::JsValue::NULL, Into::into),
                (now_ms() as f64).into(),
                id.into(),
            ],
        )?;
        Ok(())
    }

    /// Cancels every pending reminder with `reason`.
    fn cancel_pending(&self, reason: &str) -> Result<usize> {
        let pending = self.rows("state = 'pending'", vec![])?;
        for r in &pending {
            self.set_state(&r.id, ReminderState::Cancelled, Some(reason))?;
        }
        Ok(pending.len())
    }

    /// Makes the automatic reminders for `start_time` exist (those still ahead); pending ones
    /// that belong to another start time (a moved appointment) are cancelled. With `create_missing` false nothing happens unless the
    /// appointment already has automatic reminders. Re-arms the alarm if it was lost.
    async fn plan(&self, body: &PlanBody) -> Result<Value> {
        let settings = settings(&self.env);
        let all = self.list()?;
        let has_auto = all.iter().any(|r| r.source.starts_with("auto:"));
        let mut created = 0;
        let mut cancelled = 0;
        if body.create_missing || has_auto {
            let planned = plan_auto(
                &body.appointment_id,
                body.start_time,
                &settings.reminders.offsets,
            );
            let now = now_ms();
            for r in all
                .iter()
                .filter(|r| r.state == ReminderState::Pending && r.source.starts_with("auto:"))
            {
                if !planned.iter().any(|p| p.id == r.id) {
                    self.set_state(
                        &r.id,
                        ReminderState::Cancelled,
                        Some("appointment start time changed"),
                    )?;
                    cancelled += 1;
                }
            }
            for p in planned.iter().filter(|p| p.fire_at > now) {
                if !all.iter().any(|r| r.id == p.id) {
                    self.insert(&p.id, &body.appointment_id, p.fire_at, &p.source)?;
                    created += 1;
                }
            }
        }
        let had_alarm = self.state.storage().get_alarm().await?.is_some();
        let armed = self.arm_next().await?;
        Ok(
            json!({ "created": created, "cancelled": cancelled, "rearmed": armed && !had_alarm && created == 0 }),
        )
    }

    /// Arms the alarm for the earliest pending attempt, or clears it. True if one is armed.
    async fn arm_next(&self) -> Result<bool> {
        #[derive(Deserialize)]
        struct Next {
            next: Option<f64>,
        }
        let next: Next = self
            .state
            .storage()
            .sql()
            .exec(
                "SELECT MIN(next_attempt_at) AS next FROM reminders WHERE state = 'pending'",
                None,
            )?
            .one()?;
        let storage = self.state.storage();
        match next.next {
            Some(at) => {
                let delay = (at as i64 - now_ms()).max(0) as u64;
                storage.set_alarm(Duration::from_millis(delay)).await?;
                Ok(true)
            }
            None => {
                storage.delete_alarm().await?;
                Ok(false)
            }
        }
    }

    async fn fire_due(&self) -> Result<()> {
        let settings = settings(&self.env);
        let due = self.rows(
            "state = 'pending' AND next_attempt_at <= ?",
            vec![(now_ms() as f64).into()],
        )?;
        for reminder in due {
            if let Err(e) = self.fire_one(&reminder, &settings).await {
                self.attempt_failed(&reminder, &e, &settings)?;
            }
        }
        self.arm_next().await?;
        Ok(())
    }

    /// One delivery attempt. `Err` is a retryable failure (its text is recorded).
    async fn fire_one(
        &self,
        reminder: &Reminder,
        settings: &Settings,
    ) -> std::result::Result<(), String> {
        let url = settings
            .reminders
            .callback_url
            .as_deref()
            .ok_or("REMINDER_CALLBACK_URL is not set")?;
        let client = client_for(&settings.api);
        let found = enrich(&client, &reminder.appointment_id, None, false)
            .await
            .map_err(|e| format!("appointment fetch failed: {e}"))?;
        // A cancel may have arrived while we were fetching.
        if self.find(&reminder.id).ok().flatten().map(|r| r.state) != Some(ReminderState::Pending) {
            return Ok(());
        }
        if let FireDecision::Cancel(reason) = decide_fire(&found.appointment) {
            return self
                .set_state(&reminder.id, ReminderState::Cancelled, Some(&reason))
                .map_err(|e| e.to_string());
        }
        let body = context_json(
            &reminder.id,
            &reminder.appointment_id,
            reminder.fire_at,
            &found,
        )
        .to_string()
        .into_bytes();
        let mut headers = vec![("Content-Type".to_owned(), "application/json".to_owned())];
        if let Some(key) = settings.reminders.signing_key.as_deref() {
            let t = now_ms().div_euclid(1000);
            headers.push((
                SIGNATURE_HEADER.to_owned(),
                sign(&body, key.as_bytes(), t, &RustMac),
            ));
        }
        let request = HttpRequest {
            method: crate::http::Method::Post,
            url: url.to_owned(),
            headers,
            body: Some(body),
            timeout_ms: CALLBACK_TIMEOUT_MS,
        };
        match FetchClient.send(request).await {
            Ok(r) if (200..300).contains(&r.status) => {}
            Ok(r) => return Err(format!("callback answered {}", r.status)),
            Err(e) => return Err(format!("callback unreachable: {e}")),
        }
        self.state
            .storage()
            .sql()
            .exec_raw(
                "UPDATE reminders SET state = 'sent', attempts = attempts + 1, last_error = NULL, \
                 updated_at = ? WHERE id = ?",
                vec![(now_ms() as f64).into(), reminder.id.as_str().into()],
            )
            .map_err(|e| e.to_string())?;
        // Bookkeeping in D1 through the ordered write queue; the reminder is sent either way.
        let write = ScheduleWrite::MarkReminderSent {
            appointment_id: reminder.appointment_id.clone(),
            at: now_ms().div_euclid(1000),
        };
        let recorded = match QueuedStore::new(&self.env) {
            Ok(store) => store.apply(&[write]).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = recorded {
            log::warn(
                settings.debug,
                "reminder_sent_at not recorded",
                json!({ "error": e }),
            );
        }
        Ok(())
    }

    fn attempt_failed(&self, reminder: &Reminder, error: &str, settings: &Settings) -> Result<()> {
        let attempts = reminder.attempts + 1;
        let (state, next) = if attempts >= settings.reminders.max_attempts {
            (ReminderState::Failed, now_ms())
        } else {
            let delay = retry_delay_ms(
                attempts,
                settings.reminders.retry_base_ms,
                MAX_RETRY_MS,
                js_sys::Math::random(),
            );
            (ReminderState::Pending, now_ms() + delay)
        };
        log::warn(
            settings.debug,
            "reminder delivery failed",
            json!({ "reminderId": reminder.id, "attempts": attempts, "state": state.as_str(), "error": error }),
        );
        self.state.storage().sql().exec_raw(
            "UPDATE reminders SET state = ?, attempts = ?, last_error = ?, next_attempt_at = ?, \
             updated_at = ? WHERE id = ?",
            vec![
                state.as_str().into(),
                f64::from(attempts).into(),
                error.into(),
                (next as f64).into(),
                (now_ms() as f64).into(),
                reminder.id.as_str().into(),
            ],
        )?;
        Ok(())
    }
}
