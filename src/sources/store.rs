//! Sources as D1 keeps them (`migrations/0005_sources.sql`): the row, its sealed secrets, the
//! admin API's JSON, and the SQL (SQLite, i.e. D1). The rules are [`crate::sources`]'s.

use serde_json::{json, Value};

use super::{webhook_path, SourceSecrets, SourceSpec, DEFAULT_SOURCE_ID};
use crate::support::from_json::{from_json_text, json_text};
use crate::support::seal::{KeyRing, SealError};
use crate::support::sql::{migration_statements, SqlValue, Statement};

/// Sources.
pub const SOURCE_TABLE: &str = "eka_webhook_source";
/// Which source an appointment belongs to (no row: the default source).
pub const APPOINTMENT_SOURCE_TABLE: &str = "eka_webhook_appointment_source";
/// Refusals at a source's path, per hour, source and reason.
pub const SOURCE_REFUSAL_TABLE: &str = "eka_webhook_source_refusal";

const MIGRATION: &str = include_str!("../../migrations/0005_sources.sql");

/// The columns the migration adds to older tables: `(table, column, ALTER statement)`.
const ADDED: [(&str, &str); 2] = [
    ("eka_webhook_event", "source"),
    ("eka_webhook_destination", "sources"),
];

/// One row per added column that exists: `{"t": table, "n": 0 or 1}`.
pub fn probe_added_columns() -> Statement {
    let parts: Vec<String> = ADDED
        .iter()
        .map(|(table, column)| {
            format!(
                "SELECT '{table}' AS t, COUNT(*) AS n FROM pragma_table_info('{table}') WHERE name = '{column}'"
            )
        })
        .collect();
    Statement::new(parts.join(" UNION ALL "), vec![])
}

/// The migration's statements for a database an adapter ensures itself: each `ALTER TABLE`
/// only when [`probe_added_columns`]'s rows say the column is missing (the migration may have
/// run already), every `CREATE … IF NOT EXISTS` as it is, in the file's order.
pub fn ensure_statements(probe_rows: &[Value]) -> Vec<Statement> {
    let has = |table: &str| {
        probe_rows.iter().any(|r| {
            r.get("t").and_then(Value::as_str) == Some(table)
                && r.get("n").and_then(Value::as_f64).unwrap_or(0.0) > 0.0
        })
    };
    migration_statements(MIGRATION)
        .into_iter()
        .filter(|s| match s.sql.strip_prefix("ALTER TABLE ") {
            Some(rest) => !ADDED
                .iter()
                .any(|(table, _)| rest.starts_with(&format!("{table} ")) && has(table)),
            None => true,
        })
        .collect()
}

/// A source row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceRecord {
    /// `src_…`.
    pub id: String,
    /// What the owner set, no secret in it.
    pub spec: SourceSpec,
    /// [`SourceSecrets::to_json`] sealed with `EVENT_ENCRYPTION_KEY`, the id as associated
    /// data (so a sealed text cannot be moved to another source).
    pub sealed_secrets: String,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms.
    pub updated_at: i64,
}

/// Seals `secrets` for the source `id`.
pub fn seal_secrets(keys: &KeyRing, id: &str, secrets: &SourceSecrets, nonce: [u8; 12]) -> String {
    keys.seal(
        json_text(&secrets.to_json()).as_bytes(),
        id.as_bytes(),
        nonce,
    )
}

/// Opens a source's secrets.
pub fn open_secrets(keys: &KeyRing, id: &str, sealed: &str) -> Result<SourceSecrets, SealError> {
    let plain = keys.open(sealed, id.as_bytes())?;
    serde_json::from_slice::<Value>(&plain)
        .ok()
        .as_ref()
        .and_then(SourceSecrets::from_json)
        .ok_or(SealError::Malformed)
}

const COLUMNS: &str = "id, name, enabled, business_id, api_base_url, allowed_events, origin_url, \
     reminder_callback_url, reminder_offsets, dedup_window_hours, secrets, created_at, updated_at";

fn text(row: &Value, key: &str) -> Option<String> {
    row.get(key).and_then(Value::as_str).map(str::to_owned)
}

fn int(row: &Value, key: &str) -> Option<i64> {
    row.get(key).and_then(Value::as_f64).map(|f| f as i64)
}

