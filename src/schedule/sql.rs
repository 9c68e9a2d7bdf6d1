//! SQL for the schedule table, for SQLite (D1, `node:sqlite`) and MySQL/MariaDB — the one
//! source of the statements every store runs. Placeholders are `?` in both dialects.
//!
//! The MySQL layout is Eka's SDK's exactly (docs/eka-compatibility.md#table-layout), so services
//! using this crate and services using `eka-webhook-sdk` can share one table. The MySQL upsert
//! repeats its parameters instead of using `VALUES()` (deprecated in MySQL 8.0.20) or a row
//! alias (which MariaDB lacks).

use serde_json::Value;

use crate::schedule::{
    epoch_seconds, ScheduleRecord, ScheduleRow, ScheduleWrite, BOOKED_STATUS, FOLLOW_UP_VISIT,
    INITIATED_STATUS, SCHEDULE_TABLE_NAME,
};
use crate::support::sql::{Dialect, SqlValue, Statement};

/// A non-key column and its definition in each dialect, in the SDK's migration order.
struct Column {
    name: &'static str,
    sqlite: &'static str,
    mysql: &'static str,
}

const COLUMNS: [Column; 7] = [
    Column {
        name: "start_time",
        sqlite: "INTEGER NOT NULL DEFAULT 0",
        mysql: "BIGINT NOT NULL DEFAULT 0",
    },
    Column {
        name: "end_time",
        sqlite: "INTEGER NOT NULL DEFAULT 0",
        mysql: "BIGINT NOT NULL DEFAULT 0",
    },
    Column {
        name: "status",
        sqlite: "TEXT NOT NULL DEFAULT ''",
        mysql: "VARCHAR(32) NOT NULL DEFAULT ''",
    },
    Column {
        name: "visit_type",
        sqlite: "TEXT NOT NULL DEFAULT ''",
        mysql: "VARCHAR(32) NOT NULL DEFAULT ''",
    },
    Column {
        name: "created_at",
        sqlite: "INTEGER NOT NULL DEFAULT 0",
        mysql: "BIGINT NOT NULL DEFAULT 0",
    },
    Column {
        name: "p_aid",
        sqlite: "TEXT NULL DEFAULT NULL",
        mysql: "VARCHAR(255) NULL DEFAULT NULL",
    },
    Column {
        name: "reminder_sent_at",
        sqlite: "INTEGER NULL DEFAULT NULL",
        mysql: "BIGINT NULL DEFAULT NULL",
    },
];

const SELECT_COLUMNS: &str =
    "appointment_id, start_time, end_time, status, visit_type, created_at, p_aid, reminder_sent_at";

impl Column {
    fn definition(&self, dialect: Dialect) -> &'static str {
        match dialect {
            Dialect::Sqlite => self.sqlite,
            Dialect::Mysql => self.mysql,
        }
    }
}

/// `CREATE TABLE IF NOT EXISTS` (and, in SQLite, the index).
pub fn create_table(dialect: Dialect) -> Vec<Statement> {
    let t = SCHEDULE_TABLE_NAME;
    let key = match dialect {
        Dialect::Sqlite => "appointment_id TEXT NOT NULL PRIMARY KEY",
        Dialect::Mysql => "appointment_id VARCHAR(255) NOT NULL",
    };
    let mut lines = vec![format!("  {key}")];
    lines.extend(
        COLUMNS
            .iter()
            .map(|c| format!("  {} {}", c.name, c.definition(dialect))),
    );
    match dialect {
        Dialect::Sqlite => vec![
            Statement::new(
                format!("CREATE TABLE IF NOT EXISTS {t} (\n{}\n)", lines.join(",\n")),
                vec![],
            ),
            Statement::new(
                format!("CREATE INDEX IF NOT EXISTS idx_start_time ON {t} (start_time)"),
                vec![],
            ),
        ],
        Dialect::Mysql => {
            lines.push("  PRIMARY KEY (appointment_id)".into());
            lines.push("  INDEX idx_start_time (start_time)".into());
            vec![Statement::new(
                format!("CREATE TABLE IF NOT EXISTS {t} (\n{}\n)", lines.join(",\n")),
                vec![],
            )]
        }
    }
}

