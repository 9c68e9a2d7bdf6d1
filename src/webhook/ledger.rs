//! The event ledger: the port through which the pipeline records a delivery. It is asked
//! twice on the common path: [`EventLedger::claim`] before any work (is this body a copy of
//! one already processed, or still in flight?) and [`EventLedger::commit`] once the effects
//! are decided and before anything leaves (the forward). A ledger that cannot take a commit
//! fails the webhook with 500 *before* delivery, so Eka's retry delivers once.
//!
//! The Worker's ledger is the owning Durable Object (one per appointment; see
//! [`owner_of`]); a store without an event log (Node, the core's tests) is wrapped in
//! [`StoreLedger`], which claims everything and applies the writes on commit.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::reminders::ReminderOp;
use crate::schedule::{ScheduleStore, ScheduleWrite, StoreError};
use crate::support::from_json::{invalid, unknown_variant, variant, Decoded, Fields, FromJson};
use crate::webhook::event::{EventKind, WebhookEvent};

/// What the event log keeps of a payload: its ids, never patient data.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventFacts {
    /// `event`.
    pub event: String,
    /// `transaction_id`, when a string.
    pub transaction_id: Option<String>,
    /// `data.appointment_id`, when present.
    pub appointment_id: Option<String>,
    /// `business_id`, when a string.
    pub business_id: Option<String>,
}

/// A verified delivery, before any work is done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Claim {
    /// SHA-256 of the bytes the signature matched (`claim_key`), hex.
    pub dedup_key: String,
    /// Name of the object that owns the event ([`owner_of`]).
    pub owner: String,
    /// Its ids.
    pub facts: EventFacts,
    /// When the Worker received it, epoch ms.
    pub received_at_ms: i64,
    /// Set when an operator replays this stored event.
    pub replay_of: Option<String>,
    /// The source it arrived at (issue 21); none: the `default` source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// How long a processed copy is a duplicate, when its source sets its own window; none:
    /// the object's `DEDUP_WINDOW_HOURS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dedup_window_ms: Option<i64>,
    /// How long an attempt holds the claim, when its source's differs from the object's
    /// `EVENT_CLAIM_LEASE_SECONDS` (a source's own origin grows it); none: the object's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease_ms: Option<i64>,
}

impl Claim {
    /// The claim for a validated event whose body hashes to `dedup_key`.
    pub fn for_event(event: &WebhookEvent, dedup_key: String, received_at_ms: i64) -> Claim {
        let text = |key: &str| {
            event
                .payload
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Claim {
            owner: owner_of(event, &dedup_key),
            facts: EventFacts {
                event: event.event_type.clone(),
                transaction_id: text("transaction_id"),
                appointment_id: event
                    .data()
                    .and_then(|d| d.get("appointment_id"))
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned),
                business_id: text("business_id"),
            },
            received_at_ms,
            dedup_key,
            replay_of: None,
            source: None,
            dedup_window_ms: None,
            lease_ms: None,
        }
    }
}