impl SourceRecord {
    /// A row from D1's JSON.
    pub fn from_row(row: &Value) -> Option<SourceRecord> {
        let allowed_events = match text(row, "allowed_events") {
            None => None,
            Some(list) => Some(from_json_text::<Vec<String>>(&list).ok()?),
        };
        Some(SourceRecord {
            id: text(row, "id")?,
            spec: SourceSpec {
                name: text(row, "name")?,
                enabled: int(row, "enabled")? != 0,
                api_base_url: text(row, "api_base_url"),
                allowed_events,
                business_id: text(row, "business_id"),
                origin_url: text(row, "origin_url"),
                reminder_callback_url: text(row, "reminder_callback_url"),
                reminder_offsets: text(row, "reminder_offsets"),
                dedup_window_hours: int(row, "dedup_window_hours"),
            },
            sealed_secrets: text(row, "secrets")?,
            created_at: int(row, "created_at")?,
            updated_at: int(row, "updated_at")?,
        })
    }

    /// As the admin API shows it: the spec, `webhookPath`, and for the secrets only hints
    /// (`secrets` is what [`open_secrets`] gave; none when they could not be opened).
    pub fn to_json(&self, secrets: Option<&SourceSecrets>) -> Value {
        spec_json(
            &self.id,
            &self.spec,
            secrets,
            false,
            Some((self.created_at, self.updated_at)),
        )
    }
}

/// The JSON of a source (also of the read-only `default` source, built from the settings).
pub fn spec_json(
    id: &str,
    spec: &SourceSpec,
    secrets: Option<&SourceSecrets>,
    read_only: bool,
    times: Option<(i64, i64)>,
) -> Value {
    json!({
        "id": id,
        "name": spec.name,
        "enabled": spec.enabled,
        "readOnly": read_only,
        "webhookPath": webhook_path(id),
        "businessId": spec.business_id,
        "apiBaseUrl": spec.api_base_url,
        "allowedEvents": spec.allowed_events,
        "originUrl": spec.origin_url,
        "reminderCallbackUrl": spec.reminder_callback_url,
        "reminderOffsets": spec.reminder_offsets,
        "dedupWindowHours": spec.dedup_window_hours,
        "secrets": secrets.map(SourceSecrets::hints),
        "createdAt": times.map(|t| t.0),
        "updatedAt": times.map(|t| t.1),
    })
}

fn spec_values(spec: &SourceSpec) -> Vec<SqlValue> {
    vec![
        spec.name.as_str().into(),
        i64::from(spec.enabled).into(),
        spec.business_id.as_deref().into(),
        spec.api_base_url.as_deref().into(),
        spec.allowed_events
            .as_ref()
            .map(|e| json_text(&Value::from(e.clone())))
            .as_deref()
            .into(),
        spec.origin_url.as_deref().into(),
        spec.reminder_callback_url.as_deref().into(),
        spec.reminder_offsets.as_deref().into(),
        spec.dedup_window_hours
            .map_or(SqlValue::Null, SqlValue::Int),
    ]
}

