//! Destinations, messages and attempts as D1 keeps them (`migrations/0003_destinations.sql`):
//! the rows, their JSON for the admin API, the admin queries with keyset paging, and the SQL
//! (SQLite, i.e. D1). The delivery rules themselves (validation, signing, the pause rule, the
//! retry schedule) are [`crate::destinations`]'s; the Worker stores and routes.
//!
//! A *message* is one event for one destination. The appointment's Durable Object owns it and
//! delivers it on its alarm; D1's `eka_webhook_delivery` row mirrors it so the operator can
//! list messages and the Worker can find the objects that hold messages for a destination
//! (held while it is paused, released when it resumes).

use serde_json::{json, Value};

use crate::destinations::{DestinationHealth, DestinationSpec, Format};
use crate::event_log::new_event_id;
use crate::support::from_json::{from_json_text, json_text};
use crate::support::sql::{SqlValue, Statement};

mod attempts;
mod lists;
mod messages;
pub mod object;

pub use attempts::*;
pub use lists::*;
pub use messages::*;

/// Destinations.
pub const DESTINATION_TABLE: &str = "eka_webhook_destination";
/// Messages (an event for a destination).
pub const DELIVERY_TABLE: &str = "eka_webhook_delivery";
/// Attempts.
pub const ATTEMPT_TABLE: &str = "eka_webhook_delivery_attempt";
/// The id of the destination `FORWARD_URL` defines.
pub const CONFIG_DESTINATION_ID: &str = "dst_forward";
/// Default page size of the admin lists.
pub const DEFAULT_LIMIT: usize = 50;
/// Largest page.
pub const MAX_LIMIT: usize = 200;

const MIGRATION: &str = include_str!("../../migrations/0003_destinations.sql");

/// The tables (the migration's statements).
pub fn create_tables() -> Vec<Statement> {
    crate::support::sql::migration_statements(MIGRATION)
}

// ---- ids ------------------------------------------------------------------------------------

/// A sortable id with `prefix` (`msg`, `att`): the event id's layout (time, then randomness).
pub fn new_id(prefix: &str, now_ms: i64, random: [u8; 10]) -> String {
    let id = new_event_id(now_ms, random);
    format!("{prefix}_{}", id.trim_start_matches("evt_"))
}

/// Whether `id` is `<prefix>_` and 26 Crockford base32 characters (a cursor this API gave).
pub fn is_id(id: &str, prefix: &str) -> bool {
    id.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('_'))
        .is_some_and(|rest| crate::event_log::is_event_id(&format!("evt_{rest}")))
}

// ---- destinations ---------------------------------------------------------------------------

/// Who defines a destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The admin API (editable).
    Admin,
    /// `FORWARD_URL` (read-only; the settings define it).
    Config,
}

impl Source {
    fn as_str(self) -> &'static str {
        match self {
            Source::Admin => "admin",
            Source::Config => "config",
        }
    }
}

/// A destination row.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationRecord {
    /// `dst_…`.
    pub id: String,
    /// Admin or configuration.
    pub source: Source,
    /// What the owner set.
    pub spec: DestinationSpec,
    /// The [`crate::destinations::Secrets`] as JSON sealed with `EVENT_ENCRYPTION_KEY` (the
    /// id as associated data); none for the configured forward.
    pub sealed_secrets: Option<String>,
    /// Consecutive failures, last success/failure, the pause.
    pub health: DestinationHealth,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
}

const DESTINATION_COLUMNS: &str =
    "id, source, url, events, enabled, format, description, secrets, \
     consecutive_failures, last_success_at, last_failure_at, paused_reason, paused_at, \
     created_at, updated_at, sources";

pub(super) fn text(row: &Value, key: &str) -> Option<String> {
    row.get(key).and_then(Value::as_str).map(str::to_owned)
}

pub(super) fn int(row: &Value, key: &str) -> Option<i64> {
    row.get(key).and_then(Value::as_f64).map(|f| f as i64)
}