/// Which object owns an event: its appointment ([`appointment_owner`]), else its
/// prescription (`rx:<id>`), else the delivery itself (`evt:<dedup key>`). Copies of one body
/// always map to the same owner, so one object decides their duplicates.
pub fn owner_of(event: &WebhookEvent, dedup_key: &str) -> String {
    if let EventKind::Enrich { appointment_id } = &event.kind {
        return appointment_owner(appointment_id);
    }
    let data = event.data();
    let id_of = |key: &str| {
        data.and_then(|d| d.get(key))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    match id_of("appointment_id") {
        Some(id) => appointment_owner(id),
        None => match id_of("prescription_id").or_else(|| id_of("rx_id")) {
            Some(id) => format!("rx:{id}"),
            None => format!("evt:{dedup_key}"),
        },
    }
}

/// The object of an appointment is named by its bare id, as the previous release named its
/// reminder objects, so their storage carries over. (A prefixed name of another kind that
/// equals an appointment id would share that object, which is harmless: claims are keyed by
/// body hash and reminders by appointment.)
pub fn appointment_owner(appointment_id: &str) -> String {
    appointment_id.to_owned()
}

/// What the ledger says of a claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// Externally tagged (`{"inFlight":{…}}`): serde decodes it without buffering, which keeps
// the Worker upload small.
#[serde(rename_all = "camelCase")]
pub enum Claimed {
    /// Do the work. `event_id` is none for ledgers without an event log.
    #[serde(rename_all = "camelCase")]
    Proceed {
        /// The event's id in the log.
        event_id: Option<String>,
        /// A failed or abandoned attempt of the same body is being processed again.
        reprocess: bool,
    },
    /// A copy of a processed event: answer 200 and do nothing else.
    #[serde(rename_all = "camelCase")]
    Duplicate {
        /// The processed event.
        event_id: String,
    },
    /// A copy of an event still being processed: answer 409 so Eka delivers it later.
    #[serde(rename_all = "camelCase")]
    InFlight {
        /// The event in flight.
        event_id: String,
        /// Seconds until the first attempt's claim lapses.
        retry_after_secs: u32,
    },
}

/// How an attempt ended, as the log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Settled {
    /// Effects committed (the forward may still fail; then a `Failed` commit follows).
    Processed,
    /// The attempt failed; a copy or a replay processes it again.
    Failed,
}

/// How an attempt ended, as the event log records it (and as it travels to the object).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attempt {
    /// Processed or failed.
    pub settled: Settled,
    /// Status answered to Eka.
    pub http_status: u16,
    /// Stable error code when failed (never upstream text).
    pub error: Option<String>,
    /// From [`Claimed::Proceed`]: an earlier attempt of this body failed or was abandoned.
    pub reprocess: bool,
    /// This only records that the forward failed after this attempt's effects were
    /// committed: nothing is counted again.
    pub amends: bool,
}

impl Attempt {
    /// How an attempt ended (`amends` false: it is the attempt's own outcome).
    pub fn ended(settled: Settled, http_status: u16, error: Option<&str>, reprocess: bool) -> Self {
        Attempt {
            settled,
            http_status,
            error: error.map(str::to_owned),
            reprocess,
            amends: false,
        }
    }
}

/// Schedule writes and the reminder operations that follow from them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Effects {
    /// Schedule writes, in order (possibly for other appointments: a reschedule's `p_aid`).
    pub writes: Vec<ScheduleWrite>,
    /// Reminder operations that follow from the writes.
    pub reminder_ops: Vec<ReminderOp>,
}

impl Effects {
    /// The effects split by the object that owns each appointment ([`appointment_owner`]),
    /// owners in first-seen order, each part in its original order: an object applies its
    /// own part and hands the others to their owners.
    pub fn by_owner(&self) -> Vec<(String, Effects)> {
        let mut parts: Vec<(String, Effects)> = Vec::new();
        let mut part_of = |appointment_id: &str| -> usize {
            let owner = appointment_owner(appointment_id);
            match parts.iter().position(|(o, _)| *o == owner) {
                Some(i) => i,
                None => {
                    parts.push((owner, Effects::default()));
                    parts.len() - 1
                }
            }
        };
        let mut split: Vec<(usize, Option<&ScheduleWrite>, Option<&ReminderOp>)> = Vec::new();
        for w in &self.writes {
            split.push((part_of(w.appointment_id()), Some(w), None));
        }
        for op in &self.reminder_ops {
            split.push((part_of(op.appointment_id()), None, Some(op)));
        }
        for (i, w, op) in split {
            parts[i].1.writes.extend(w.cloned());
            parts[i].1.reminder_ops.extend(op.cloned());
        }
        parts
    }
}

/// The effects of one attempt, handed to the ledger before anything leaves.
#[derive(Debug, Clone, PartialEq)]
pub struct Commit<'a> {
    /// From [`Claimed::Proceed`].
    pub event_id: Option<&'a str>,
    /// The claim this settles.
    pub claim: &'a Claim,
    /// How it ended.
    pub attempt: Attempt,
    /// What it changes.
    pub effects: &'a Effects,
    /// The exact body, for replay (the ledger keeps it only sealed, and only if it can).
    pub body: &'a [u8],
    /// What a processed event delivers to destinations (the enriched event): a ledger that
    /// delivers asynchronously keeps it, sealed, with the commit, so nothing accepted is lost.
    pub outgoing: Option<&'a serde_json::Value>,
}

