//! The event log: one row per distinct delivery that passed the signature check, ids only (no
//! patient data), its body sealed for replay, and refusals counted per reason per hour. The
//! rules live here — ids, the duplicate decision, state transitions, retention, the admin
//! query and its SQL (SQLite, i.e. D1) — and the Worker stores and routes.

use serde::Serialize;

use crate::webhook::ledger::Settled;

/// One row per delivery.
pub const EVENT_TABLE: &str = "eka_webhook_event";
/// Sealed bodies, kept for replay.
pub const BODY_TABLE: &str = "eka_webhook_event_body";
/// Refusals per hour and reason.
pub const REFUSAL_TABLE: &str = "eka_webhook_refusal";

mod claim;
pub mod claim_store;
mod copies;
mod ids;
pub mod limits;
mod query;
mod refusal;
mod settings;
mod writes;

pub use claim::*;
pub use copies::*;
pub use ids::*;
pub use query::*;
pub use refusal::*;
pub use settings::*;
pub use writes::*;

/// Where an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EventStatus {
    /// Claimed; the work is running.
    Processing,
    /// Effects committed.
    Processed,
    /// The attempt failed; a copy or a replay processes it again.
    Failed,
}

impl EventStatus {
    /// Every stored name, in display order.
    pub const ALL_NAMES: [&'static str; 3] = ["processing", "processed", "failed"];

    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventStatus::Processing => "processing",
            EventStatus::Processed => "processed",
            EventStatus::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "processing" => Some(EventStatus::Processing),
            "processed" => Some(EventStatus::Processed),
            "failed" => Some(EventStatus::Failed),
            _ => None,
        }
    }
}