impl DestinationRecord {
    /// A row from D1's JSON.
    pub fn from_row(row: &Value) -> Option<DestinationRecord> {
        let events: Vec<String> = from_json_text(&text(row, "events")?).ok()?;
        Some(DestinationRecord {
            id: text(row, "id")?,
            source: if text(row, "source")? == "config" {
                Source::Config
            } else {
                Source::Admin
            },
            spec: DestinationSpec {
                url: text(row, "url")?,
                events,
                enabled: int(row, "enabled")? != 0,
                format: text(row, "format")?.parse().unwrap_or(Format::Eka),
                description: text(row, "description"),
                // NULL (a row from before sources, or the configured forward): every source.
                sources: text(row, "sources")
                    .and_then(|list| from_json_text(&list).ok())
                    .unwrap_or_else(super::spec::every_source),
            },
            sealed_secrets: text(row, "secrets"),
            health: DestinationHealth {
                consecutive_failures: u32::try_from(int(row, "consecutive_failures")?.max(0))
                    .unwrap_or(u32::MAX),
                last_success_ms: int(row, "last_success_at"),
                last_failure_ms: int(row, "last_failure_at"),
                paused_reason: text(row, "paused_reason"),
                paused_at_ms: int(row, "paused_at"),
            },
            created_at: int(row, "created_at")?,
            updated_at: int(row, "updated_at")?,
        })
    }

    /// As the admin API shows it: never a secret.
    pub fn to_json(&self) -> Value {
        let mut out = json!({ "id": self.id });
        if let (Some(out), Value::Object(spec)) = (out.as_object_mut(), self.spec.to_json()) {
            out.extend(spec);
            out.insert("source".into(), self.source.as_str().into());
            out.insert(
                "consecutiveFailures".into(),
                self.health.consecutive_failures.into(),
            );
            out.insert("lastSuccessAt".into(), self.health.last_success_ms.into());
            out.insert("lastFailureAt".into(), self.health.last_failure_ms.into());
            out.insert(
                "pausedReason".into(),
                self.health.paused_reason.clone().into(),
            );
            out.insert("pausedAt".into(), self.health.paused_at_ms.into());
            out.insert("createdAt".into(), self.created_at.into());
            out.insert("updatedAt".into(), self.updated_at.into());
        }
        out
    }

    /// Whether new messages are held rather than sent (paused, or turned off by its owner
    /// after they were queued).
    pub fn holds(&self) -> bool {
        self.health.is_paused() || !self.spec.enabled
    }

    /// Whether the admin API may change it (replace, delete, rotate its secret): not the
    /// destination `FORWARD_URL` defines, which its settings change.
    pub fn check_editable(&self) -> Result<(), ConfigReadOnly> {
        match self.source {
            Source::Admin => Ok(()),
            Source::Config => Err(ConfigReadOnly),
        }
    }

    /// The toggle: a paused destination resumes (enabled, its failure count back to 0);
    /// otherwise `enabled` flips. Returns the new `enabled` and health.
    pub fn toggled(&self) -> (bool, DestinationHealth) {
        if self.health.is_paused() {
            (true, self.health.clone().resume())
        } else {
            (!self.spec.enabled, self.health.clone())
        }
    }
}

/// The destination `FORWARD_URL` defines is changed through its settings, not the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigReadOnly;

impl std::fmt::Display for ConfigReadOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "This destination is defined by FORWARD_URL and FORWARD_SIGNING_KEY: change those settings instead",
        )
    }
}

impl std::error::Error for ConfigReadOnly {}

fn events_json(spec: &DestinationSpec) -> SqlValue {
    json_text(&Value::from(spec.events.clone())).as_str().into()
}

/// A new destination.
pub fn insert_destination(d: &DestinationRecord) -> Statement {
    Statement::new(
        format!(
            "INSERT INTO {DESTINATION_TABLE} ({DESTINATION_COLUMNS}) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, NULL, NULL, NULL, ?, ?, ?)"
        ),
        vec![
            d.id.as_str().into(),
            d.source.as_str().into(),
            d.spec.url.as_str().into(),
            events_json(&d.spec),
            i64::from(d.spec.enabled).into(),
            d.spec.format.as_str().into(),
            d.spec.description.as_deref().into(),
            d.sealed_secrets.as_deref().into(),
            d.created_at.into(),
            d.updated_at.into(),
            sources_json(&d.spec),
        ],
    )
}

/// The `sources` column: NULL for every source, else the JSON list of ids.
fn sources_json(spec: &DestinationSpec) -> SqlValue {
    if spec.sources == super::spec::every_source() {
        SqlValue::Null
    } else {
        SqlValue::Text(json_text(&Value::from(spec.sources.clone())))
    }
}

