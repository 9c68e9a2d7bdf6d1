//! The typed protocol between the Worker and its Durable Objects: one serde-tagged command
//! enum per object class, sent as the JSON body of a POST, and typed replies. Caller and
//! object share these types, so a field renamed on one side cannot be missed on the other.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{web_sys, Env, Headers, Request};

use crate::reminders::Reminder;
pub use crate::support::from_json::from_json_text;
use crate::support::from_json::{list, parse, unknown_variant, variant, Decoded, Fields, FromJson};
use crate::webhook::ledger::{Attempt, Claim, Effects, IntakeMode};
use crate::worker::runtime::fetch_client::new_raw_request;

/// Binding of the per-appointment ledger objects.
pub const LEDGER_BINDING: &str = "APPOINTMENTS";
/// Binding of the previous release's single write queue, kept only to drain it.
pub const LEGACY_QUEUE_BINDING: &str = "WRITE_QUEUE";
/// Name of the previous release's single queue object.
pub const LEGACY_QUEUE_NAME: &str = "schedule-writes";

/// A commit as it travels to the owning object: the core's `Commit`, owned, with the body
/// already sealed by the Worker (or absent when no encryption key is set).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitRecord {
    /// From the claim.
    pub event_id: String,
    /// The claim this settles.
    pub claim: Claim,
    /// How the attempt ended.
    pub attempt: Attempt,
    /// What it changes (this object's appointment, and maybe others).
    pub effects: Effects,
    /// The body sealed with `EVENT_ENCRYPTION_KEY`, kept for replay.
    pub sealed_body: Option<String>,
    /// What a processed event delivers to destinations, sealed (see [`Outgoing`]).
    pub outgoing: Option<Outgoing>,
}

/// An enriched event to deliver: the object keeps it with the commit and fans it out to
/// the matching destinations on its alarm.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outgoing {
    /// The event type (destinations subscribe by it).
    pub event: String,
    /// The JSON sent, sealed with `EVENT_ENCRYPTION_KEY` ([`outgoing_aad`]).
    pub sealed: String,
    /// The source it arrived at (none: `default`); destinations subscribe by it too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The associated data an outgoing body is sealed with: its event id, marked so that it
/// cannot be mistaken for the stored webhook body.
pub fn outgoing_aad(event_id: &str) -> Vec<u8> {
    format!("{event_id}:outgoing").into_bytes()
}

/// Commands of `AppointmentLedger` objects.
#[derive(Debug, Clone, Serialize, Deserialize)]
// Externally tagged (`{"claim":{…}}`): serde decodes it without buffering, which keeps the
// Worker upload small.
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum LedgerCommand {
    /// Claim a delivery before any work → `Claimed`.
    Claim {
        /// The delivery.
        claim: Claim,
    },
    /// Claim a delivery and keep it (the core's `EventLedger::intake`) → `Claimed`.
    Intake {
        /// The delivery.
        claim: Claim,
        /// The exact body (sealed here when `EVENT_ENCRYPTION_KEY` is set).
        body: String,
        /// How the rest is finished.
        mode: IntakeMode,
        /// `whole`: the event to deliver, unsealed (sealed here under the event's id).
        outgoing: Option<Value>,
    },
    /// A gate's origin answered `status` (none: unreachable) → `Ack`.
    Origin {
        /// The delivery.
        dedup_key: String,
        /// Its event.
        event_id: String,
        /// What the origin answered.
        status: Option<u16>,
    },
    /// Make an attempt's effects durable → `Ack`.
    Commit {
        /// The attempt.
        record: Box<CommitRecord>,
    },
    /// Writes and reminder operations another object decided for this appointment (the
    /// previous appointment of a reschedule) → `Ack`.
    Apply(Effects),
    /// A one-shot reminder at `fire_at` (epoch ms) → the `Reminder`, 201.
    ScheduleReminder {
        /// Appointment.
        appointment_id: String,
        /// Epoch ms.
        fire_at: i64,
    },
    /// Plan the automatic reminders (the sweep) → `PlanReply`.
    PlanReminders {
        /// Appointment.
        appointment_id: String,
        /// Epoch seconds.
        start_time: i64,
        /// Create reminders that do not exist yet.
        create_missing: bool,
    },
    /// Cancel one reminder → the `Reminder` (404 unknown, 409 already sent or failed).
    CancelReminder {
        /// Reminder id.
        id: String,
    },
    /// → `RemindersReply`.
    ListReminders,
    /// What this object holds that D1 has not taken yet → `PendingStatus`.
    Status,
    /// What it keeps of its events, for the operator (`event_log::claim_store::OBJECT_VIEW`)
    /// → `{"claims","intake","outgoing","meta"}`.
    Inspect,
    /// Index shards: an object started (`holding`) or stopped holding pending writes.
    IndexSet {
        /// The object's name.
        owner: String,
        /// True while it holds pending writes.
        holding: bool,
    },
    /// Index shards: the owners registered, by name, after `after`, at most `limit` →
    /// `IndexReply` (`/admin/pending-writes` pages over them).
    IndexList {
        /// The last owner of the previous read.
        after: Option<String>,
        /// At most this many.
        limit: usize,
    },
    /// An outbox entry set aside: apply it once now (`drop`: false; 409 when refused again,
    /// it stays aside) or drop it → `Ack` (404 unknown).
    Aside {
        /// Its `seq`.
        seq: i64,
        /// Drop it instead.
        drop: bool,
    },
    /// Walk objects `walk:…`: keep the walk (`crate::worker::walk::Walk::to_text`) and
    /// continue it on the alarm, a batch per alarm → `Ack`.
    Walk {
        /// The walk as text.
        walk: String,
    },
    /// The destination resumed: its held messages here are due now → `Ack` (`queued`: how
    /// many were released).
    Release {
        /// The destination.
        destination_id: String,
    },
    /// An operator retries a failed message: one attempt now → `RetryReply` (404 unknown,
    /// 409 not failed).
    RetryDelivery {
        /// `msg_…`.
        id: String,
    },
}