impl From<Settled> for EventStatus {
    fn from(s: Settled) -> Self {
        match s {
            Settled::Processed => EventStatus::Processed,
            Settled::Failed => EventStatus::Failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    use crate::signing::signature::SignatureError;
    use crate::support::sql::SqlValue;
    use crate::webhook::ledger::{Attempt, Claim, EventFacts};
    use crate::webhook::pipeline::WebhookError;

    fn claim() -> Claim {
        Claim {
            dedup_key: "k".into(),
            owner: "a1".into(),
            facts: EventFacts {
                event: "appointment.created".into(),
                transaction_id: Some("t".into()),
                appointment_id: Some("a1".into()),
                business_id: None,
            },
            received_at_ms: 1_000,
            replay_of: None,
            source: None,
            dedup_window_ms: None,
            lease_ms: None,
        }
    }

    #[test]
    fn ids_sort_by_time_and_round_trip() {
        let a = new_event_id(1_730_189_588_000, [0xff; 10]);
        let b = new_event_id(1_730_189_588_001, [0; 10]);
        assert!(a < b, "{a} < {b}");
        assert!(is_event_id(&a) && is_event_id(&b));
        assert_eq!(a.len(), 30);
        assert_eq!(event_id_time_ms(&a), Some(1_730_189_588_000));
        assert_eq!(new_event_id(0, [0; 10]), "evt_00000000000000000000000000");
        assert_ne!(new_event_id(5, [1; 10]), new_event_id(5, [2; 10]));
        for bad in [
            "",
            "evt_",
            "evt_0000000000000000000000000",
            "evt_0000000000000000000000000I",
            "evt_80000000000000000000000000",
            "x_00000000000000000000000000",
        ] {
            assert!(!is_event_id(bad), "{bad}");
        }
    }

    fn record(status: EventStatus, claimed_at_ms: i64) -> ClaimRecord {
        ClaimRecord {
            event_id: "evt_1".into(),
            status,
            claimed_at_ms,
            seen_at_ms: claimed_at_ms,
        }
    }

    #[test]
    fn every_duplicate_case() {
        let new = || "evt_new".to_owned();
        assert_eq!(
            decide_claim(None, 0, 1000, new()),
            ClaimDecision::Process {
                event_id: "evt_new".into(),
                reprocess: false
            }
        );
        assert_eq!(
            decide_claim(Some(&record(EventStatus::Processed, 0)), 10, 1000, new()),
            ClaimDecision::Duplicate {
                event_id: "evt_1".into()
            }
        );
        assert_eq!(
            decide_claim(Some(&record(EventStatus::Processing, 0)), 10, 5000, new()),
            ClaimDecision::InFlight {
                event_id: "evt_1".into(),
                retry_after_secs: 5
            }
        );
        assert_eq!(
            decide_claim(
                Some(&record(EventStatus::Processing, 0)),
                4_999,
                5000,
                new()
            ),
            ClaimDecision::InFlight {
                event_id: "evt_1".into(),
                retry_after_secs: 1
            }
        );
        assert_eq!(
            decide_claim(Some(&record(EventStatus::Processing, 0)), 5000, 5000, new()),
            ClaimDecision::Process {
                event_id: "evt_1".into(),
                reprocess: true
            },
            "an abandoned claim is taken over"
        );
        assert_eq!(
            decide_claim(Some(&record(EventStatus::Failed, 0)), 1, 5000, new()),
            ClaimDecision::Process {
                event_id: "evt_1".into(),
                reprocess: true
            }
        );
    }

    #[test]
    fn a_processed_claim_is_a_duplicate_only_within_its_window() {
        let done = record(EventStatus::Processed, 1_000);
        // Inside the window the record stands: a copy is a duplicate.
        let kept = remembered(Some(done.clone()), 1_000 + 3_599_999, 3_600_000);
        assert_eq!(kept.as_ref(), Some(&done));
        assert!(matches!(
            decide_claim(kept.as_ref(), 1_000 + 3_599_999, 1000, "evt_new".into()),
            ClaimDecision::Duplicate { .. }
        ));
        // At its end it is forgotten (as the alarm forgets it later): a copy is a new event.
        let gone = remembered(Some(done), 1_000 + 3_600_000, 3_600_000);
        assert_eq!(gone, None);
        assert_eq!(
            decide_claim(gone.as_ref(), 1_000 + 3_600_000, 1000, "evt_new".into()),
            ClaimDecision::Process {
                event_id: "evt_new".into(),
                reprocess: false
            }
        );
        // Attempts not processed keep their record whatever its age (a lapsed lease or a
        // failure is taken over under the same event id).
        for status in [EventStatus::Processing, EventStatus::Failed] {
            let r = record(status, 0);
            assert_eq!(remembered(Some(r.clone()), 10_000_000, 1), Some(r));
        }
        assert_eq!(remembered(None, 5, 1), None);
    }

    #[test]
    fn replays_run_unless_an_attempt_is_live() {
        let live = record(EventStatus::Processing, 0);
        assert!(matches!(
            decide_replay(Some(&live), 1, 1000, "evt_1"),
            ClaimDecision::InFlight { .. }
        ));
        for r in [
            None,
            Some(record(EventStatus::Processed, 0)),
            Some(record(EventStatus::Failed, 0)),
        ] {
            assert_eq!(
                decide_replay(r.as_ref(), 1, 1000, "evt_9"),
                ClaimDecision::Process {
                    event_id: "evt_9".into(),
                    reprocess: true
                }
            );
        }
    }

    #[test]
    fn refusals_are_the_errors_before_the_event() {
        use crate::signing::outbound::DeliveryError;
        use crate::webhook::event::EventError;
        let cases = [
            (
                WebhookError::Signature(SignatureError::MissingHeader),
                Some("missing_signature"),
            ),
            (
                WebhookError::Signature(SignatureError::Mismatch),
                Some("invalid_signature"),
            ),
            (WebhookError::BodyTooLarge, Some("too_large")),
            (WebhookError::InvalidJson, Some("invalid_json")),
            (WebhookError::TooDeep, Some("invalid_json")),
            (WebhookError::Event(EventError::MissingEvent), None),
            (
                WebhookError::Delivery(DeliveryError::Handler("x".into())),
                None,
            ),
        ];
        for (error, want) in cases {
            assert_eq!(
                RefusalReason::of(&error).map(|r| r.as_str()),
                want,
                "{error:?}"
            );
        }
        assert_eq!(hour_bucket_ms(7_200_001), 7_200_000);
        assert_eq!(hour_bucket_ms(-1), -3_600_000);
    }

    #[test]
    fn settings_defaults_and_problems_never_show_values() {
        let none = |_: &str| None;
        let mut problems = Vec::new();
        let s = EventLogSettings::from_lookup(&none, &mut problems);
        assert!(problems.is_empty());
        assert_eq!(s.dedup_window_ms, 72 * 3_600_000);
        assert_eq!(s.body_retention_ms, 7 * 86_400_000);
        assert_eq!(s.event_retention_ms, 30 * 86_400_000);
        assert!(s.keys.is_none());
        assert_eq!(s.lease_ms, CLAIM_LEASE_MS);
        let bad = |name: &str| match name {
            "EVENT_ENCRYPTION_KEY" => Some("hunter2-secret".to_owned()),
            "DEDUP_WINDOW_HOURS" => Some("0".to_owned()),
            "EVENT_CLAIM_LEASE_SECONDS" => Some("29".to_owned()),
            _ => None,
        };
        let s = EventLogSettings::from_lookup(&bad, &mut problems);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems
            .iter()
            .any(|p| p == "EVENT_CLAIM_LEASE_SECONDS must be a whole number from 30 to 3600"));
        assert_eq!(s.lease_ms, CLAIM_LEASE_MS);
        let short = |name: &str| (name == "EVENT_CLAIM_LEASE_SECONDS").then(|| "30".to_owned());
        assert_eq!(
            EventLogSettings::from_lookup(&short, &mut Vec::new()).lease_ms,
            30_000
        );
        assert!(problems.iter().all(|p| !p.contains("hunter2")));
        assert!(s.keys.is_none());
        let c = s.cutoffs(100 * 86_400_000);
        assert_eq!(c.body_before_ms, 93 * 86_400_000);
        assert_eq!(c.events_before_ms, 70 * 86_400_000);
    }

    #[test]
    fn the_admin_query_is_parsed_with_errors_that_name_the_parameter() {
        let p = |pairs: &[(&str, &str)]| {
            parse_event_query(
                &pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect::<Vec<_>>(),
            )
        };
        let q = p(&[
            ("status", "failed"),
            ("limit", "200"),
            ("since", "5"),
            ("appointmentId", "a1"),
        ])
        .unwrap();
        assert_eq!(
            (q.status, q.limit, q.since_ms),
            (Some(EventStatus::Failed), 200, Some(5))
        );
        assert_eq!(p(&[]).unwrap().limit, DEFAULT_LIMIT);
        for (pairs, word) in [
            (vec![("limit", "201")], "'limit'"),
            (vec![("limit", "0")], "'limit'"),
            (vec![("status", "done")], "'status'"),
            (vec![("since", "yesterday")], "'since'"),
            (vec![("cursor", "abc")], "'cursor'"),
            (vec![("since", "9"), ("until", "3")], "'since'"),
            (vec![("colour", "red")], "'colour'"),
        ] {
            assert!(p(&pairs).unwrap_err().contains(word), "{pairs:?}");
        }
    }

    #[test]
    fn pages_are_newest_first_and_ask_for_one_more_row() {
        let mut q = parse_event_query(&[]).unwrap();
        q.status = Some(EventStatus::Failed);
        q.cursor = Some(new_event_id(9, [0; 10]));
        let s = list_events(&q);
        assert!(
            s.sql
                .ends_with("WHERE status = ? AND id < ? ORDER BY id DESC LIMIT ?"),
            "{}",
            s.sql
        );
        assert_eq!(s.params.last(), Some(&SqlValue::Int(51)));
        let b = parse_replay_batch(&json!({"status":"failed","since":1,"until":2})).unwrap();
        let s = replay_candidates(&b, 101);
        assert!(s.sql.contains("ORDER BY id ASC"), "{}", s.sql);
        assert!(parse_replay_batch(&json!({"since":1}))
            .unwrap_err()
            .contains("'status'"));
        assert!(parse_replay_batch(&json!("x")).is_err());
    }

    #[test]
    fn commits_count_redeliveries_and_replays_once() {
        let attempt = |settled, http_status, error: Option<&str>, reprocess, amends| Attempt {
            settled,
            http_status,
            error: error.map(str::to_owned),
            reprocess,
            amends,
        };
        let c = &commit_statements(
            "evt_1",
            &claim(),
            &attempt(Settled::Processed, 200, None, false, false),
            5,
        )[0];
        assert!(c
            .sql
            .contains("deliveries = deliveries + ?, replays = replays + ?"));
        let n = c.params.len();
        assert_eq!(&c.params[n - 2..], &[SqlValue::Int(0), SqlValue::Int(0)]);
        let again = &commit_statements(
            "evt_1",
            &claim(),
            &attempt(Settled::Processed, 200, None, true, false),
            5,
        )[0];
        assert_eq!(
            &again.params[n - 2..],
            &[SqlValue::Int(1), SqlValue::Int(0)]
        );
        let mut replay = claim();
        replay.replay_of = Some("evt_1".into());
        let r = &commit_statements(
            "evt_1",
            &replay,
            &attempt(Settled::Processed, 200, None, true, false),
            5,
        )[0];
        assert_eq!(&r.params[n - 2..], &[SqlValue::Int(0), SqlValue::Int(1)]);
        let amend = &commit_statements(
            "evt_1",
            &replay,
            &attempt(Settled::Failed, 500, Some("forward_failed"), true, true),
            5,
        )[0];
        assert_eq!(
            &amend.params[n - 2..],
            &[SqlValue::Int(0), SqlValue::Int(0)]
        );
    }

    #[test]
    fn a_sources_event_row_carries_its_source_and_its_appointment_is_kept_beside() {
        let attempt = Attempt {
            settled: Settled::Processed,
            http_status: 200,
            error: None,
            reprocess: false,
            amends: false,
        };
        let default = commit_statements("evt_1", &claim(), &attempt, 5);
        assert_eq!(default.len(), 1);
        assert_eq!(default[0].params[12], SqlValue::Null);
        let mut at_a = claim();
        at_a.source = Some("src_a".into());
        let own = commit_statements("evt_1", &at_a, &attempt, 5);
        assert_eq!(own[0].params[12], SqlValue::Text("src_a".into()));
        assert!(own[1]
            .sql
            .starts_with("INSERT INTO eka_webhook_appointment_source"));
        assert_eq!(
            own[1].params,
            [SqlValue::Text("a1".into()), SqlValue::Text("src_a".into())]
        );
    }

    #[test]
    fn lists_and_stats_take_a_source() {
        let pairs = |q: &[(&str, &str)]| -> Vec<(String, String)> {
            q.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let q = parse_event_query(&pairs(&[("sourceId", "default")])).unwrap();
        assert!(list_events(&q).sql.contains("WHERE source IS NULL"));
        let id = "src_01JF0000000000000000000000";
        let q = parse_event_query(&pairs(&[("sourceId", id), ("status", "failed")])).unwrap();
        let s = list_events(&q);
        assert!(
            s.sql.contains("WHERE source = ? AND status = ?"),
            "{}",
            s.sql
        );
        assert_eq!(s.params[0], SqlValue::Text(id.into()));
        let e = parse_event_query(&pairs(&[("sourceId", "x'; DROP")])).unwrap_err();
        assert!(e.contains("'sourceId'"), "{e}");
        let (events, refusals) = source_stats(0, id);
        assert!(events.sql.contains("AND source = ?"));
        assert!(refusals.sql.contains("eka_webhook_source_refusal"));
        let (_, refusals) = source_stats(0, "default");
        assert!(!refusals.sql.contains("eka_webhook_source_refusal"));
        let (_, all) = stats(0);
        assert!(all.sql.contains("UNION ALL"));
        let r = source_refusal_add(0, id, RefusalReason::InvalidSignature, 2);
        assert!(r.sql.contains("eka_webhook_source_refusal"));
        let r = source_refusal_add(0, "default", RefusalReason::InvalidSignature, 2);
        assert!(!r.sql.contains("eka_webhook_source_refusal"));
    }

    #[test]
    fn the_migration_and_create_tables_agree() {
        let tables = create_tables();
        assert!(tables.len() >= 3);
        for name in [EVENT_TABLE, BODY_TABLE, REFUSAL_TABLE] {
            assert!(
                tables.iter().any(|s| s
                    .sql
                    .contains(&format!("CREATE TABLE IF NOT EXISTS {name} "))),
                "{name}"
            );
        }
        // `source` comes with the sources' migration (0005).
        for column in COLUMNS.split(", ").filter(|c| *c != "source") {
            assert!(tables[0].sql.contains(column), "{column}");
        }
        assert!(crate::sources::store::ensure_statements(&[])
            .iter()
            .any(|s| s.sql == format!("ALTER TABLE {EVENT_TABLE} ADD COLUMN source TEXT NULL")));
    }

    #[test]
    fn stats_have_every_hour_status_and_reason() {
        let events = [json!({"hour": 3_600_000.0, "status": "processed", "n": 2.0})];
        let refusals = [json!({"hour": 7_200_000.0, "reason": "too_large", "n": 1.0})];
        let s = stats_json(3_600_000, 3, &events, &refusals);
        let hours = s["hours"].as_array().unwrap();
        assert_eq!(hours.len(), 3);
        assert_eq!(hours[0]["events"]["processed"], 2);
        assert_eq!(hours[0]["events"]["failed"], 0);
        assert_eq!(hours[1]["refusals"]["too_large"], 1);
        assert_eq!(hours[2]["refusals"]["invalid_json"], 0);
        assert_eq!(parse_stats_hours(&[]), Ok(24));
        assert!(parse_stats_hours(&[("hours".into(), "0".into())]).is_err());
    }

    #[test]
    fn purge_covers_bodies_dedup_keys_rows_and_counters() {
        let s = purge(&Cutoffs {
            dedup_before_ms: 1,
            body_before_ms: 2,
            events_before_ms: 3,
        });
        let all: String = s
            .iter()
            .map(|s| s.sql.as_str())
            .collect::<Vec<_>>()
            .join(";");
        assert!(all.contains(&format!("DELETE FROM {BODY_TABLE} WHERE stored_at < ?")));
        assert!(all.contains("SET dedup_key = NULL"));
        assert!(all.contains(&format!("DELETE FROM {EVENT_TABLE} WHERE received_at < ?")));
        assert!(all.contains(&format!("DELETE FROM {REFUSAL_TABLE}")));
        // A source's refusals go after the same time as the environment's.
        assert!(all.contains("DELETE FROM eka_webhook_source_refusal WHERE hour < ?"));
        let last = s.last().map(|s| s.params.clone());
        assert_eq!(last, Some(vec![SqlValue::Int(3)]));
    }

    #[test]
    fn a_replay_needs_the_key_a_kept_body_and_one_that_opens() {
        let none = |_: &str| None;
        let off = EventLogSettings::from_lookup(&none, &mut Vec::new());
        let refused = replay_body("evt_1", Some("sealed"), &off).unwrap_err();
        assert_eq!((refused, refused.status()), (ReplayUnavailable::Off, 409));
        assert!(refused.to_string().contains("EVENT_ENCRYPTION_KEY"));

        let key = |name: &str| {
            (name == "EVENT_ENCRYPTION_KEY")
                .then(|| "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=".to_owned())
        };
        let on = EventLogSettings::from_lookup(&key, &mut Vec::new());
        let gone = replay_body("evt_1", None, &on).unwrap_err();
        assert_eq!(gone, ReplayUnavailable::Gone { retention_days: 7 });
        assert_eq!(gone.status(), 410);
        assert!(gone.to_string().contains("kept 7 days"));

        let sealed = on.keys.as_ref().unwrap().seal(b"{}", b"evt_1", [5; 12]);
        assert_eq!(replay_body("evt_1", Some(&sealed), &on).unwrap(), b"{}");
        // Sealed for another event (the id is the associated data): it does not open.
        let other = replay_body("evt_2", Some(&sealed), &on).unwrap_err();
        assert_eq!(
            (other, other.status()),
            (ReplayUnavailable::Unreadable, 410)
        );
    }
}
