//! The pipeline against its ledger: claim before any work, commit before anything leaves,
//! duplicates and copies in flight do nothing, failures are recorded with stable codes.

mod common;

use std::cell::{Cell, RefCell};

use common::*;
use eka_webhook_edge::reminders::ReminderOp;
use eka_webhook_edge::schedule::ScheduleWrite;
use eka_webhook_edge::signing::signature::{sign, RustMac};
use eka_webhook_edge::webhook::ledger::{
    Attempt, Claim, Claimed, Commit, EventLedger, LedgerError, Settled,
};
use futures::executor::block_on;
use serde_json::{json, Value};

/// What a commit carried, owned.
#[derive(Debug, Clone)]
struct Committed {
    event_id: Option<String>,
    attempt: Attempt,
    writes: Vec<ScheduleWrite>,
    ops: Vec<ReminderOp>,
    body: Vec<u8>,
}

/// A scripted ledger: answers claims with `answer`, records claims and commits.
struct ScriptedLedger {
    answer: RefCell<Result<Claimed, LedgerError>>,
    fail_commit: Cell<bool>,
    claims: RefCell<Vec<Claim>>,
    commits: RefCell<Vec<Committed>>,
}

impl ScriptedLedger {
    fn answering(answer: Result<Claimed, LedgerError>) -> Self {
        ScriptedLedger {
            answer: RefCell::new(answer),
            fail_commit: Cell::new(false),
            claims: RefCell::default(),
            commits: RefCell::default(),
        }
    }

    /// How each commit settled: (settled, status answered, error code, writes carried).
    fn settled(&self) -> Vec<(Settled, u16, Option<String>, usize)> {
        self.commits
            .borrow()
            .iter()
            .map(|c| {
                (
                    c.attempt.settled,
                    c.attempt.http_status,
                    c.attempt.error.clone(),
                    c.writes.len(),
                )
            })
            .collect()
    }

    fn proceeding() -> Self {
        Self::answering(Ok(Claimed::Proceed {
            event_id: Some("evt_1".into()),
            reprocess: false,
        }))
    }
}

impl EventLedger for ScriptedLedger {
    async fn claim(&self, claim: &Claim) -> Result<Claimed, LedgerError> {
        self.claims.borrow_mut().push(claim.clone());
        self.answer.borrow().clone()
    }

    async fn commit(&self, c: &Commit<'_>) -> Result<(), LedgerError> {
        self.commits.borrow_mut().push(Committed {
            event_id: c.event_id.map(str::to_owned),
            attempt: c.attempt.clone(),
            writes: c.effects.writes.clone(),
            ops: c.effects.reminder_ops.clone(),
            body: c.body.to_vec(),
        });
        if self.fail_commit.get() {
            return Err(LedgerError::Unavailable("object refused".into()));
        }
        Ok(())
    }
}

fn created(id: &str) -> Value {
    json!({"service":"appointment","event":"appointment.created","transaction_id":"t-1",
           "business_id":"b-1","timestamp":1730189586,
           "data":{"appointment_id":id,"status":"BK","action":"created"}})
}

#[test]
fn the_claim_comes_first_and_the_commit_precedes_delivery() {
    let w = World::new();
    let ledger = ScriptedLedger::proceeding();
    let out = w.send_with(&ledger, &created("apt-1"));
    assert_eq!(out.status, 200, "{}", out.body);
    assert!(
        out.body.get("eventId").is_none(),
        "the SDK's body, unchanged"
    );
    assert_eq!(out.event_id.as_deref(), Some("evt_1"));
    let claims = ledger.claims.borrow();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].owner, "apt-1");
    assert_eq!(claims[0].facts.transaction_id.as_deref(), Some("t-1"));
    assert_eq!(claims[0].dedup_key.len(), 64);
    let commits = ledger.commits.borrow();
    assert_eq!(commits.len(), 1);
    let c = &commits[0];
    assert_eq!(
        (
            c.attempt.settled,
            c.attempt.http_status,
            c.attempt.error.as_deref()
        ),
        (Settled::Processed, 200, None)
    );
    assert_eq!(c.event_id.as_deref(), Some("evt_1"));
    assert!(matches!(&c.writes[..], [ScheduleWrite::Upsert(r)] if r.appointment_id == "apt-1"));
    assert!(matches!(
        &c.ops[..],
        [ReminderOp::Plan {
            create_missing: true,
            ..
        }]
    ));
    assert_eq!(c.body, created("apt-1").to_string().into_bytes());
    assert_eq!(w.sink.events.borrow().len(), 1);
    assert_eq!(w.sink.events.borrow()[0].event_id.as_deref(), Some("evt_1"));
}