/// The configured forward's row: created on first use, its URL kept in step with the
/// setting (health and pause are kept).
pub fn upsert_config_destination(url: &str, now_ms: i64) -> Statement {
    Statement::new(
        format!(
            "INSERT INTO {DESTINATION_TABLE} ({DESTINATION_COLUMNS}) \
             VALUES (?, 'config', ?, '[\"*\"]', 1, 'eka', 'FORWARD_URL', NULL, 0, NULL, NULL, NULL, NULL, ?, ?, NULL) \
             ON CONFLICT(id) DO UPDATE SET url = excluded.url, updated_at = excluded.updated_at \
             WHERE url <> excluded.url"
        ),
        vec![
            CONFIG_DESTINATION_ID.into(),
            url.into(),
            now_ms.into(),
            now_ms.into(),
        ],
    )
}

/// PUT: the spec replaced whole.
pub fn replace_spec(id: &str, spec: &DestinationSpec, now_ms: i64) -> Statement {
    Statement::new(
        format!(
            "UPDATE {DESTINATION_TABLE} SET url = ?, events = ?, enabled = ?, format = ?, \
             description = ?, sources = ?, updated_at = ? WHERE id = ? AND source = 'admin'"
        ),
        vec![
            spec.url.as_str().into(),
            events_json(spec),
            i64::from(spec.enabled).into(),
            spec.format.as_str().into(),
            spec.description.as_deref().into(),
            sources_json(spec),
            now_ms.into(),
            id.into(),
        ],
    )
}

/// Rotation: new sealed secrets.
pub fn set_secrets(id: &str, sealed: &str, now_ms: i64) -> Statement {
    Statement::new(
        format!("UPDATE {DESTINATION_TABLE} SET secrets = ?, updated_at = ? WHERE id = ?"),
        vec![sealed.into(), now_ms.into(), id.into()],
    )
}

/// The toggle's write: `enabled`, and with `health` the pause cleared
/// ([`DestinationHealth::resume`]).
pub fn set_enabled(id: &str, enabled: bool, health: &DestinationHealth, now_ms: i64) -> Statement {
    Statement::new(
        format!(
            "UPDATE {DESTINATION_TABLE} SET enabled = ?, consecutive_failures = ?, \
             paused_reason = ?, paused_at = ?, updated_at = ? WHERE id = ?"
        ),
        vec![
            i64::from(enabled).into(),
            i64::from(health.consecutive_failures).into(),
            health.paused_reason.as_deref().into(),
            health.paused_at_ms.into(),
            now_ms.into(),
            id.into(),
        ],
    )
}

/// Deletes an admin destination (its messages fail on their next attempt, its attempts stay
/// in the log until retention).
pub fn delete_destination(id: &str) -> Statement {
    Statement::new(
        format!("DELETE FROM {DESTINATION_TABLE} WHERE id = ? AND source = 'admin'"),
        vec![id.into()],
    )
}

/// One destination.
pub fn get_destination(id: &str) -> Statement {
    Statement::new(
        format!("SELECT {DESTINATION_COLUMNS} FROM {DESTINATION_TABLE} WHERE id = ?"),
        vec![id.into()],
    )
}

/// Every destination, oldest first.
pub fn list_destinations() -> Statement {
    Statement::new(
        format!("SELECT {DESTINATION_COLUMNS} FROM {DESTINATION_TABLE} ORDER BY created_at, id"),
        Vec::new(),
    )
}

/// A successful attempt: the failure count back to 0 (a pause stays: only the owner resumes).
pub fn record_success(id: &str, now_ms: i64) -> Statement {
    Statement::new(
        format!(
            "UPDATE {DESTINATION_TABLE} SET consecutive_failures = 0, last_success_at = ? \
             WHERE id = ?"
        ),
        vec![now_ms.into(), id.into()],
    )
}

/// A failed attempt, counted atomically (several objects deliver to one destination at
/// once); returns the row, from which the pause rule decides ([`pause_after_failure`]).
pub fn record_failure(id: &str, now_ms: i64) -> Statement {
    Statement::new(
        format!(
            "UPDATE {DESTINATION_TABLE} SET consecutive_failures = consecutive_failures + 1, \
             last_failure_at = ? WHERE id = ? RETURNING {DESTINATION_COLUMNS}"
        ),
        vec![now_ms.into(), id.into()],
    )
}

/// The pause, when [`crate::destinations::after_attempt`] decides one; a pause in place keeps
/// its first reason.
pub fn pause(id: &str, reason: &str, at_ms: i64) -> Statement {
    Statement::new(
        format!(
            "UPDATE {DESTINATION_TABLE} SET paused_reason = ?, paused_at = ? \
             WHERE id = ? AND paused_reason IS NULL"
        ),
        vec![reason.into(), at_ms.into(), id.into()],
    )
}