/// Lists the table's columns, one row each with a `name` field.
pub fn list_columns(dialect: Dialect) -> Statement {
    match dialect {
        Dialect::Sqlite => Statement::new(
            format!("SELECT name FROM pragma_table_info('{SCHEDULE_TABLE_NAME}')"),
            vec![],
        ),
        Dialect::Mysql => Statement::new(
            "SELECT COLUMN_NAME AS name FROM INFORMATION_SCHEMA.COLUMNS \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
            vec![SCHEDULE_TABLE_NAME.into()],
        ),
    }
}

/// `ALTER TABLE … ADD COLUMN` for each column of today's layout missing from `existing`
/// (a table created by an older release), in the SDK's order.
pub fn add_missing_columns(dialect: Dialect, existing: &[String]) -> Vec<Statement> {
    COLUMNS
        .iter()
        .filter(|c| !existing.iter().any(|e| e.eq_ignore_ascii_case(c.name)))
        .map(|c| {
            Statement::new(
                format!(
                    "ALTER TABLE {SCHEDULE_TABLE_NAME} ADD COLUMN {} {}",
                    c.name,
                    c.definition(dialect)
                ),
                vec![],
            )
        })
        .collect()
}

/// The statement for one write. Upsert keeps `created_at`, and `p_aid` when the new one is
/// null, and never touches `reminder_sent_at`; a status update never inserts.
pub fn write(dialect: Dialect, write: &ScheduleWrite) -> Statement {
    let t = SCHEDULE_TABLE_NAME;
    match write {
        ScheduleWrite::Upsert(r) => {
            let mut params: Vec<SqlValue> = vec![
                r.appointment_id.as_str().into(),
                r.start_time.into(),
                r.end_time.into(),
                r.status.as_str().into(),
                r.visit_type.as_str().into(),
                r.created_at.into(),
                r.p_aid.as_deref().into(),
            ];
            let insert = format!(
                "INSERT INTO {t} (appointment_id, start_time, end_time, status, visit_type, \
                 created_at, p_aid) VALUES (?, ?, ?, ?, ?, ?, ?)"
            );
            let sql = match dialect {
                Dialect::Sqlite => format!(
                    "{insert} ON CONFLICT (appointment_id) DO UPDATE SET \
                     start_time = excluded.start_time, end_time = excluded.end_time, \
                     status = excluded.status, visit_type = excluded.visit_type, \
                     p_aid = COALESCE(excluded.p_aid, {t}.p_aid)"
                ),
                Dialect::Mysql => {
                    params.extend([
                        r.start_time.into(),
                        r.end_time.into(),
                        r.status.as_str().into(),
                        r.visit_type.as_str().into(),
                        r.p_aid.as_deref().into(),
                    ]);
                    format!(
                        "{insert} ON DUPLICATE KEY UPDATE start_time = ?, end_time = ?, \
                         status = ?, visit_type = ?, p_aid = COALESCE(?, p_aid)"
                    )
                }
            };
            Statement::new(sql, params)
        }
        ScheduleWrite::UpdateStatus {
            appointment_id,
            status,
            start_time,
            end_time,
        } => Statement::new(
            format!(
                "UPDATE {t} SET status = ?, start_time = COALESCE(?, start_time), \
                 end_time = COALESCE(?, end_time) WHERE appointment_id = ?"
            ),
            vec![
                status.as_str().into(),
                (*start_time).into(),
                (*end_time).into(),
                appointment_id.as_str().into(),
            ],
        ),
        ScheduleWrite::MarkReminderSent { appointment_id, at } => {
            mark_reminder_sent(appointment_id, *at)
        }
    }
}

/// Bookings (`BK`) and follow-ups (`IN` + `FLW`) with `start_time` in `[start, end]`, ordered.
pub fn find_between(start: i64, end: i64) -> Statement {
    Statement::new(
        format!(
            "SELECT {SELECT_COLUMNS} FROM {SCHEDULE_TABLE_NAME} WHERE start_time BETWEEN ? AND ? \
             AND (status = '{BOOKED_STATUS}' OR (status = '{INITIATED_STATUS}' AND visit_type = '{FOLLOW_UP_VISIT}')) \
             ORDER BY start_time, appointment_id"
        ),
        vec![start.into(), end.into()],
    )
}