/// A manual retry's result.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RetryReply {
    /// The message after the attempt.
    pub delivery: serde_json::Value,
    /// The attempt (none when the message was held instead: its destination is paused).
    pub attempt: Option<serde_json::Value>,
}

/// A reply the Worker relays (an admin answer): typed by what the object sent (`T`), kept as
/// the JSON it arrived as. Decoding the reminder replies as `T` only to encode them again cost
/// the upload 3.4 KB gzip (measured with `make worker`) and bought nothing.
#[derive(Debug, Clone)]
pub struct Relayed<T> {
    /// The object's JSON, a `T`.
    pub json: Value,
    of: std::marker::PhantomData<T>,
}

impl<T> Relayed<T> {
    /// The object's reply, a `T` as JSON.
    pub fn from_json(json: Value) -> Self {
        Relayed {
            json,
            of: std::marker::PhantomData,
        }
    }
}

impl Relayed<PlanReply> {
    /// [`PlanReply::created`].
    pub fn created(&self) -> u64 {
        self.json["created"].as_u64().unwrap_or(0)
    }

    /// [`PlanReply::rearmed`].
    pub fn rearmed(&self) -> bool {
        self.json["rearmed"].as_bool().unwrap_or(false)
    }
}

/// Commands of the previous release's `ScheduleWriteQueue`, now drain-only.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LegacyQueueCommand {
    /// Apply what is pending now → `PendingStatus`.
    Drain,
    /// → `PendingStatus`.
    Status,
}

/// A command's plain acknowledgement.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    /// Entries kept for retry because D1 (or another object) refused them.
    pub queued: usize,
}

/// Result of planning automatic reminders.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanReply {
    /// Reminders created.
    pub created: usize,
    /// Reminders cancelled (moved appointment).
    pub cancelled: usize,
    /// The alarm was missing and has been armed again.
    pub rearmed: bool,
}

/// An appointment's reminders.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RemindersReply {
    /// In fire order.
    pub reminders: Vec<Reminder>,
    /// The source its last commit arrived at, when the object has recorded one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
}

/// What an object (or the legacy queue) holds for D1.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingStatus {
    /// The object's name.
    pub owner: String,
    /// Entries waiting (one per commit, relay or legacy write).
    pub pending: usize,
    /// Failed attempts since the last success.
    pub attempts: i64,
    /// Why the last attempt failed (D1's words; no row values).
    pub last_error: Option<String>,
    /// When the next attempt is due, epoch ms.
    pub next_attempt_at: Option<f64>,
    /// Entries set aside (failed on their own `support::outbox::ASIDE_AFTER` times), as the
    /// admin sees them: `{seq, kind, target, enqueuedAt, asideAt, failures, lastError}` (read
    /// as JSON rows straight from the object's SQLite; no statement or value).
    #[serde(default)]
    pub aside: Vec<Value>,
}

/// Owners registered in an index shard.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IndexReply {
    /// Object names.
    pub owners: Vec<String>,
}

// The wire decoders (`FromJson`): serde's format of each type above, read by hand
// (`support::from_json`): the derived decoder of `LedgerCommand` alone was ~18 KB of the
// upload (raw).