#[test]
fn a_duplicate_answers_200_and_does_nothing_else() {
    let w = World::new();
    let ledger = ScriptedLedger::answering(Ok(Claimed::Duplicate {
        event_id: "evt_0".into(),
    }));
    let out = w.send_with(&ledger, &created("apt-1"));
    assert_eq!(out.status, 200);
    assert_eq!(
        out.body,
        json!({"success":true,"duplicate":true,"event":"appointment.created","eventId":"evt_0"})
    );
    assert!(out.duplicate && out.error.is_none());
    assert!(w.fake.requests.borrow().is_empty(), "enriched a duplicate");
    assert!(ledger.commits.borrow().is_empty());
    assert!(w.sink.events.borrow().is_empty());
}

#[test]
fn a_copy_in_flight_answers_409_with_retry_after_and_does_nothing_else() {
    let w = World::new();
    let ledger = ScriptedLedger::answering(Ok(Claimed::InFlight {
        event_id: "evt_0".into(),
        retry_after_secs: 7,
    }));
    let out = w.send_with(&ledger, &created("apt-1"));
    assert_eq!(out.status, 409);
    assert_eq!(out.retry_after_secs, Some(7));
    assert_eq!(out.body["eventId"], "evt_0");
    assert!(w.fake.requests.borrow().is_empty());
    assert!(ledger.commits.borrow().is_empty());
    assert!(w.sink.events.borrow().is_empty());
}

#[test]
fn an_unreachable_ledger_answers_500_before_any_work() {
    let w = World::new();
    let ledger = ScriptedLedger::answering(Err(LedgerError::Unavailable("down".into())));
    let out = w.send_with(&ledger, &created("apt-1"));
    assert_answered(&out, 500, "Could not persist the event; retry later");
    assert!(w.fake.requests.borrow().is_empty());
    assert!(w.sink.events.borrow().is_empty());
}

#[test]
fn a_refused_commit_answers_500_and_delivers_nothing() {
    let w = World::new();
    let ledger = ScriptedLedger::proceeding();
    ledger.fail_commit.set(true);
    let out = w.send_with(&ledger, &created("apt-1"));
    assert_eq!(out.status, 500);
    assert!(out.persistence_failed);
    assert!(
        w.sink.events.borrow().is_empty(),
        "delivered before persisting"
    );
}

#[test]
fn failures_after_the_claim_are_committed_as_failed_with_stable_codes() {
    let w = World::new();
    let ledger = ScriptedLedger::proceeding();
    w.fake.set(
        "/dr/v1/appointment/apt-9",
        500,
        json!({"detail":"Asha's record"}),
    );
    let out = w.send_with(&ledger, &created("apt-9"));
    assert_eq!(out.status, 502);
    assert_eq!(
        ledger.settled(),
        [(
            Settled::Failed,
            502,
            Some("appointment_fetch_failed".into()),
            0
        )]
    );
    let ledger = ScriptedLedger::proceeding();
    w.sink.fail.set(true);
    let out = w.send_with(&ledger, &created("apt-1"));
    assert_eq!(out.status, 500);
    assert_eq!(
        ledger
            .settled()
            .into_iter()
            .map(|(settled, status, error, _)| (settled, status, error))
            .collect::<Vec<_>>(),
        [
            (Settled::Processed, 200, None),
            (Settled::Failed, 500, Some("forward_failed".into()))
        ]
    );
}

#[test]
fn a_replay_skips_the_signature_and_names_the_event_it_replays() {
    let w = World::new();
    let ledger = ScriptedLedger::proceeding();
    let body = created("apt-1").to_string();
    let out = block_on(w.pipeline(&ledger).replay("evt_1", body.as_bytes()));
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(
        ledger.claims.borrow()[0].replay_of.as_deref(),
        Some("evt_1")
    );
    assert_eq!(w.sink.events.borrow().len(), 1);
    let refused = block_on(
        w.pipeline(&ledger)
            .replay("evt_1", b"{\"event\":\"other\"}"),
    );
    assert_eq!(refused.status, 400);
}