/// A page of [`find_between`]'s rows: after `(start_time, appointment_id)` when given, at
/// most `limit` (keyset paging, `schedule::range`).
pub fn find_page(start: i64, end: i64, after: Option<(i64, &str)>, limit: usize) -> Statement {
    let mut params: Vec<SqlValue> = vec![start.into(), end.into()];
    let after_clause = match after {
        Some((t, id)) => {
            params.extend([t.into(), t.into(), id.into()]);
            " AND (start_time > ? OR (start_time = ? AND appointment_id > ?))"
        }
        None => "",
    };
    params.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
    Statement::new(
        format!(
            "SELECT {SELECT_COLUMNS} FROM {SCHEDULE_TABLE_NAME} WHERE start_time BETWEEN ? AND ? \
             AND (status = '{BOOKED_STATUS}' OR (status = '{INITIATED_STATUS}' AND visit_type = '{FOLLOW_UP_VISIT}')){after_clause} \
             ORDER BY start_time, appointment_id LIMIT ?"
        ),
        params,
    )
}

/// One row by id.
pub fn select_row(appointment_id: &str) -> Statement {
    Statement::new(
        format!("SELECT {SELECT_COLUMNS} FROM {SCHEDULE_TABLE_NAME} WHERE appointment_id = ?"),
        vec![appointment_id.into()],
    )
}

/// Sets `reminder_sent_at`.
pub fn mark_reminder_sent(appointment_id: &str, at_secs: i64) -> Statement {
    Statement::new(
        format!("UPDATE {SCHEDULE_TABLE_NAME} SET reminder_sent_at = ? WHERE appointment_id = ?"),
        vec![at_secs.into(), appointment_id.into()],
    )
}

/// A row as a driver returns it (a JSON object). Integers may arrive as integral floats
/// (JavaScript numbers) or as strings (MySQL `BIGINT` with big-number strings).
pub fn row_from_json(row: &Value) -> Option<ScheduleRow> {
    let text = |k: &str| row.get(k).and_then(Value::as_str).map(str::to_owned);
    let int = |k: &str| -> Option<i64> {
        match row.get(k) {
            Some(Value::String(s)) => s.parse().ok(),
            other => epoch_seconds(other),
        }
    };
    Some(ScheduleRow {
        record: ScheduleRecord {
            appointment_id: text("appointment_id")?,
            start_time: int("start_time").unwrap_or(0),
            end_time: int("end_time").unwrap_or(0),
            status: text("status").unwrap_or_default(),
            visit_type: text("visit_type").unwrap_or_default(),
            created_at: int("created_at").unwrap_or(0),
            p_aid: text("p_aid"),
        },
        reminder_sent_at: int("reminder_sent_at"),
    })
}

/// The columns of the table as eka-webhook-sdk 0.1.0–0.1.2 created it (for migration tests).
#[cfg(test)]
pub(crate) const COLUMNS_0_1_0: [&str; 6] = [
    "appointment_id",
    "start_time",
    "end_time",
    "status",
    "visit_type",
    "created_at",
];

#[cfg(test)]
mod tests {
    use super::*;

    use serde_json::json;

    fn normalise(sql: &str) -> String {
        sql.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace(" ;", ";")
    }

