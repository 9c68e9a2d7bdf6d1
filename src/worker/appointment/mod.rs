//! `AppointmentLedger`: one Durable Object per appointment (named by the appointment id; prescriptions
//! without one use `rx:<id>`, anything else `evt:<dedup key>`), bound as `APPOINTMENTS`. No object is
//! a global singleton. It owns its appointment:
//!
//! - **duplicates**: it claims each delivery by the SHA-256 of its body (`claims` table) and
//!   answers copies (the decision is the core's `event_log::decide_claim`);
//! - **ordered writes**: a commit's D1 statements (the event row, the sealed body, the
//!   schedule writes) go to D1 in one batch; when D1 refuses them, or earlier ones are still
//!   pending, they wait in the `outbox` table (this object's own SQLite) and are retried in
//!   order on its alarm, so a D1 outage loses nothing and an update never overtakes its insert;
//! - **reminders**: the appointment's reminders and their alarm (the rules are the core's
//!   `reminder` module).
//!
//! While it holds pending writes it registers in an index shard (`index:<n>`, the same class)
//! so `/admin/pending-writes` can list it. `alarm()` never fails: every error re-arms.
//!
//! By role: `dispatch` (the `fetch` commands), `claims` (claims and commits), `outbox`,
//! `reminders`, `delivery` (messages to destinations), `retention`, `alarm`, `index` (the index
//! shard role), `storage` (schema and row reads), `error` (the object's errors and their
//! statuses), `protocol` (commands and replies) and `client` (the Worker's typed calls).

use std::time::Duration;

use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use crate::support::object_store;
use crate::worker::appointment::protocol::{read_command, LedgerCommand};
use crate::worker::runtime::env::settings;
use crate::worker::runtime::log;

mod alarm;
mod claims;
pub mod client;
mod delivery;
mod dispatch;
pub mod error;
pub mod index;
mod intake;
mod outbox;
pub mod protocol;
mod reminders;
mod retention;
pub mod storage;
mod walks;

/// When processing itself fails, try again this much later.
const RECOVERY_DELAY_MS: i64 = 60_000;

/// One appointment's ledger: its claims, its outbox of writes for D1, its reminders.
#[durable_object]
pub struct AppointmentLedger {
    state: State,
    env: Env,
    /// The owner's name is in `meta` (written once per instance).
    owner_known: std::cell::Cell<bool>,
    /// Every table is made (false: a new object's, with its intake's tables only).
    full_schema: std::cell::Cell<bool>,
    /// The instance found no table of its own and has run nothing yet: its storage holds
    /// nothing (the core's `intake_plan` skips the reads that could only find something).
    untouched: std::cell::Cell<bool>,
}

impl AppointmentLedger {
    /// Makes the tables a new object left for later (`storage::LATER_SCHEMA`), once: before
    /// anything but an intake, a claim, a commit or an origin status, and before a commit keeps
    /// reminders, a message for the fan-out or an entry set aside. Its alarm does not make
    /// them: it skips what only they could hold (the core's `wake_reads`).
    pub(super) fn ensure_schema(&self) -> Result<()> {
        if !self.full_schema.get() {
            self.state
                .storage()
                .sql()
                .exec(&storage::LATER_SCHEMA.join(";\n"), None)?;
            self.full_schema.set(true);
        }
        Ok(())
    }

    /// Whether the object was new when this call began (true for its first call only: every
    /// call, and the alarm, takes it).
    pub(super) fn fresh_call(&self) -> bool {
        self.untouched.replace(false)
    }

    /// After its storage was deleted (`deleteAll` drops the tables with their rows, and the
    /// instance stays): the object is as a new one, its intake's tables made again, nothing
    /// else known (not its owner, not its later tables), and its next call is a new object's.
    pub(super) fn as_new(&self) -> Result<()> {
        self.state
            .storage()
            .sql()
            .exec(&storage::schema(false), None)?;
        self.full_schema.set(false);
        self.owner_known.set(false);
        self.untouched.set(true);
        Ok(())
    }

    /// Whether the tables left for later exist (when not, they hold nothing).
    pub(super) fn has_full_schema(&self) -> bool {
        self.full_schema.get()
    }
}

impl DurableObject for AppointmentLedger {
    fn new(state: State, env: Env) -> Self {
        let sql = state.storage().sql();
        // A new object (every webhook's, nearly always) makes only the tables its intake and
        // commit use, in one call: making every table was most of a cold object's first call.
        // The rest follow on first need (`ensure_schema`). An object with storage makes them
        // all (IF NOT EXISTS: an upgraded object gains a new table). Errors here surface on
        // first use, where they are answered as 500s.
        let stored = storage::exec(&sql, &object_store::stored_tables())
            .and_then(storage::rows)
            .map_or(true, |found| {
                found
                    .first()
                    .and_then(|r| storage::number(r, "n"))
                    .is_some_and(|n| n > 0.0)
            });
        let _ = sql.exec(&storage::schema(stored), None);
        AppointmentLedger {
            state,
            env,
            owner_known: std::cell::Cell::new(false),
            full_schema: std::cell::Cell::new(stored),
            untouched: std::cell::Cell::new(!stored),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let command: LedgerCommand = match read_command(&mut req).await {
            Ok(c) => c,
            Err(why) => return dispatch::refuse(400, &why),
        };
        match self.dispatch(command).await {
            Ok(response) => Ok(response),
            Err(e) => e.response(),
        }
    }

    async fn alarm(&self) -> Result<Response> {
        self.fresh_call();
        if let Err(e) = self.wake().await {
            log::failed(
                settings(&self.env).debug,
                "ledger alarm failed; re-armed",
                &e,
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
