//! The Worker's typed calls to an `AppointmentLedger` object: one method per `LedgerCommand`,
//! each decoding the object's reply as that command's reply type (a refusal is
//! `CallError::Refused` with the object's status and message).

use std::future::Future;

use crate::support::from_json::FromJson;
use futures::FutureExt;
use serde_json::Value;
use worker::Env;

use crate::reminders::Reminder;
use crate::webhook::ledger::{appointment_owner, Claim, Claimed, Effects, IntakeMode};
use crate::worker::appointment::protocol::{
    call, ledger_stub, Ack, CallError, CommitRecord, IndexReply, LedgerCommand, ObjectStub,
    PendingStatus, PlanReply, Relayed, RemindersReply, RetryReply,
};

/// One object, by name.
pub struct AppointmentClient {
    stub: ObjectStub,
}

impl AppointmentClient {
    /// The object named `owner` (an appointment id, `rx:<id>`, `evt:<key>`, `index:<n>`).
    pub fn named(env: &Env, owner: &str) -> worker::Result<Self> {
        Ok(AppointmentClient {
            stub: ledger_stub(env, owner)?,
        })
    }

    /// The object that owns `appointment_id`.
    pub fn for_appointment(env: &Env, appointment_id: &str) -> worker::Result<Self> {
        Self::named(env, &appointment_owner(appointment_id))
    }

    /// Sends `command`; the reply decoded as `R` (one generic step per reply type: the
    /// exchange itself is untyped, written once).
    fn ask<R: FromJson + 'static>(
        &self,
        command: LedgerCommand,
    ) -> impl Future<Output = Result<R, CallError>> + '_ {
        call(&self.stub, serde_json::to_string(&command))
    }

    /// Sends `command`; the reply kept as JSON, typed `Relayed<T>` (not decoded: see
    /// [`Relayed`]).
    fn relay<T>(
        &self,
        command: LedgerCommand,
    ) -> impl Future<Output = Result<Relayed<T>, CallError>> + '_ {
        call::<Value>(&self.stub, serde_json::to_string(&command))
            .map(|reply| reply.map(Relayed::from_json))
    }

    /// Claims a delivery before any work.
    pub fn claim(&self, claim: Claim) -> impl Future<Output = Result<Claimed, CallError>> + '_ {
        self.ask(LedgerCommand::Claim { claim })
    }

    /// Claims a delivery and keeps it (`mode`: how the rest is finished).
    pub fn intake(
        &self,
        claim: Claim,
        body: String,
        mode: IntakeMode,
        outgoing: Option<Value>,
    ) -> impl Future<Output = Result<Claimed, CallError>> + '_ {
        self.ask(LedgerCommand::Intake {
            claim,
            body,
            mode,
            outgoing,
        })
    }

    /// A gate's origin answered `status` (none: unreachable).
    pub fn origin(
        &self,
        dedup_key: String,
        event_id: String,
        status: Option<u16>,
    ) -> impl Future<Output = Result<Ack, CallError>> + '_ {
        self.ask(LedgerCommand::Origin {
            dedup_key,
            event_id,
            status,
        })
    }

    /// Makes an attempt's effects durable.
    pub fn commit(
        &self,
        record: CommitRecord,
    ) -> impl Future<Output = Result<Ack, CallError>> + '_ {
        let record = Box::new(record);
        self.ask(LedgerCommand::Commit { record })
    }

    /// Effects another object decided for this appointment.
    pub fn apply(&self, effects: Effects) -> impl Future<Output = Result<Ack, CallError>> + '_ {
        self.ask(LedgerCommand::Apply(effects))
    }

    /// A one-shot reminder at `fire_at` (epoch ms).
    pub fn schedule_reminder(
        &self,
        appointment_id: String,
        fire_at: i64,
    ) -> impl Future<Output = Result<Relayed<Reminder>, CallError>> + '_ {
        let command = LedgerCommand::ScheduleReminder {
            appointment_id,
            fire_at,
        };
        self.relay(command)
    }

    /// Plans the automatic reminders for `start_time` (epoch seconds).
    pub fn plan_reminders(
        &self,
        appointment_id: String,
        start_time: i64,
        create_missing: bool,
    ) -> impl Future<Output = Result<Relayed<PlanReply>, CallError>> + '_ {
        let command = LedgerCommand::PlanReminders {
            appointment_id,
            start_time,
            create_missing,
        };
        self.relay(command)
    }

    /// Cancels one reminder (404 unknown, 409 already sent or failed).
    pub fn cancel_reminder(
        &self,
        id: String,
    ) -> impl Future<Output = Result<Relayed<Reminder>, CallError>> + '_ {
        self.relay(LedgerCommand::CancelReminder { id })
    }

    /// The appointment's reminders.
    pub fn list_reminders(
        &self,
    ) -> impl Future<Output = Result<Relayed<RemindersReply>, CallError>> + '_ {
        self.relay(LedgerCommand::ListReminders)
    }

    /// What the object keeps of its events (claims, held intakes, outgoing events, meta).
    pub fn inspect(&self) -> impl Future<Output = Result<Relayed<Value>, CallError>> + '_ {
        self.relay(LedgerCommand::Inspect)
    }

    /// What the object holds that D1 has not taken yet.
    pub fn status(&self) -> impl Future<Output = Result<PendingStatus, CallError>> + '_ {
        self.ask(LedgerCommand::Status)
    }

    /// Index shards: `owner` started (`holding`) or stopped holding pending writes.
    pub fn index_set(
        &self,
        owner: String,
        holding: bool,
    ) -> impl Future<Output = Result<Ack, CallError>> + '_ {
        self.ask(LedgerCommand::IndexSet { owner, holding })
    }

    /// Index shards: the owners registered, by name, after `after`, at most `limit`.
    pub fn index_list(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> impl Future<Output = Result<IndexReply, CallError>> + '_ {
        self.ask(LedgerCommand::IndexList { after, limit })
    }

    /// Applies an outbox entry set aside once, or drops it (404 unknown; 409 refused again).
    pub fn aside(&self, seq: i64, drop: bool) -> impl Future<Output = Result<Ack, CallError>> + '_ {
        self.ask(LedgerCommand::Aside { seq, drop })
    }

    /// Hands a walk to this `walk:…` object: its alarm continues it.
    pub fn walk(
        &self,
        walk: &crate::worker::walk::Walk,
    ) -> impl Future<Output = Result<Ack, CallError>> + '_ {
        self.ask(LedgerCommand::Walk {
            walk: walk.to_text(),
        })
    }

    /// The destination resumed: its held messages here are due now.
    pub fn release(
        &self,
        destination_id: String,
    ) -> impl Future<Output = Result<Ack, CallError>> + '_ {
        self.ask(LedgerCommand::Release { destination_id })
    }

    /// One attempt of a failed message now (404 unknown, 409 not failed).
    pub fn retry_delivery(
        &self,
        id: String,
    ) -> impl Future<Output = Result<RetryReply, CallError>> + '_ {
        self.ask(LedgerCommand::RetryDelivery { id })
    }
}