/// The health before the failure `record_failure` just counted: the pause rule is applied
/// to it with [`crate::destinations::after_attempt`], so the rule stays in one place.
pub fn health_before_failure(after: &DestinationHealth) -> DestinationHealth {
    DestinationHealth {
        consecutive_failures: after.consecutive_failures.saturating_sub(1),
        ..after.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::destinations::{after_attempt, AttemptRecord, SendOutcome};
    use crate::support::seal::KeyRing;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn spec() -> DestinationSpec {
        DestinationSpec {
            url: "https://clinic.example/hooks".into(),
            events: vec!["appointment.created".into()],
            enabled: true,
            format: Format::Standard,
            description: Some("front desk".into()),
            sources: crate::destinations::every_source(),
        }
    }

    fn record(source: Source, enabled: bool, paused: bool) -> DestinationRecord {
        DestinationRecord {
            id: "dst_1".into(),
            source,
            spec: DestinationSpec { enabled, ..spec() },
            sealed_secrets: None,
            health: DestinationHealth {
                consecutive_failures: if paused { 5 } else { 2 },
                last_failure_ms: Some(40),
                paused_reason: paused.then(|| "5 consecutive failed attempts".to_owned()),
                paused_at_ms: paused.then_some(40),
                ..DestinationHealth::default()
            },
            created_at: 1,
            updated_at: 1,
        }
    }

    #[test]
    fn only_admin_destinations_are_editable() {
        assert_eq!(record(Source::Admin, true, false).check_editable(), Ok(()));
        let config = record(Source::Config, true, false);
        assert_eq!(config.check_editable(), Err(ConfigReadOnly));
        assert!(ConfigReadOnly.to_string().contains("FORWARD_URL"));
    }

    #[test]
    fn the_toggle_resumes_a_paused_destination_and_otherwise_flips_enabled() {
        let paused = record(Source::Admin, true, true);
        let (enabled, health) = paused.toggled();
        assert!(enabled);
        assert!(!health.is_paused());
        assert_eq!(health.consecutive_failures, 0);
        assert_eq!(health.last_failure_ms, Some(40), "the times are kept");
        // Paused and turned off: resuming turns it on too.
        let (enabled, health) = record(Source::Admin, false, true).toggled();
        assert!(enabled && !health.is_paused());
        for on in [true, false] {
            let d = record(Source::Admin, on, false);
            assert_eq!(d.toggled(), (!on, d.health.clone()));
        }
    }

    #[test]
    fn an_attempts_answer_is_kept_only_sealed_and_opened_for_the_admin_api() {
        use crate::support::http::HttpResponse;
        let keys = KeyRing::parse("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
        let answer = Ok(HttpResponse {
            status: 200,
            headers: vec![],
            body: br#"{"echo":"Ravi Kumar"}"#.to_vec(),
        });
        let a = AttemptRecord::new("evt_1", "dst_1", 1, &answer, 12, 5);
        let column = |s: &Statement| match &s.params[9] {
            SqlValue::Text(t) => Some(t.clone()),
            SqlValue::Null => None,
            other => panic!("response_body bound as {other:?}"),
        };
        let sealed = column(&insert_attempt("att_1", None, &a, Some((&keys, [3; 12])))).unwrap();
        assert!(!sealed.contains("Ravi"), "{sealed}");
        let row = |body: Option<&str>| {
            json!({"id": "att_1", "event_id": "evt_1", "destination_id": "dst_1", "attempt": 1,
                   "status": 200, "ok": 1, "duration_ms": 12, "response_body": body, "at": 5})
        };
        let shown = attempt_row_json(&row(Some(&sealed)), Some(&keys)).unwrap();
        assert_eq!(shown["responseBody"], r#"{"echo":"Ravi Kumar"}"#);
        // Without the keys, for another attempt's id, or as stored before sealing: not shown.
        assert!(attempt_row_json(&row(Some(&sealed)), None).unwrap()["responseBody"].is_null());
        let mut other = row(Some(&sealed));
        other["id"] = json!("att_2");
        assert!(attempt_row_json(&other, Some(&keys)).unwrap()["responseBody"].is_null());
        let plain = attempt_row_json(&row(Some("Ravi Kumar")), Some(&keys)).unwrap();
        assert!(plain["responseBody"].is_null());
        // Without the keys nothing is kept.
        assert_eq!(column(&insert_attempt("att_1", None, &a, None)), None);
    }

    #[test]
    fn ids_carry_their_prefix_and_only_ours_are_cursors() {
        let id = new_id("msg", 1_700_000_000_000, [7; 10]);
        assert!(id.starts_with("msg_") && id.len() == 30, "{id}");
        assert!(is_id(&id, "msg"));
        assert!(!is_id(&id, "att"));
        assert!(!is_id("msg_short", "msg"));
        assert!(!is_id("msg_0000000000000000000000000'", "msg"));
        assert!(new_id("msg", 1, [0; 10]) < new_id("msg", 2, [0; 10]));
    }

    #[test]
    fn a_destination_row_round_trips_and_its_json_never_shows_the_secret() {
        let row = json!({
            "id": "dst_1", "source": "admin", "url": "https://clinic.example/hooks",
            "events": "[\"appointment.created\"]", "enabled": 1.0, "format": "standard",
            "description": "front desk", "secrets": "sealed-secret-text",
            "consecutive_failures": 3.0, "last_success_at": 10.0, "last_failure_at": 20.0,
            "paused_reason": null, "paused_at": null, "created_at": 5.0, "updated_at": 6.0,
        });
        let d = DestinationRecord::from_row(&row).unwrap();
        assert_eq!(d.spec, spec());
        assert_eq!(d.health.consecutive_failures, 3);
        assert_eq!(d.sealed_secrets.as_deref(), Some("sealed-secret-text"));
        assert!(!d.holds());
        let shown = d.to_json();
        assert_eq!(shown["consecutiveFailures"], 3);
        assert_eq!(shown["source"], "admin");
        assert_eq!(shown["events"], json!(["appointment.created"]));
        assert!(!shown.to_string().contains("sealed-secret-text"));
        assert!(shown.get("secrets").is_none());
        let insert = insert_destination(&d);
        assert_eq!(insert.sql.matches('?').count(), insert.params.len());
    }

    #[test]
    fn paused_or_turned_off_destinations_hold_messages() {
        let mut d = DestinationRecord::from_row(&json!({
            "id": "dst_1", "source": "config", "url": "https://x.example", "events": "[\"*\"]",
            "enabled": 1, "format": "eka", "consecutive_failures": 0, "created_at": 1, "updated_at": 1,
        }))
        .unwrap();
        assert_eq!(d.source, Source::Config);
        assert!(!d.holds());
        d.health.paused_reason = Some("5 consecutive failed attempts".into());
        assert!(d.holds());
        d.health.paused_reason = None;
        d.spec.enabled = false;
        assert!(d.holds());
    }

    #[test]
    fn the_pause_rule_sees_the_count_before_the_failure_it_counted() {
        // record_failure returned 5 after counting: the rule, applied to 4, pauses at 5.
        let after = DestinationHealth {
            consecutive_failures: 5,
            ..DestinationHealth::default()
        };
        let before = health_before_failure(&after);
        assert_eq!(before.consecutive_failures, 4);
        let outcome = SendOutcome::Answered {
            status: 500,
            retry_after_secs: None,
        };
        let next = after_attempt(before.clone(), &outcome, 5, 99);
        assert_eq!(
            next.paused_reason.as_deref(),
            Some("5 consecutive failed attempts")
        );
        assert!(after_attempt(before, &outcome, 6, 99)
            .paused_reason
            .is_none());
    }

    #[test]
    fn list_queries_name_the_bad_parameter_and_page_by_id() {
        let q = parse_list_query(
            ListKind::Deliveries,
            &pairs(&[
                ("destinationId", "dst_1"),
                ("status", "held"),
                ("limit", "2"),
            ]),
        )
        .unwrap();
        let s = list_statement(&q);
        assert!(
            s.sql.contains("destination_id = ? AND status = ?"),
            "{}",
            s.sql
        );
        assert!(s.sql.ends_with("ORDER BY id DESC LIMIT ?"));
        assert_eq!(s.params.last(), Some(&SqlValue::Int(3)));
        let err = |kind, list: &[(&str, &str)]| parse_list_query(kind, &pairs(list)).unwrap_err();
        assert!(err(ListKind::Deliveries, &[("status", "lost")]).contains("'status'"));
        assert!(err(ListKind::Attempts, &[("status", "failed")]).contains("'status'"));
        assert!(err(ListKind::Deliveries, &[("limit", "201")]).contains("'limit'"));
        assert!(err(ListKind::Deliveries, &[("cursor", "att_X")]).contains("'cursor'"));
        assert!(err(ListKind::Attempts, &[("deliveryid", "x")]).contains("'deliveryid'"));
        let cursor = new_id("att", 5, [1; 10]);
        let q = parse_list_query(
            ListKind::Attempts,
            &pairs(&[("deliveryId", "msg_1"), ("cursor", &cursor)]),
        )
        .unwrap();
        let s = list_statement(&q);
        assert!(s.sql.contains("delivery_id = ? AND id < ?"), "{}", s.sql);
    }

    #[test]
    fn lists_filter_by_the_source_of_the_event() {
        let statement = |kind, source: &str| {
            let q = parse_list_query(
                kind,
                &pairs(&[("destinationId", "dst_1"), ("sourceId", source)]),
            )
            .unwrap();
            list_statement(&q)
        };
        let s = statement(ListKind::Deliveries, "src_01HZX3K4M5N6P7Q8R9S0T1V2W3");
        assert!(
            s.sql.contains(
                "destination_id = ? AND event_id IN (SELECT id FROM eka_webhook_event WHERE source = ?)"
            ),
            "{}",
            s.sql
        );
        assert_eq!(
            s.params[1],
            SqlValue::Text("src_01HZX3K4M5N6P7Q8R9S0T1V2W3".into())
        );
        // The environment's account: rows whose event has no source.
        let s = statement(ListKind::Attempts, "default");
        assert!(
            s.sql
                .contains("event_id IN (SELECT id FROM eka_webhook_event WHERE source IS NULL)"),
            "{}",
            s.sql
        );
        assert_eq!(s.params.len(), 2, "dst_1 and the limit");
        for kind in [ListKind::Deliveries, ListKind::Attempts] {
            let e = parse_list_query(kind, &pairs(&[("sourceId", "x'; DROP")])).unwrap_err();
            assert!(e.contains("'sourceId'"), "{e}");
        }
    }

    #[test]
    fn a_page_has_a_cursor_only_when_more_rows_came_back() {
        let row = |id: &str| {
            json!({"id": id, "event_id": "evt_1", "destination_id": "dst_1", "event": "appointment.created",
                   "owner": "a1", "status": "failed", "attempts": 8.0, "next_attempt_at": null,
                   "last_error": "http_status", "last_status": 503.0, "created_at": 1.0, "updated_at": 2.0})
        };
        let q = ListQuery {
            kind: ListKind::Deliveries,
            filters: vec![],
            source_id: None,
            limit: 2,
            cursor: None,
        };
        let page = page_json(&q, &[row("msg_c"), row("msg_b"), row("msg_a")], None);
        assert_eq!(page["deliveries"].as_array().unwrap().len(), 2);
        assert_eq!(page["nextCursor"], "msg_b");
        assert_eq!(page["deliveries"][0]["lastStatus"], 503);
        assert!(page["deliveries"][0].get("owner").is_none());
        let last = page_json(&q, &[row("msg_a")], None);
        assert_eq!(last["nextCursor"], Value::Null);
    }

    #[test]
    fn counts_have_every_status() {
        let counts = counts_json(&[
            json!({"status": "held", "n": 4.0}),
            json!({"status": "x", "n": 1}),
        ]);
        assert_eq!(
            counts,
            json!({"pending": 0, "held": 4, "delivered": 0, "failed": 0})
        );
    }

    #[test]
    fn the_migration_creates_three_tables_and_their_indexes() {
        let statements = create_tables();
        let tables = statements
            .iter()
            .filter(|s| s.sql.starts_with("CREATE TABLE"))
            .count();
        assert_eq!(tables, 3);
        for table in [DESTINATION_TABLE, DELIVERY_TABLE, ATTEMPT_TABLE] {
            assert!(statements.iter().any(|s| s.sql.contains(table)));
        }
        // The upsert names every mirrored column.
        let d = DeliveryRow {
            id: "msg_1".into(),
            event_id: "evt_1".into(),
            destination_id: "dst_1".into(),
            event: "appointment.created".into(),
            owner: "a1".into(),
            status: DeliveryStatus::Pending,
            attempts: 0,
            next_attempt_at: Some(5),
            last_error: None,
            last_status: None,
            created_at: 1,
            updated_at: 1,
        };
        let s = upsert_delivery(&d);
        assert_eq!(s.sql.matches('?').count(), s.params.len());
    }
}