/// A new source.
pub fn insert_source(r: &SourceRecord) -> Statement {
    let mut values: Vec<SqlValue> = vec![r.id.as_str().into()];
    values.extend(spec_values(&r.spec));
    values.extend([
        r.sealed_secrets.as_str().into(),
        r.created_at.into(),
        r.updated_at.into(),
    ]);
    Statement::new(
        format!(
            "INSERT INTO {SOURCE_TABLE} ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        values,
    )
}

/// Whether a failed write of a source is D1's unique index on `business_id` refusing it (a
/// concurrent create or `PUT` took the business id between the check and the write): the
/// same refusal as the check's, [`super::SourceError::DuplicateBusinessId`].
pub fn is_duplicate_business_id(error: &str) -> bool {
    error.contains("UNIQUE constraint failed")
        && error.contains(&format!("{SOURCE_TABLE}.business_id"))
}

/// A replaced spec and secrets (`PUT`).
pub fn replace_source(id: &str, spec: &SourceSpec, sealed: &str, now_ms: i64) -> Statement {
    let mut values = spec_values(spec);
    values.extend([sealed.into(), now_ms.into(), id.into()]);
    Statement::new(
        format!(
            "UPDATE {SOURCE_TABLE} SET name = ?, enabled = ?, business_id = ?, api_base_url = ?, \
             allowed_events = ?, origin_url = ?, reminder_callback_url = ?, \
             reminder_offsets = ?, dedup_window_hours = ?, secrets = ?, updated_at = ? WHERE id = ?"
        ),
        values,
    )
}

/// New sealed secrets (a key added or removed).
pub fn set_secrets(id: &str, sealed: &str, now_ms: i64) -> Statement {
    Statement::new(
        format!("UPDATE {SOURCE_TABLE} SET secrets = ?, updated_at = ? WHERE id = ?"),
        vec![sealed.into(), now_ms.into(), id.into()],
    )
}

/// Intake opened or paused.
pub fn set_enabled(id: &str, enabled: bool, now_ms: i64) -> Statement {
    Statement::new(
        format!("UPDATE {SOURCE_TABLE} SET enabled = ?, updated_at = ? WHERE id = ?"),
        vec![i64::from(enabled).into(), now_ms.into(), id.into()],
    )
}

/// Deletes a source (its events, refusals and appointments stay, under its id).
pub fn delete_source(id: &str) -> Statement {
    Statement::new(
        format!("DELETE FROM {SOURCE_TABLE} WHERE id = ?"),
        vec![id.into()],
    )
}

/// One source.
pub fn get_source(id: &str) -> Statement {
    Statement::new(
        format!("SELECT {COLUMNS} FROM {SOURCE_TABLE} WHERE id = ?"),
        vec![id.into()],
    )
}

/// Every source, oldest first (what an isolate caches).
pub fn list_sources() -> Statement {
    Statement::new(
        format!("SELECT {COLUMNS} FROM {SOURCE_TABLE} ORDER BY id"),
        vec![],
    )
}

/// The recorded sources of `appointment_ids` (`appointment_id`, `source` rows; an id with no
/// row is the default source's); `None` for no ids.
pub fn sources_of_appointments(appointment_ids: &[&str]) -> Option<Statement> {
    (!appointment_ids.is_empty()).then(|| {
        let marks = vec!["?"; appointment_ids.len()].join(", ");
        Statement::new(
            format!(
                "SELECT appointment_id, source FROM {APPOINTMENT_SOURCE_TABLE} \
                 WHERE appointment_id IN ({marks})"
            ),
            appointment_ids.iter().map(|id| (*id).into()).collect(),
        )
    })
}

/// Records which source an appointment belongs to (only for sources other than `default`).
pub fn appointment_source(appointment_id: &str, source_id: &str) -> Option<Statement> {
    (source_id != DEFAULT_SOURCE_ID).then(|| {
        Statement::new(
            format!(
                "INSERT INTO {APPOINTMENT_SOURCE_TABLE} (appointment_id, source) VALUES (?, ?) \
                 ON CONFLICT(appointment_id) DO UPDATE SET source = excluded.source"
            ),
            vec![appointment_id.into(), source_id.into()],
        )
    })
}

/// The source recorded for an appointment (no row: the default source).
pub fn source_of_appointment(appointment_id: &str) -> Statement {
    Statement::new(
        format!("SELECT source FROM {APPOINTMENT_SOURCE_TABLE} WHERE appointment_id = ?"),
        vec![appointment_id.into()],
    )
}

/// One more refusal at a source's path (the default source counts in the refusal table).
pub fn refusal_add(hour_ms: i64, source_id: &str, reason: &str, n: u32) -> Statement {
    Statement::new(
        format!(
            "INSERT INTO {SOURCE_REFUSAL_TABLE} (hour, source, reason, count) VALUES (?, ?, ?, ?) \
             ON CONFLICT(hour, source, reason) DO UPDATE SET count = count + excluded.count"
        ),
        vec![
            hour_ms.into(),
            source_id.into(),
            reason.into(),
            i64::from(n).into(),
        ],
    )
}

/// The SQL condition (and its parameter) that keeps a list's rows of one source, for a
/// table with a `source` column where NULL is the default source.
pub fn source_condition(column: &str, source_id: &str) -> (String, Vec<SqlValue>) {
    if source_id == DEFAULT_SOURCE_ID {
        (format!("{column} IS NULL"), vec![])
    } else {
        (format!("{column} = ?"), vec![source_id.into()])
    }
}

/// The `source` column's value for an event of `source_id` (NULL for the default source, so
/// rows written before sources existed read as the default's).
pub fn source_value(source_id: &str) -> SqlValue {
    if source_id == DEFAULT_SOURCE_ID {
        SqlValue::Null
    } else {
        source_id.into()
    }
}