#[test]
fn a_gate_admits_before_the_origin_and_records_what_the_origin_refused() {
    use eka_webhook_edge::webhook::pipeline::Admission;
    let w = World::new();
    let raw = created("apt-1").to_string();
    let header = sign(raw.as_bytes(), KEY.as_bytes(), NOW_MS / 1000, &RustMac);
    let headers = [("eka-webhook-signature".to_owned(), header)];
    // Refused before any claim: the origin is never asked.
    let ledger = ScriptedLedger::proceeding();
    let bad = [("eka-webhook-signature".to_owned(), "t=1,v1=00".to_owned())];
    let Admission::Answer(out) = block_on(w.pipeline(&ledger).admit(raw.as_bytes(), &bad)) else {
        panic!("a bad signature was admitted");
    };
    assert_eq!(out.status, 403);
    assert!(ledger.claims.borrow().is_empty());
    // Admitted: claimed, nothing fetched yet.
    let Admission::Admitted(admitted) =
        block_on(w.pipeline(&ledger).admit(raw.as_bytes(), &headers))
    else {
        panic!("a good delivery was not admitted");
    };
    assert_eq!(ledger.claims.borrow().len(), 1);
    assert_eq!(admitted.event_id.as_deref(), Some("evt_1"));
    assert!(
        w.fake.paths().is_empty(),
        "nothing fetched before the origin answered"
    );
    // The origin answered 503: failed on record with a stable code, no writes, nothing sent.
    block_on(
        w.pipeline(&ledger)
            .origin_failed(&admitted, raw.as_bytes(), Some(503)),
    )
    .expect("recorded");
    block_on(
        w.pipeline(&ledger)
            .origin_failed(&admitted, raw.as_bytes(), None),
    )
    .expect("recorded");
    assert_eq!(
        ledger.settled(),
        [
            (Settled::Failed, 503, Some("origin_status".into()), 0),
            (Settled::Failed, 502, Some("origin_unreachable".into()), 0)
        ]
    );
    assert!(w.sink.events.borrow().is_empty());
    // The origin took it: the rest runs as in `handle`.
    let out = block_on(w.pipeline(&ledger).proceed(*admitted, raw.as_bytes()));
    assert_eq!(out.status, 200);
    assert_eq!(
        ledger.commits.borrow().last().map(|c| c.attempt.settled),
        Some(Settled::Processed)
    );
    assert_eq!(w.sink.events.borrow().len(), 1);
    // A duplicate is answered at admission.
    let dup = ScriptedLedger::answering(Ok(Claimed::Duplicate {
        event_id: "evt_1".into(),
    }));
    let Admission::Answer(out) = block_on(w.pipeline(&dup).admit(raw.as_bytes(), &headers)) else {
        panic!("a duplicate was admitted");
    };
    assert_eq!((out.status, out.duplicate), (200, true));
}

#[test]
fn a_sources_claims_carry_it_and_its_duplicate_keys_are_its_own() {
    use eka_webhook_edge::webhook::pipeline::{dedup_key, source_dedup_key};
    let mut w = World::new();
    let default = ScriptedLedger::proceeding();
    w.send_with(&default, &created("apt-1"));
    w.config.source = Some("src_a".into());
    let at_a = ScriptedLedger::proceeding();
    w.send_with(&at_a, &created("apt-1"));
    w.config.source = Some("src_b".into());
    let at_b = ScriptedLedger::proceeding();
    w.send_with(&at_b, &created("apt-1"));
    let (d, a, b) = (
        default.claims.borrow()[0].clone(),
        at_a.claims.borrow()[0].clone(),
        at_b.claims.borrow()[0].clone(),
    );
    let body = created("apt-1").to_string().into_bytes();
    // The default source's key is what it was before sources existed.
    assert_eq!(d.dedup_key, dedup_key(&body));
    assert_eq!(d.source, None);
    assert_eq!(a.source.as_deref(), Some("src_a"));
    assert_eq!(a.dedup_key, source_dedup_key(Some("src_a"), &body));
    // The same body at two sources: two keys, so two events; the same object decides both.
    assert_ne!(a.dedup_key, b.dedup_key);
    assert_ne!(a.dedup_key, d.dedup_key);
    assert_eq!(a.dedup_key.len(), 64);
    assert_eq!((a.owner.as_str(), b.owner.as_str()), ("apt-1", "apt-1"));
}