/// How the rest of a webhook the ledger keeps ([`EventLedger::intake`]) is finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum IntakeMode {
    /// The Worker commits after its answer; if that commit never comes, the ledger runs the
    /// rest of the pipeline itself once the claim's lease is over.
    Worker,
    /// A gate: the origin's status comes after the answer and decides; if it never comes,
    /// the event is recorded as failed with `origin_unknown` once the lease is over.
    Gate,
    /// Nothing to enrich: the claim and the commit are one call (`outgoing` is what a
    /// processed event delivers).
    Whole,
}

/// A delivery handed to a ledger that keeps it: the claim, and what the ledger needs to
/// finish the webhook on its own (the exact body, sealed by the ledger when it can).
#[derive(Debug, Clone, PartialEq)]
pub struct Intake<'a> {
    /// The claim.
    pub claim: &'a Claim,
    /// The exact body as received.
    pub body: &'a [u8],
    /// How the rest is finished.
    pub mode: IntakeMode,
    /// [`IntakeMode::Whole`]: the enriched event to deliver (the payload alone).
    pub outgoing: Option<&'a Value>,
}

/// What a held intake calls for when the ledger looks at it ([`held_action`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeldAction {
    /// Nothing yet: look again at this time (epoch ms).
    Wait(i64),
    /// Run the rest of the pipeline here, now.
    Run,
    /// A gate whose origin answered `status`, not a 2xx: record the failure.
    OriginFailed(u16),
    /// A gate whose origin's status never arrived: record `origin_unknown` (replayable).
    OriginUnknown,
}

/// What a held intake calls for at `now_ms`: a Worker intake runs here once its lease is over
/// (the Worker's commit never came); a gate's runs as soon as the origin took it, fails when
/// the origin refused it, and is recorded `origin_unknown` when its lease ran out first.
pub fn held_action(
    mode: IntakeMode,
    origin: Option<u16>,
    lease_until_ms: i64,
    now_ms: i64,
) -> HeldAction {
    let lapsed = now_ms >= lease_until_ms;
    match (mode, origin) {
        (IntakeMode::Gate, Some(status)) if crate::webhook::gate::origin_took(status) => {
            HeldAction::Run
        }
        (IntakeMode::Gate, Some(status)) => HeldAction::OriginFailed(status),
        (IntakeMode::Gate, None) if lapsed => HeldAction::OriginUnknown,
        _ if lapsed => HeldAction::Run,
        _ => HeldAction::Wait(lease_until_ms),
    }
}

/// A commit the pipeline leaves for after the answer, owned: the ledger kept the intake, so
/// the adapter sends it once the answer is out, and the ledger finishes on its own if it never
/// arrives.
#[derive(Debug, Clone, PartialEq)]
pub struct Deferred {
    /// From the claim.
    pub event_id: Option<String>,
    /// The claim it settles.
    pub claim: Claim,
    /// How it ended.
    pub attempt: Attempt,
    /// What it changes.
    pub effects: Effects,
    /// What a processed event delivers.
    pub outgoing: Option<Value>,
}

impl Deferred {
    /// `commit`, owned.
    pub fn of(commit: &Commit<'_>) -> Self {
        Deferred {
            event_id: commit.event_id.map(str::to_owned),
            claim: commit.claim.clone(),
            attempt: commit.attempt.clone(),
            effects: commit.effects.clone(),
            outgoing: commit.outgoing.cloned(),
        }
    }

    /// The commit to send (no body: the ledger holds it since the intake).
    pub fn commit(&self) -> Commit<'_> {
        Commit {
            event_id: self.event_id.as_deref(),
            claim: &self.claim,
            attempt: self.attempt.clone(),
            effects: &self.effects,
            body: &[],
            outgoing: self.outgoing.as_ref(),
        }
    }
}

