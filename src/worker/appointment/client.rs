//! The Worker's typed calls to an `AppointmentLedger` object: one method per `LedgerCommand`,
//! each decoding the object's reply as that command's reply type (a refusal is
//! `CallError::Refused` with the object's status and message).

use worker::{Env, Stub};

use crate::reminders::Reminder;
use crate::webhook::ledger::{appointment_owner, Claim, Claimed, Effects};
use crate::worker::appointment::protocol::{
    call, ledger_stub, Ack, AsideReply, CallError, CommitRecord, IndexReply, LedgerCommand,
    PendingStatus, PlanReply, RemindersReply, RetryReply,
};

/// One object, by name.
pub struct AppointmentClient {
    stub: Stub,
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

    /// Claims a delivery before any work.
    pub async fn claim(&self, claim: Claim) -> Result<Claimed, CallError> {
        call(&self.stub, &LedgerCommand::Claim { claim }).await
    }

    /// Makes an attempt's effects durable.
    pub async fn commit(&self, record: CommitRecord) -> Result<Ack, CallError> {
        let record = Box::new(record);
        call(&self.stub, &LedgerCommand::Commit { record }).await
    }

    /// Effects another object decided for this appointment.
    pub async fn apply(&self, effects: Effects) -> Result<Ack, CallError> {
        call(&self.stub, &LedgerCommand::Apply(effects)).await
    }

    /// A one-shot reminder at `fire_at` (epoch ms).
    pub async fn schedule_reminder(
        &self,
        appointment_id: String,
        fire_at: i64,
    ) -> Result<Reminder, CallError> {
        let command = LedgerCommand::ScheduleReminder {
            appointment_id,
            fire_at,
        };
        call(&self.stub, &command).await
    }

    /// Plans the automatic reminders for `start_time` (epoch seconds).
    pub async fn plan_reminders(
        &self,
        appointment_id: String,
        start_time: i64,
        create_missing: bool,
    ) -> Result<PlanReply, CallError> {
        let command = LedgerCommand::PlanReminders {
            appointment_id,
            start_time,
            create_missing,
        };
        call(&self.stub, &command).await
    }

    /// Cancels one reminder (404 unknown, 409 already sent or failed).
    pub async fn cancel_reminder(&self, id: String) -> Result<Reminder, CallError> {
        call(&self.stub, &LedgerCommand::CancelReminder { id }).await
    }

    /// The appointment's reminders.
    pub async fn list_reminders(&self) -> Result<RemindersReply, CallError> {
        call(&self.stub, &LedgerCommand::ListReminders).await
    }

    /// What the object holds that D1 has not taken yet.
    pub async fn status(&self) -> Result<PendingStatus, CallError> {
        call(&self.stub, &LedgerCommand::Status).await
    }

    /// Index shards: `owner` started (`holding`) or stopped holding pending writes.
    pub async fn index_set(&self, owner: String, holding: bool) -> Result<Ack, CallError> {
        call(&self.stub, &LedgerCommand::IndexSet { owner, holding }).await
    }

    /// Index shards: the owners registered, by name, after `after`, at most `limit`.
    pub async fn index_list(
        &self,
        after: Option<String>,
        limit: usize,
    ) -> Result<IndexReply, CallError> {
        call(&self.stub, &LedgerCommand::IndexList { after, limit }).await
    }

    /// Applies an outbox entry set aside once (404 unknown, 409 refused again).
    pub async fn retry_aside(&self, seq: i64) -> Result<AsideReply, CallError> {
        call(&self.stub, &LedgerCommand::RetryAside { seq }).await
    }

    /// Drops an outbox entry set aside (404 unknown).
    pub async fn drop_aside(&self, seq: i64) -> Result<AsideReply, CallError> {
        call(&self.stub, &LedgerCommand::DropAside { seq }).await
    }

    /// Hands a walk to this `walk:…` object: its alarm continues it.
    pub async fn walk(&self, walk: crate::worker::walk::Walk) -> Result<Ack, CallError> {
        call(&self.stub, &LedgerCommand::Walk(walk)).await
    }

    /// The destination resumed: its held messages here are due now.
    pub async fn release(&self, destination_id: String) -> Result<Ack, CallError> {
        call(&self.stub, &LedgerCommand::Release { destination_id }).await
    }

    /// One attempt of a failed message now (404 unknown, 409 not failed).
    pub async fn retry_delivery(&self, id: String) -> Result<RetryReply, CallError> {
        call(&self.stub, &LedgerCommand::RetryDelivery { id }).await
    }
}