    #[test]
    fn the_d1_migration_is_the_generated_sqlite_schema() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/migrations/0001_create_schedule.sql"
        );
        let file = std::fs::read_to_string(path).unwrap();
        let body: String = file
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        let generated: Vec<String> = create_table(Dialect::Sqlite)
            .iter()
            .map(|s| format!("{};", s.sql))
            .collect();
        assert_eq!(normalise(&body), normalise(&generated.join("\n")));
    }

    #[test]
    fn mysql_create_table_is_the_sdks_layout() {
        let sql = normalise(&create_table(Dialect::Mysql)[0].sql);
        assert_eq!(
            sql,
            "CREATE TABLE IF NOT EXISTS eka_webhook_schedule_appointment ( appointment_id VARCHAR(255) NOT NULL, \
             start_time BIGINT NOT NULL DEFAULT 0, end_time BIGINT NOT NULL DEFAULT 0, status VARCHAR(32) NOT NULL DEFAULT '', \
             visit_type VARCHAR(32) NOT NULL DEFAULT '', created_at BIGINT NOT NULL DEFAULT 0, p_aid VARCHAR(255) NULL DEFAULT NULL, \
             reminder_sent_at BIGINT NULL DEFAULT NULL, PRIMARY KEY (appointment_id), INDEX idx_start_time (start_time) )"
        );
    }

    #[test]
    fn missing_columns_of_a_0_1_0_table_are_added_in_order() {
        let old: Vec<String> = COLUMNS_0_1_0.iter().map(|s| s.to_string()).collect();
        let stmts = add_missing_columns(Dialect::Sqlite, &old);
        let sql: Vec<&str> = stmts.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(
            sql,
            [
                "ALTER TABLE eka_webhook_schedule_appointment ADD COLUMN p_aid TEXT NULL DEFAULT NULL",
                "ALTER TABLE eka_webhook_schedule_appointment ADD COLUMN reminder_sent_at INTEGER NULL DEFAULT NULL",
            ]
        );
        let all: Vec<String> = old
            .iter()
            .cloned()
            .chain(["P_AID".into(), "reminder_sent_at".into()])
            .collect();
        assert!(add_missing_columns(Dialect::Mysql, &all).is_empty());
    }

    #[test]
    fn mysql_upsert_repeats_parameters_instead_of_values() {
        let w = ScheduleWrite::Upsert(ScheduleRecord {
            appointment_id: "a".into(),
            start_time: 10,
            end_time: 20,
            status: "BK".into(),
            visit_type: "".into(),
            created_at: 5,
            p_aid: None,
        });
        let s = write(Dialect::Mysql, &w);
        assert!(!s.sql.contains("VALUES(") && !s.sql.contains("VALUES (start"));
        assert_eq!(s.sql.matches('?').count(), s.params.len());
        assert_eq!(s.params.len(), 12);
        let s = write(Dialect::Sqlite, &w);
        assert_eq!(s.sql.matches('?').count(), s.params.len());
        assert!(s
            .sql
            .contains("COALESCE(excluded.p_aid, eka_webhook_schedule_appointment.p_aid)"));
        assert!(!s.sql.contains("created_at = "));
    }

    #[test]
    fn every_statement_has_as_many_placeholders_as_parameters() {
        let update = ScheduleWrite::UpdateStatus {
            appointment_id: "a".into(),
            status: "CN".into(),
            start_time: None,
            end_time: Some(3),
        };
        let stmts = [
            write(Dialect::Sqlite, &update),
            find_between(1, 2),
            select_row("a"),
            mark_reminder_sent("a", 9),
            list_columns(Dialect::Mysql),
        ];
        for s in stmts {
            assert_eq!(s.sql.matches('?').count(), s.params.len(), "{}", s.sql);
        }
        assert_eq!(
            write(Dialect::Sqlite, &update).params,
            vec![
                SqlValue::Text("CN".into()),
                SqlValue::Null,
                SqlValue::Int(3),
                SqlValue::Text("a".into())
            ]
        );
    }

    #[test]
    fn rows_decode_from_js_numbers_and_mysql_strings() {
        let r = row_from_json(
            &json!({"appointment_id":"a","start_time":1730189586.0,"end_time":"1730191386",
            "status":"BK","visit_type":"","created_at":5,"p_aid":null,"reminder_sent_at":null}),
        )
        .unwrap();
        assert_eq!(
            (
                r.record.start_time,
                r.record.end_time,
                r.record.p_aid,
                r.reminder_sent_at
            ),
            (1730189586, 1730191386, None, None)
        );
        assert!(row_from_json(&json!({"start_time":1})).is_none());
    }

    #[test]
    fn params_serialise_as_plain_json_for_js_drivers() {
        let p = vec![
            SqlValue::Null,
            SqlValue::Int(1_730_189_586),
            SqlValue::Text("x".into()),
        ];
        assert_eq!(
            serde_json::to_string(&p).unwrap(),
            r#"[null,1730189586,"x"]"#
        );
    }
}