// The wire decoders (`FromJson`): serde's format of each type, read by hand (see
// `support::from_json`; the derived `Deserialize` stays the reference in the tests).

impl FromJson for EventFacts {
    fn from_json(value: Value) -> Decoded<Self> {
        let mut f = Fields::of(value, "event facts")?;
        Ok(EventFacts {
            event: f.string("event")?,
            transaction_id: f.opt_string("transactionId")?,
            appointment_id: f.opt_string("appointmentId")?,
            business_id: f.opt_string("businessId")?,
        })
    }
}

impl FromJson for Claim {
    fn from_json(value: Value) -> Decoded<Self> {
        let mut f = Fields::of(value, "a claim")?;
        Ok(Claim {
            dedup_key: f.string("dedupKey")?,
            owner: f.string("owner")?,
            facts: f.get("facts")?,
            received_at_ms: f.i64("receivedAtMs")?,
            replay_of: f.opt_string("replayOf")?,
            source: f.opt_string("source")?,
            dedup_window_ms: f.opt_i64("dedupWindowMs")?,
            lease_ms: f.opt_i64("leaseMs")?,
        })
    }
}

impl FromJson for Claimed {
    fn from_json(value: Value) -> Decoded<Self> {
        const WHAT: &str = "a claim's answer";
        let (tag, content) = variant(value, WHAT)?;
        let mut f = Fields::of(content, WHAT)?;
        match tag.as_str() {
            "proceed" => Ok(Claimed::Proceed {
                event_id: f.opt_string("eventId")?,
                reprocess: f.bool("reprocess")?,
            }),
            "duplicate" => Ok(Claimed::Duplicate {
                event_id: f.string("eventId")?,
            }),
            "inFlight" => Ok(Claimed::InFlight {
                event_id: f.string("eventId")?,
                retry_after_secs: f.uint("retryAfterSecs", u32::MAX.into())? as u32,
            }),
            other => Err(unknown_variant(other, WHAT)),
        }
    }
}

impl FromJson for Settled {
    fn from_json(value: Value) -> Decoded<Self> {
        match value.as_str() {
            Some("processed") => Ok(Settled::Processed),
            Some("failed") => Ok(Settled::Failed),
            _ => Err(invalid("invalid value: expected `processed` or `failed`")),
        }
    }
}

impl FromJson for Attempt {
    fn from_json(value: Value) -> Decoded<Self> {
        let mut f = Fields::of(value, "an attempt")?;
        Ok(Attempt {
            settled: f.get("settled")?,
            http_status: f.uint("httpStatus", u16::MAX.into())? as u16,
            error: f.opt_string("error")?,
            reprocess: f.bool("reprocess")?,
            amends: f.bool("amends")?,
        })
    }
}

impl FromJson for Effects {
    fn from_json(value: Value) -> Decoded<Self> {
        let mut f = Fields::of(value, "effects")?;
        Ok(Effects {
            writes: f.list("writes")?,
            reminder_ops: f.list("reminderOps")?,
        })
    }
}

impl FromJson for IntakeMode {
    fn from_json(value: Value) -> Decoded<Self> {
        match value.as_str() {
            Some("worker") => Ok(IntakeMode::Worker),
            Some("gate") => Ok(IntakeMode::Gate),
            Some("whole") => Ok(IntakeMode::Whole),
            _ => Err(invalid(
                "invalid value: expected `worker`, `gate` or `whole`",
            )),
        }
    }
}

/// Why the ledger could not answer. Either way the webhook answers 500 and nothing leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerError {
    /// The ledger (object) could not be reached or answered something unexpected.
    Unavailable(String),
    /// The store refused the writes and cannot keep them for retry.
    Store(StoreError),
}