impl FromJson for Outgoing {
    fn from_json(value: Value) -> Decoded<Self> {
        let mut f = Fields::of(value, "an outgoing event")?;
        Ok(Outgoing {
            event: f.string("event")?,
            sealed: f.string("sealed")?,
            source: f.opt_string("source")?,
        })
    }
}

impl FromJson for CommitRecord {
    fn from_json(value: Value) -> Decoded<Self> {
        let mut f = Fields::of(value, "a commit")?;
        Ok(CommitRecord {
            event_id: f.string("eventId")?,
            claim: f.get("claim")?,
            attempt: f.get("attempt")?,
            effects: f.get("effects")?,
            sealed_body: f.opt_string("sealedBody")?,
            outgoing: f.opt("outgoing")?,
        })
    }
}

impl FromJson for LedgerCommand {
    fn from_json(value: Value) -> Decoded<Self> {
        const WHAT: &str = "a ledger command";
        let (tag, content) = variant(value, WHAT)?;
        if tag == "apply" {
            return Effects::from_json(content).map(LedgerCommand::Apply);
        }
        let mut f = match content {
            // Unit variants carry no content.
            Value::Null => Fields::of(Value::Object(serde_json::Map::new()), WHAT)?,
            content => Fields::of(content, WHAT)?,
        };
        let command = match tag.as_str() {
            "claim" => LedgerCommand::Claim {
                claim: f.get("claim")?,
            },
            "intake" => LedgerCommand::Intake {
                claim: f.get("claim")?,
                body: f.string("body")?,
                mode: f.get("mode")?,
                outgoing: f.opt("outgoing")?,
            },
            "origin" => LedgerCommand::Origin {
                dedup_key: f.string("dedupKey")?,
                event_id: f.string("eventId")?,
                status: f.opt_uint("status", u16::MAX.into())?.map(|s| s as u16),
            },
            "commit" => LedgerCommand::Commit {
                record: Box::new(f.get("record")?),
            },
            "scheduleReminder" => LedgerCommand::ScheduleReminder {
                appointment_id: f.string("appointmentId")?,
                fire_at: f.i64("fireAt")?,
            },
            "planReminders" => LedgerCommand::PlanReminders {
                appointment_id: f.string("appointmentId")?,
                start_time: f.i64("startTime")?,
                create_missing: f.bool("createMissing")?,
            },
            "cancelReminder" => LedgerCommand::CancelReminder {
                id: f.string("id")?,
            },
            "listReminders" => LedgerCommand::ListReminders,
            "status" => LedgerCommand::Status,
            "inspect" => LedgerCommand::Inspect,
            "indexSet" => LedgerCommand::IndexSet {
                owner: f.string("owner")?,
                holding: f.bool("holding")?,
            },
            "indexList" => LedgerCommand::IndexList {
                after: f.opt_string("after")?,
                limit: f.uint("limit", usize::MAX as u64)? as usize,
            },
            "aside" => LedgerCommand::Aside {
                seq: f.i64("seq")?,
                drop: f.bool("drop")?,
            },
            "walk" => LedgerCommand::Walk {
                walk: f.string("walk")?,
            },
            "release" => LedgerCommand::Release {
                destination_id: f.string("destinationId")?,
            },
            "retryDelivery" => LedgerCommand::RetryDelivery {
                id: f.string("id")?,
            },
            other => return Err(unknown_variant(other, WHAT)),
        };
        Ok(command)
    }
}

impl FromJson for LegacyQueueCommand {
    fn from_json(value: Value) -> Decoded<Self> {
        const WHAT: &str = "a queue command";
        match variant(value, WHAT)?.0.as_str() {
            "drain" => Ok(LegacyQueueCommand::Drain),
            "status" => Ok(LegacyQueueCommand::Status),
            other => Err(unknown_variant(other, WHAT)),
        }
    }
}

impl FromJson for RetryReply {
    fn from_json(value: Value) -> Decoded<Self> {
        let mut f = Fields::of(value, "a retry's result")?;
        Ok(RetryReply {
            delivery: f.get("delivery")?,
            attempt: f.opt("attempt")?,
        })
    }
}

impl FromJson for Ack {
    fn from_json(value: Value) -> Decoded<Self> {
        let mut f = Fields::of(value, "an acknowledgement")?;
        Ok(Ack {
            queued: f.uint("queued", usize::MAX as u64)? as usize,
        })
    }
}

