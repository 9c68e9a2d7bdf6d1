//! The pipeline against its ledger: claim before any work, commit before anything leaves,
//! duplicates and copies in flight do nothing, failures are recorded with stable codes.

mod common;

use std::cell::{Cell, RefCell};

use common::*;
use eka_webhook_edge::reminders::ReminderOp;
use eka_webhook_edge::schedule::ScheduleWrite;
use eka_webhook_edge::signing::signature::{sign, RustMac};
use eka_webhook_edge::webhook::ledger::{
    Attempt, Claim, Claimed, Commit, EventLedger, Intake, IntakeMode, LedgerError, Settled,
};
use eka_webhook_edge::webhook::pipeline::{Outcome, Pipeline};
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
    /// Keeps intakes (as the Worker's objects do).
    keeps: Cell<bool>,
    /// Each intake: its mode, body and outgoing event.
    intakes: RefCell<Vec<Kept>>,
}

/// An intake as the ledger saw it: mode, body, outgoing event.
type Kept = (IntakeMode, Vec<u8>, Option<Value>);

impl ScriptedLedger {
    fn answering(answer: Result<Claimed, LedgerError>) -> Self {
        ScriptedLedger {
            answer: RefCell::new(answer),
            fail_commit: Cell::new(false),
            claims: RefCell::default(),
            commits: RefCell::default(),
            keeps: Cell::new(false),
            intakes: RefCell::default(),
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

    fn keeps_intake(&self) -> bool {
        self.keeps.get()
    }

    async fn intake(&self, intake: &Intake<'_>) -> Result<Claimed, LedgerError> {
        self.intakes.borrow_mut().push((
            intake.mode,
            intake.body.to_vec(),
            intake.outgoing.cloned(),
        ));
        self.claim(intake.claim).await
    }
}

impl ScriptedLedger {
    /// Ledger calls made so far (claims, intakes and commits).
    fn calls(&self) -> usize {
        self.claims.borrow().len() + self.commits.borrow().len()
    }

    fn keeping(answer: Result<Claimed, LedgerError>) -> Self {
        let ledger = Self::answering(answer);
        ledger.keeps.set(true);
        ledger
    }
}

/// Signs and sends `body` through `ledger` with no sink (destinations are the ledger's).
fn send_silent(w: &World, ledger: &ScriptedLedger, body: &Value) -> Outcome {
    let raw = body.to_string();
    let header = sign(raw.as_bytes(), KEY.as_bytes(), NOW_MS / 1000, &RustMac);
    let headers = [("eka-webhook-signature".to_owned(), header)];
    block_on(silent(w, ledger).handle(raw.as_bytes(), &headers))
}

type Silent<'a> =
    Pipeline<'a, std::rc::Rc<FakeEka>, ManualClock, ScriptedLedger, Option<RecordingSink>, RustMac>;

fn silent<'a>(w: &'a World, ledger: &'a ScriptedLedger) -> Silent<'a> {
    Pipeline {
        config: &w.config,
        client: &w.client,
        ledger,
        sink: &None,
        mac: &RustMac,
    }
}

fn prescription() -> Value {
    json!({"service":"prescription","event":"prescription.created","transaction_id":"t-2",
           "business_id":"b-1","timestamp":1730189586,
           "data":{"prescription_id":"p-1","patient_name":"Asha"}})
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
fn a_re_formatted_copy_is_claimed_under_the_key_of_the_bytes_the_signature_matched() {
    let w = World::new();
    let ledger = ScriptedLedger::proceeding();
    let compact = created("apt-1").to_string();
    let header = sign(compact.as_bytes(), KEY.as_bytes(), NOW_MS / 1000, &RustMac);
    let headers = [("eka-webhook-signature".to_owned(), header)];
    let pretty = serde_json::to_string_pretty(&created("apt-1")).unwrap();
    for body in [compact.clone(), pretty, format!(" {compact}")] {
        let out = block_on(w.pipeline(&ledger).handle(body.as_bytes(), &headers));
        assert_eq!(out.status, 200, "{}", out.body);
    }
    let claims = ledger.claims.borrow();
    let keys: Vec<&str> = claims.iter().map(|c| c.dedup_key.as_str()).collect();
    let first = eka_webhook_edge::webhook::pipeline::dedup_key(compact.as_bytes());
    assert_eq!(keys, [first.as_str(); 3], "one delivery, three formats");
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
    let out = block_on(w.pipeline(&ledger).replay("evt_1", body.as_bytes(), None));
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(
        ledger.claims.borrow()[0].replay_of.as_deref(),
        Some("evt_1")
    );
    assert_eq!(w.sink.events.borrow().len(), 1);
    let refused = block_on(
        w.pipeline(&ledger)
            .replay("evt_1", b"{\"event\":\"other\"}", None),
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
fn nothing_to_enrich_is_one_ledger_call_that_claims_and_commits() {
    let w = World::new();
    let ledger = ScriptedLedger::keeping(Ok(Claimed::Proceed {
        event_id: Some("evt_7".into()),
        reprocess: false,
    }));
    let out = send_silent(&w, &ledger, &prescription());
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(
        out.body,
        json!({"success":true,"event":"prescription.created"})
    );
    assert_eq!(out.event_id.as_deref(), Some("evt_7"));
    assert_eq!(ledger.calls(), 1, "one call in all");
    assert!(out.deferred.is_none());
    let intakes = ledger.intakes.borrow();
    let (mode, body, outgoing) = &intakes[0];
    assert_eq!(*mode, IntakeMode::Whole);
    assert_eq!(body, &prescription().to_string().into_bytes());
    assert_eq!(
        outgoing.as_ref(),
        Some(&json!({"type":"prescription.created","payload":prescription()}))
    );
    assert!(w.fake.paths().is_empty());
    // A copy: the same one call, answered as a duplicate.
    let dup = ScriptedLedger::keeping(Ok(Claimed::Duplicate {
        event_id: "evt_7".into(),
    }));
    let out = send_silent(&w, &dup, &prescription());
    assert_eq!((out.status, out.duplicate, dup.calls()), (200, true, 1));
}

#[test]
fn an_enriched_event_makes_one_ledger_call_before_the_answer_and_defers_its_commit() {
    let w = World::new();
    let ledger = ScriptedLedger::keeping(Ok(Claimed::Proceed {
        event_id: Some("evt_1".into()),
        reprocess: true,
    }));
    let out = send_silent(&w, &ledger, &created("apt-1"));
    assert_eq!(out.status, 200, "{}", out.body);
    assert_eq!(out.body["appointmentDetails"]["appointment_id"], "apt-1");
    assert_eq!(
        ledger.calls(),
        1,
        "the intake only: the commit follows the answer"
    );
    assert_eq!(ledger.intakes.borrow()[0].0, IntakeMode::Worker);
    let deferred = out
        .deferred
        .as_ref()
        .expect("a commit for after the answer");
    let commit = deferred.commit();
    assert_eq!(commit.event_id, Some("evt_1"));
    assert_eq!(
        (commit.attempt.settled, commit.attempt.reprocess),
        (Settled::Processed, true)
    );
    assert!(
        matches!(&commit.effects.writes[..], [ScheduleWrite::Upsert(r)] if r.appointment_id == "apt-1")
    );
    assert_eq!(
        commit
            .outgoing
            .map(|o| o["appointmentDetails"]["appointment_id"].clone()),
        Some(json!("apt-1"))
    );
    assert!(
        commit.body.is_empty(),
        "the ledger holds the body since the intake"
    );
    // Sending it is the adapter's; the ledger takes it like any commit.
    block_on(ledger.commit(&commit)).expect("committed");
    assert_eq!(ledger.settled(), [(Settled::Processed, 200, None, 1)]);
}

#[test]
fn the_fetch_that_started_with_the_intake_is_dropped_for_a_copy() {
    let w = World::new();
    for answer in [
        Claimed::Duplicate {
            event_id: "evt_0".into(),
        },
        Claimed::InFlight {
            event_id: "evt_0".into(),
            retry_after_secs: 4,
        },
    ] {
        let ledger = ScriptedLedger::keeping(Ok(answer));
        let out = send_silent(&w, &ledger, &created("apt-1"));
        assert!(out.status == 200 || out.status == 409, "{}", out.status);
        assert!(out.deferred.is_none() && ledger.commits.borrow().is_empty());
        assert!(
            !w.fake.paths().iter().any(|p| p.contains("/patient")),
            "the enrichment went on after the intake said stop: {:?}",
            w.fake.paths()
        );
    }
}

#[test]
fn a_failed_fetch_after_a_kept_intake_is_committed_as_failed_after_the_answer() {
    let w = World::new();
    w.fake.set("/dr/v1/appointment/apt-9", 500, json!({}));
    let ledger = ScriptedLedger::keeping(Ok(Claimed::Proceed {
        event_id: Some("evt_9".into()),
        reprocess: false,
    }));
    let out = send_silent(&w, &ledger, &created("apt-9"));
    assert_eq!(out.status, 502);
    assert_eq!(ledger.calls(), 1);
    let failed = out.deferred.as_ref().expect("deferred").commit();
    assert_eq!(
        (failed.attempt.settled, failed.attempt.error.as_deref()),
        (Settled::Failed, Some("appointment_fetch_failed"))
    );
}

#[test]
fn a_sink_that_delivers_during_the_webhook_still_waits_for_the_commit() {
    let w = World::new();
    let ledger = ScriptedLedger::keeping(Ok(Claimed::Proceed {
        event_id: Some("evt_1".into()),
        reprocess: false,
    }));
    for body in [created("apt-1"), prescription()] {
        let out = w.send_with(&ledger, &body);
        assert_eq!(out.status, 200, "{}", out.body);
        assert!(out.deferred.is_none());
        assert_eq!(
            ledger.intakes.borrow().last().map(|i| i.0),
            Some(IntakeMode::Worker)
        );
    }
    assert_eq!(
        ledger.commits.borrow().len(),
        2,
        "committed before each delivery"
    );
    assert_eq!(w.sink.events.borrow().len(), 2);
}

#[test]
fn a_gate_keeps_its_intake_and_the_ledger_resumes_it_itself() {
    use eka_webhook_edge::webhook::pipeline::Admission;
    let w = World::new();
    let raw = created("apt-1").to_string();
    let header = sign(raw.as_bytes(), KEY.as_bytes(), NOW_MS / 1000, &RustMac);
    let headers = [("eka-webhook-signature".to_owned(), header)];
    let ledger = ScriptedLedger::keeping(Ok(Claimed::Proceed {
        event_id: Some("evt_1".into()),
        reprocess: false,
    }));
    let Admission::Admitted(admitted) =
        block_on(silent(&w, &ledger).admit(raw.as_bytes(), &headers))
    else {
        panic!("not admitted");
    };
    assert_eq!(ledger.intakes.borrow()[0].0, IntakeMode::Gate);
    assert_eq!(ledger.intakes.borrow()[0].1, raw.as_bytes());
    assert!(w.fake.paths().is_empty());
    // The origin took it; the ledger runs the rest with what it kept, committing first.
    let out = block_on(silent(&w, &ledger).resume(
        "evt_1",
        admitted.claim.clone(),
        false,
        raw.as_bytes(),
    ));
    assert_eq!(out.status, 200);
    assert!(out.deferred.is_none());
    assert_eq!(ledger.settled(), [(Settled::Processed, 200, None, 1)]);
    assert_eq!(
        ledger.commits.borrow()[0].event_id.as_deref(),
        Some("evt_1")
    );
    // A kept body that no longer passes (the allowed events changed) fails on record.
    let mut narrower = World::new();
    narrower.config.allowed_events = vec!["prescription.created".into()];
    let ledger = ScriptedLedger::keeping(Ok(Claimed::Proceed {
        event_id: None,
        reprocess: false,
    }));
    let out =
        block_on(silent(&narrower, &ledger).resume("evt_2", admitted.claim, true, raw.as_bytes()));
    assert_eq!(out.status, 400);
    assert_eq!(
        ledger.settled(),
        [(Settled::Failed, 400, Some("event_refused".into()), 0)]
    );
}

#[test]
fn a_sources_claims_carry_it_and_its_duplicate_keys_are_its_own() {
    use eka_webhook_edge::webhook::pipeline::{dedup_key, source_key};
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
    assert_eq!(a.dedup_key, source_key(Some("src_a"), dedup_key(&body)));
    // The same body at two sources: two keys, so two events; the same object decides both.
    assert_ne!(a.dedup_key, b.dedup_key);
    assert_ne!(a.dedup_key, d.dedup_key);
    assert_eq!(a.dedup_key.len(), 64);
    assert_eq!((a.owner.as_str(), b.owner.as_str()), ("apt-1", "apt-1"));
}

#[test]
fn a_sources_duplicate_window_and_lease_travel_with_its_claims() {
    let mut w = World::new();
    let default = ScriptedLedger::proceeding();
    w.send_with(&default, &created("apt-w"));
    // The environment's account: the object's own window (DEDUP_WINDOW_HOURS) applies.
    assert_eq!(default.claims.borrow()[0].dedup_window_ms, None);
    assert_eq!(default.claims.borrow()[0].lease_ms, None);
    w.config.source = Some("src_a".into());
    w.config.dedup_window_ms = Some(2 * 3_600_000);
    w.config.claim_lease_ms = Some(130_000);
    let at_a = ScriptedLedger::proceeding();
    w.send_with(&at_a, &created("apt-w"));
    let claim = at_a.claims.borrow()[0].clone();
    assert_eq!(claim.dedup_window_ms, Some(2 * 3_600_000));
    assert_eq!(claim.lease_ms, Some(130_000));
    // It survives the trip to the object (the held intake keeps the claim as JSON too).
    let json = serde_json::to_value(&claim).unwrap();
    assert_eq!(json["dedupWindowMs"], 7_200_000);
    assert_eq!(json["leaseMs"], 130_000);
    let back = <Claim as eka_webhook_edge::support::from_json::FromJson>::from_json(json).unwrap();
    assert_eq!(back, claim);
}

#[test]
fn a_replay_claims_under_the_key_its_delivery_was_claimed_with() {
    use eka_webhook_edge::webhook::pipeline::{dedup_key, source_key};
    let mut w = World::new();
    let body = created("apt-1").to_string();
    // The row's key (a signature that matched the re-serialised body gives one the stored
    // bytes do not): the replay settles that claim, in that claim's object.
    let ledger = ScriptedLedger::proceeding();
    let out = block_on(
        w.pipeline(&ledger)
            .replay("evt_1", body.as_bytes(), Some("k-claimed")),
    );
    assert_eq!(out.status, 200, "{}", out.body);
    let claim = ledger.claims.borrow()[0].clone();
    assert_eq!(claim.dedup_key, "k-claimed");
    assert_eq!(claim.owner, "apt-1");
    // Without it (gone with the window): the body's own key at the source.
    w.config.source = Some("src_a".into());
    let ledger = ScriptedLedger::proceeding();
    block_on(w.pipeline(&ledger).replay("evt_1", body.as_bytes(), None));
    let claim = ledger.claims.borrow()[0].clone();
    assert_eq!(
        claim.dedup_key,
        source_key(Some("src_a"), dedup_key(body.as_bytes()))
    );
    assert_eq!(claim.source.as_deref(), Some("src_a"));
}

#[test]
fn a_refusal_is_decided_from_the_request_alone_and_takes_nothing_in() {
    use eka_webhook_edge::support::http::Clock;
    let w = World::new();
    let ledger = ScriptedLedger::proceeding();
    let raw = created("apt-1").to_string();
    let signed = sign(
        raw.as_bytes(),
        KEY.as_bytes(),
        w.clock.now_ms() / 1000,
        &RustMac,
    );
    let good = [("eka-webhook-signature".to_owned(), signed)];
    assert!(w.pipeline(&ledger).refusal(raw.as_bytes(), &good).is_none());
    let forged = sign(
        raw.as_bytes(),
        b"another-key",
        w.clock.now_ms() / 1000,
        &RustMac,
    );
    let bad = [("eka-webhook-signature".to_owned(), forged)];
    let out = w
        .pipeline(&ledger)
        .refusal(raw.as_bytes(), &bad)
        .map(|o| o.status);
    assert_eq!(out, Some(403));
    assert_eq!(
        w.pipeline(&ledger)
            .refusal(raw.as_bytes(), &[])
            .map(|o| o.status),
        Some(403)
    );
    assert!(ledger.claims.borrow().is_empty(), "nothing claimed");
}