impl std::fmt::Display for LedgerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LedgerError::Unavailable(why) => write!(f, "event ledger unavailable: {why}"),
            LedgerError::Store(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for LedgerError {}

/// Records deliveries and their effects.
#[allow(async_fn_in_trait)]
pub trait EventLedger {
    /// Claims a delivery before any work.
    async fn claim(&self, claim: &Claim) -> Result<Claimed, LedgerError>;
    /// Makes an attempt's effects durable (writes, reminder operations, the event's state).
    async fn commit(&self, commit: &Commit<'_>) -> Result<(), LedgerError>;
    /// True when [`intake`](Self::intake) keeps the body and finishes the webhook on its own:
    /// then the pipeline makes one call before its answer and commits after it.
    fn keeps_intake(&self) -> bool {
        false
    }
    /// Claims a delivery and keeps what finishing it needs ([`Intake`]); with
    /// [`IntakeMode::Whole`], a go is also the commit. A ledger that does not keep intakes
    /// only claims.
    async fn intake(&self, intake: &Intake<'_>) -> Result<Claimed, LedgerError> {
        self.claim(intake.claim).await
    }
}

impl<T: EventLedger + ?Sized> EventLedger for &T {
    async fn claim(&self, claim: &Claim) -> Result<Claimed, LedgerError> {
        (**self).claim(claim).await
    }
    async fn commit(&self, commit: &Commit<'_>) -> Result<(), LedgerError> {
        (**self).commit(commit).await
    }
    fn keeps_intake(&self) -> bool {
        (**self).keeps_intake()
    }
    async fn intake(&self, intake: &Intake<'_>) -> Result<Claimed, LedgerError> {
        (**self).intake(intake).await
    }
}

/// A ledger with no event log over a schedule store (or none: `StoreLedger(None::<S>)`):
/// every delivery proceeds; a commit applies its writes, and a store failure is fatal.
#[derive(Debug, Clone, Default)]
pub struct StoreLedger<S>(pub S);

impl<S: ScheduleStore> EventLedger for StoreLedger<S> {
    async fn claim(&self, _claim: &Claim) -> Result<Claimed, LedgerError> {
        Ok(Claimed::Proceed {
            event_id: None,
            reprocess: false,
        })
    }

    async fn commit(&self, commit: &Commit<'_>) -> Result<(), LedgerError> {
        if commit.effects.writes.is_empty() {
            return Ok(());
        }
        self.0
            .apply(&commit.effects.writes)
            .await
            .map_err(LedgerError::Store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::event::{allowed_events, validate};
    use serde_json::json;

    fn event(payload: Value) -> WebhookEvent {
        let Value::Object(map) = payload else {
            panic!("object")
        };
        validate(map, &allowed_events(&[])).expect("valid")
    }

    #[test]
    fn owners_are_the_appointment_else_the_prescription_else_the_delivery() {
        let apt = event(json!({"event":"appointment.created","data":{"appointment_id":"a1"}}));
        assert_eq!(owner_of(&apt, "k"), "a1");
        let rx = event(json!({"event":"prescription.created","data":{"prescription_id":"p9"}}));
        assert_eq!(owner_of(&rx, "k"), "rx:p9");
        let rx2 = event(json!({"event":"prescription.updated","data":{"rx_id":"r2"}}));
        assert_eq!(owner_of(&rx2, "k"), "rx:r2");
        let bare = event(json!({"event":"prescription.created","data":{}}));
        assert_eq!(owner_of(&bare, "abc"), "evt:abc");
        let with_apt = event(
            json!({"event":"prescription.created","data":{"appointment_id":"a2","prescription_id":"p"}}),
        );
        assert_eq!(owner_of(&with_apt, "k"), "a2");
    }

    #[test]
    fn a_claim_carries_ids_only() {
        let e = event(json!({"event":"appointment.created","transaction_id":"t1",
            "business_id":"b1","data":{"appointment_id":"a1","patient_name":"Asha"}}));
        let c = Claim::for_event(&e, "key".into(), 5);
        assert_eq!(c.facts.transaction_id.as_deref(), Some("t1"));
        assert_eq!(c.facts.business_id.as_deref(), Some("b1"));
        assert_eq!(c.facts.appointment_id.as_deref(), Some("a1"));
        assert_eq!(c.owner, "a1");
        assert!(!serde_json::to_string(&c).unwrap().contains("Asha"));
    }

    #[test]
    fn effects_split_by_owner_keep_their_order() {
        let status = |id: &str, status: &str| ScheduleWrite::UpdateStatus {
            appointment_id: id.into(),
            status: status.into(),
            start_time: None,
            end_time: None,
        };
        let cancel = |id: &str| ReminderOp::CancelPending {
            appointment_id: id.into(),
            reason: "r".into(),
        };
        let effects = Effects {
            writes: vec![
                status("old", "RES"),
                status("new", "BK"),
                status("new", "CN"),
            ],
            reminder_ops: vec![cancel("old"), cancel("new")],
        };
        let parts = effects.by_owner();
        let owners: Vec<&str> = parts.iter().map(|(o, _)| o.as_str()).collect();
        assert_eq!(owners, ["old", "new"]);
        assert_eq!(parts[0].1.writes, [status("old", "RES")]);
        assert_eq!(parts[0].1.reminder_ops, [cancel("old")]);
        assert_eq!(
            parts[1].1.writes,
            [status("new", "BK"), status("new", "CN")]
        );
        assert_eq!(parts[1].1.reminder_ops, [cancel("new")]);
        assert!(Effects::default().by_owner().is_empty());
    }

    #[test]
    fn a_held_intake_runs_after_its_lease_and_a_gate_waits_for_its_origin() {
        use HeldAction::*;
        use IntakeMode::{Gate, Whole, Worker};
        assert_eq!(held_action(Worker, None, 100, 99), Wait(100));
        assert_eq!(held_action(Worker, None, 100, 100), Run);
        assert_eq!(held_action(Whole, None, 100, 150), Run);
        assert_eq!(held_action(Gate, Some(204), 100, 0), Run, "at once");
        assert_eq!(held_action(Gate, Some(503), 100, 0), OriginFailed(503));
        assert_eq!(held_action(Gate, Some(302), 100, 500), OriginFailed(302));
        assert_eq!(held_action(Gate, None, 100, 50), Wait(100));
        assert_eq!(held_action(Gate, None, 100, 100), OriginUnknown);
        let v = serde_json::to_value(IntakeMode::Gate).unwrap();
        assert_eq!(v, json!("gate"));
    }

    #[test]
    fn a_deferred_commit_carries_no_body() {
        let e = event(json!({"event":"appointment.created","data":{"appointment_id":"a1"}}));
        let d = Deferred {
            event_id: Some("evt_1".into()),
            claim: Claim::for_event(&e, "k".into(), 1),
            attempt: Attempt::ended(Settled::Processed, 200, None, false),
            effects: Effects::default(),
            outgoing: Some(json!({"type":"appointment.created"})),
        };
        let c = d.commit();
        assert!(c.body.is_empty());
        assert_eq!(c.event_id, Some("evt_1"));
        assert_eq!(c.outgoing, d.outgoing.as_ref());
    }

    #[test]
    fn claimed_is_a_tagged_wire_type() {
        let v = serde_json::to_value(Claimed::InFlight {
            event_id: "e".into(),
            retry_after_secs: 3,
        })
        .unwrap();
        assert_eq!(v, json!({"inFlight":{"eventId":"e","retryAfterSecs":3}}));
        let back: Claimed = serde_json::from_value(v).unwrap();
        assert!(matches!(
            back,
            Claimed::InFlight {
                retry_after_secs: 3,
                ..
            }
        ));
    }

    #[test]
    fn wire_decoders_read_serde_format() {
        use crate::reminders::ReminderOp;
        use crate::schedule::{ScheduleRecord, ScheduleWrite};
        use crate::support::from_json::FromJson;
        fn both<T>(value: &T)
        where
            T: Serialize + serde::de::DeserializeOwned + FromJson + PartialEq + std::fmt::Debug,
        {
            let json = serde_json::to_value(value).unwrap();
            let derived: T = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(&T::from_json(json.clone()).unwrap(), value, "{json}");
            assert_eq!(derived, *value, "{json}");
        }
        let e = event(
            json!({"event":"appointment.created","business_id":"b","data":{"appointment_id":"a1"}}),
        );
        let mut claim = Claim::for_event(&e, "k".into(), 17);
        both(&claim);
        claim.replay_of = Some("evt_0".into());
        claim.source = Some("src_1".into());
        claim.facts.transaction_id = Some("t".into());
        both(&claim);
        both(&Claimed::Proceed {
            event_id: None,
            reprocess: true,
        });
        both(&Claimed::Proceed {
            event_id: Some("e".into()),
            reprocess: false,
        });
        both(&Claimed::Duplicate {
            event_id: "e".into(),
        });
        both(&Claimed::InFlight {
            event_id: "e".into(),
            retry_after_secs: 30,
        });
        both(&Attempt::ended(
            Settled::Failed,
            502,
            Some("appointment_fetch_failed"),
            true,
        ));
        both(&Attempt {
            amends: true,
            ..Attempt::ended(Settled::Processed, 200, None, false)
        });
        for mode in [IntakeMode::Worker, IntakeMode::Gate, IntakeMode::Whole] {
            both(&mode);
        }
        let record = ScheduleRecord {
            appointment_id: "a1".into(),
            start_time: 1_950_000_000,
            end_time: 1_950_001_800,
            status: "BK".into(),
            visit_type: "".into(),
            created_at: -1,
            p_aid: Some("a0".into()),
        };
        let effects = Effects {
            writes: vec![
                ScheduleWrite::Upsert(record.clone()),
                ScheduleWrite::Upsert(ScheduleRecord {
                    p_aid: None,
                    ..record
                }),
                ScheduleWrite::UpdateStatus {
                    appointment_id: "a0".into(),
                    status: "RES".into(),
                    start_time: None,
                    end_time: Some(5),
                },
                ScheduleWrite::MarkReminderSent {
                    appointment_id: "a1".into(),
                    at: 9,
                },
            ],
            reminder_ops: vec![
                ReminderOp::Plan {
                    appointment_id: "a1".into(),
                    start_time: 1_950_000_000,
                    create_missing: true,
                },
                ReminderOp::CancelPending {
                    appointment_id: "a0".into(),
                    reason: "moved".into(),
                },
            ],
        };
        both(&effects);
        both(&Effects::default());
    }

    #[test]
    fn wire_decoders_refuse_what_serde_refuses() {
        use crate::support::from_json::FromJson;
        let claim = json!({"dedupKey":"k","owner":"a1","facts":{"event":"x"},"receivedAtMs":1});
        // Optional fields may be missing or null; unknown fields are ignored.
        let mut c = Claim::from_json(claim.clone()).unwrap();
        assert_eq!(c.source, None);
        let mut with_null = claim.clone();
        with_null["replayOf"] = Value::Null;
        with_null["later"] = json!(1);
        c = Claim::from_json(with_null).unwrap();
        assert_eq!(c.replay_of, None);
        for (key, bad) in [
            ("dedupKey", Value::Null),
            ("receivedAtMs", json!(1.5)),
            ("receivedAtMs", json!("1")),
            ("facts", json!({})),
            ("owner", json!(3)),
        ] {
            let mut v = claim.clone();
            v[key] = bad;
            let derived = serde_json::from_value::<Claim>(v.clone());
            let ours = Claim::from_json(v.clone());
            assert!(derived.is_err() && ours.is_err(), "{v}");
            assert!(ours.unwrap_err().to_string().contains(key), "{key}");
        }
        assert!(Claimed::from_json(json!({"accepted":{}})).is_err());
        assert!(
            Claimed::from_json(json!({"inFlight":{"eventId":"e","retryAfterSecs":-1}})).is_err()
        );
        assert!(Attempt::from_json(
            json!({"settled":"done","httpStatus":200,"reprocess":false,"amends":false})
        )
        .is_err());
        assert!(Attempt::from_json(
            json!({"settled":"failed","httpStatus":70000,"reprocess":false,"amends":false})
        )
        .is_err());
        assert!(Effects::from_json(json!({"writes":[{"op":"delete"}],"reminderOps":[]})).is_err());
        assert!(Effects::from_json(json!({"writes":[]})).is_err());
        assert!(IntakeMode::from_json(json!("Gate")).is_err());
    }
}