impl FromJson for PendingStatus {
    fn from_json(value: Value) -> Decoded<Self> {
        let mut f = Fields::of(value, "a pending status")?;
        Ok(PendingStatus {
            owner: f.string("owner")?,
            pending: f.uint("pending", usize::MAX as u64)? as usize,
            attempts: f.i64("attempts")?,
            last_error: f.opt_string("lastError")?,
            next_attempt_at: f.opt_f64("nextAttemptAt")?,
            aside: f
                .opt::<Value>("aside")?
                .map(list)
                .transpose()?
                .unwrap_or_default(),
        })
    }
}

impl FromJson for IndexReply {
    fn from_json(value: Value) -> Decoded<Self> {
        let mut f = Fields::of(value, "an index reply")?;
        Ok(IndexReply {
            owners: f.list("owners")?,
        })
    }
}

/// An object's refusal: status and `{"error": …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status the object answered.
    pub status: u16,
    /// Its `error` text, or the status when the body had none.
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.status)
    }
}

/// Why a call to an object failed.
#[derive(Debug)]
pub enum CallError {
    /// The object answered non-2xx.
    Refused(Refusal),
    /// The runtime failed the call (unreachable, reset, bad reply).
    Runtime(worker::Error),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Refused(r) => write!(f, "object refused: {r}"),
            CallError::Runtime(e) => write!(f, "object call failed: {e}"),
        }
    }
}

impl From<worker::Error> for CallError {
    fn from(e: worker::Error) -> Self {
        CallError::Runtime(e)
    }
}

impl From<CallError> for worker::Error {
    /// The runtime's failure as it is; a refusal as its text.
    fn from(e: CallError) -> Self {
        match e {
            CallError::Runtime(e) => e,
            refused => worker::Error::RustError(refused.to_string()),
        }
    }
}

impl From<serde_json::Error> for CallError {
    fn from(e: serde_json::Error) -> Self {
        CallError::Runtime(e.into())
    }
}

/// An object's stub as the runtime has it: `worker::Stub` converts each reply into a
/// `worker::Response` (its URL parsed, its headers and body stream taken apart) that
/// [`exchange`] would only read whole; this one is read with a single `text()`.
pub type ObjectStub = worker::worker_sys::DurableObject;

/// The stub of the ledger object named `owner` (an appointment id, `rx:<id>`, `evt:<key>`,
/// `index:<n>`).
pub fn ledger_stub(env: &Env, owner: &str) -> worker::Result<ObjectStub> {
    Ok(env
        .durable_object(LEDGER_BINDING)?
        .id_from_name(owner)?
        .get_stub()?
        .into_rpc())
}

/// The previous release's queue object.
pub fn legacy_queue_stub(env: &Env) -> worker::Result<ObjectStub> {
    Ok(env
        .durable_object(LEGACY_QUEUE_BINDING)?
        .id_from_name(LEGACY_QUEUE_NAME)?
        .get_stub()?
        .into_rpc())
}

/// Sends a command (`body`, its JSON) to `stub`; a 2xx reply is decoded as `R`, anything
/// else is a refusal. Generic in the reply only: the command is encoded by the caller.
pub async fn call<R: FromJson>(
    stub: &ObjectStub,
    body: serde_json::Result<String>,
) -> Result<R, CallError> {
    let reply = exchange(stub, body?).await?;
    Ok(R::from_json(reply)?)
}

/// The untyped half of [`call`], written once rather than per message type (the generic
/// copies cost the Worker upload more than the work they do).
async fn exchange(stub: &ObjectStub, body: String) -> Result<Value, CallError> {
    // The host is only a label: the stub routes the request.
    let request = new_raw_request(
        "https://object/",
        "POST",
        &Headers::new(),
        Some(&JsValue::from_str(&body)),
    )?;
    crate::worker::runtime::probe::object_call();
    let response: web_sys::Response = JsFuture::from(
        stub.fetch_with_request(&request)
            .map_err(worker::Error::from)?,
    )
    .await
    .map_err(worker::Error::from)?
    .dyn_into()
    .map_err(worker::Error::from)?;
    let status = response.status();
    // Read whole by the runtime, as one string (the object answers JSON text).
    let text = JsFuture::from(response.text().map_err(worker::Error::from)?)
        .await
        .map_err(worker::Error::from)?
        .as_string()
        .ok_or(worker::Error::BadEncoding)?;
    let value = parse(&text);
    if (200..300).contains(&status) {
        return Ok(value?);
    }
    let message = value
        .ok()
        .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| format!("status {status}"));
    Err(CallError::Refused(Refusal { status, message }))
}

/// Reads a command from a request an object received.
pub async fn read_command<C: FromJson>(req: &mut Request) -> Result<C, String> {
    let text = req.text().await.map_err(|e| e.to_string())?;
    from_json_text(&text).map_err(|e| format!("not a command: {e}"))
}
