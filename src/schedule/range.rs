//! The range query of `/admin/appointments` and the Cron Trigger's sweep, paged: bookings and
//! follow-ups with `start_time` in `[start, end]`, in `(start_time, appointment_id)` order,
//! read by keyset (`support::page`). A cursor is `<start_time>:<appointment_id>` of the last
//! row a page kept.
//!
//! Each row of `/admin/appointments` is fetched from the Eka API (appointment, patient,
//! doctor, clinic: up to 4 requests), so a page holds at most [`APPOINTMENTS_PAGE_MAX`] rows:
//! 40 requests and the token stay under the 50 subrequests a Workers Free invocation may make.

use crate::schedule::sql::find_page;
use crate::schedule::ScheduleRow;
use crate::support::page::keyset_page;
use crate::support::sql::Statement;

/// The largest (and default) page of `/admin/appointments`.
pub const APPOINTMENTS_PAGE_MAX: usize = 10;

/// A page of the range query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeQuery {
    /// Epoch seconds.
    pub start: i64,
    /// Epoch seconds, not before `start`.
    pub end: i64,
    /// Rows in the page.
    pub limit: usize,
    /// After this `(start_time, appointment_id)`.
    pub after: Option<(i64, String)>,
    /// Only this source's appointments (issue 21; `default`: those of no other source).
    pub source: Option<String>,
}

impl RangeQuery {
    /// Parses `start`, `end` (required), `limit` (1 to `max`, default `max`) and `cursor`
    /// from a query string's pairs; the error names the parameter.
    pub fn parse(pairs: &[(String, String)], max: usize) -> Result<RangeQuery, String> {
        let get = |name: &str| pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.trim());
        let number = |name: &str| get(name).and_then(|v| v.parse::<i64>().ok());
        let (Some(start), Some(end)) = (number("start"), number("end")) else {
            return Err("Query parameters 'start' and 'end' are required, as epoch seconds".into());
        };
        if start > end {
            return Err("'start' must not be after 'end'".into());
        }
        let limit = match get("limit") {
            None => max,
            Some(v) => crate::support::page::parse_limit(v, max)?,
        };
        let after = match get("cursor") {
            None | Some("") => None,
            Some(c) => Some(parse_cursor(c)?),
        };
        let source = match get("sourceId") {
            None | Some("") => None,
            Some(id) => Some(crate::event_log::parse_source_id(id)?),
        };
        Ok(RangeQuery {
            start,
            end,
            limit,
            after,
            source,
        })
    }

    /// The statement of this page: one row more than `limit`.
    pub fn statement(&self) -> Statement {
        let mut page = find_page(
            self.start,
            self.end,
            self.after.as_ref().map(|(t, id)| (*t, id.as_str())),
            self.limit + 1,
        );
        // A source: its appointments are those kept beside the schedule table under its id;
        // the default source's are those of no other source.
        if let (Some(source), Some(at)) = (&self.source, page.sql.find(" AND (status")) {
            let table = crate::sources::store::APPOINTMENT_SOURCE_TABLE;
            let clause = if source == crate::sources::DEFAULT_SOURCE_ID {
                format!(" AND appointment_id NOT IN (SELECT appointment_id FROM {table})")
            } else {
                page.params.insert(2, source.as_str().into());
                format!(
                    " AND appointment_id IN (SELECT appointment_id FROM {table} WHERE source = ?)"
                )
            };
            page.sql.insert_str(at, &clause);
        }
        page
    }

    /// The page's rows (from [`Self::statement`]'s) and the next page's cursor.
    pub fn page(&self, rows: Vec<ScheduleRow>) -> (Vec<ScheduleRow>, Option<String>) {
        keyset_page(rows, self.limit, |r| Some(cursor_of(r)))
    }
}

/// The page's rows as they are kept (every column of the schedule table, camelCase), in page
/// order: `/admin/appointments`' `stored`. What the Eka API says of an appointment is fetched
/// beside it; this is what the Worker itself keeps, shown for rows whose fetch failed too.
/// `sources`: the `appointment_id`/`source` rows recorded for them (an id without one is
/// `default`'s); `None` when they could not be read (`sourceId` null: unknown).
pub fn stored_json(
    rows: &[ScheduleRow],
    sources: Option<&[serde_json::Value]>,
) -> serde_json::Value {
    let source_of = |id: &str| {
        let sources = sources?;
        Some(
            sources
                .iter()
                .find(|s| s.get("appointment_id").and_then(|v| v.as_str()) == Some(id))
                .and_then(|s| s.get("source")?.as_str())
                .unwrap_or(crate::sources::DEFAULT_SOURCE_ID),
        )
    };
    let rows = rows.iter().map(|row| {
        let r = &row.record;
        serde_json::json!({
            "appointmentId": r.appointment_id,
            "sourceId": source_of(&r.appointment_id),
            "startTime": r.start_time,
            "endTime": r.end_time,
            "status": r.status,
            "visitType": r.visit_type,
            "createdAt": r.created_at,
            "pAid": r.p_aid,
            "reminderSentAt": row.reminder_sent_at,
        })
    });
    serde_json::Value::Array(rows.collect())
}

/// The cursor after `row`.
pub fn cursor_of(row: &ScheduleRow) -> String {
    format!("{}:{}", row.record.start_time, row.record.appointment_id)
}

/// Reads a cursor [`cursor_of`] made.
pub fn parse_cursor(cursor: &str) -> Result<(i64, String), String> {
    cursor
        .split_once(':')
        .and_then(|(t, id)| Some((t.parse::<i64>().ok()?, id.to_owned())))
        .filter(|(_, id)| !id.is_empty())
        .ok_or_else(|| "'cursor' must be a nextCursor this API returned".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_rows_show_every_kept_column_in_page_order() {
        let row = |id: &str, start: i64, p_aid: Option<&str>, sent: Option<i64>| ScheduleRow {
            record: crate::schedule::ScheduleRecord {
                appointment_id: id.into(),
                start_time: start,
                end_time: start + 900,
                status: "BK".into(),
                visit_type: "REG".into(),
                created_at: 7,
                p_aid: p_aid.map(Into::into),
            },
            reminder_sent_at: sent,
        };
        let sources = [serde_json::json!({"appointment_id": "c", "source": "src_x"})];
        let v = stored_json(
            &[row("b", 20, Some("a"), Some(15)), row("c", 30, None, None)],
            Some(&sources),
        );
        assert_eq!(
            v,
            serde_json::json!([
                {"appointmentId": "b", "sourceId": "default", "startTime": 20, "endTime": 920, "status": "BK",
                 "visitType": "REG", "createdAt": 7, "pAid": "a", "reminderSentAt": 15},
                {"appointmentId": "c", "sourceId": "src_x", "startTime": 30, "endTime": 930, "status": "BK",
                 "visitType": "REG", "createdAt": 7, "pAid": null, "reminderSentAt": null},
            ])
        );
        assert_eq!(stored_json(&[], Some(&[])), serde_json::json!([]));
        let unknown = stored_json(&[row("c", 30, None, None)], None);
        assert_eq!(unknown[0]["sourceId"], serde_json::Value::Null);
        let ids = ["b", "c"];
        let q = crate::sources::store::sources_of_appointments(&ids).unwrap();
        assert!(
            q.sql.ends_with("WHERE appointment_id IN (?, ?)"),
            "{}",
            q.sql
        );
        assert_eq!(q.params.len(), 2);
        assert!(crate::sources::store::sources_of_appointments(&[]).is_none());
    }

    #[test]
    fn a_source_keeps_its_own_appointments() {
        let id = "src_01JBBT5Q3ZK2M3D2V6X4N8R9TA";
        let q = RangeQuery::parse(
            &pairs(&[
                ("start", "1"),
                ("end", "2"),
                ("sourceId", id),
                ("cursor", "1:a"),
            ]),
            10,
        )
        .unwrap();
        let s = q.statement();
        assert!(s.sql.contains("BETWEEN ? AND ? AND appointment_id IN (SELECT appointment_id FROM eka_webhook_appointment_source WHERE source = ?) AND (status"), "{}", s.sql);
        assert_eq!(s.sql.matches('?').count(), s.params.len());
        assert_eq!(s.params[2], crate::support::sql::SqlValue::Text(id.into()));
        let d = RangeQuery::parse(
            &pairs(&[("start", "1"), ("end", "2"), ("sourceId", "default")]),
            10,
        )
        .unwrap();
        assert!(d.statement().sql.contains(
            "appointment_id NOT IN (SELECT appointment_id FROM eka_webhook_appointment_source)"
        ));
        let any = RangeQuery::parse(&pairs(&[("start", "1"), ("end", "2")]), 10).unwrap();
        assert!(!any
            .statement()
            .sql
            .contains("eka_webhook_appointment_source"));
        let e = RangeQuery::parse(
            &pairs(&[("start", "1"), ("end", "2"), ("sourceId", "x")]),
            10,
        )
        .unwrap_err();
        assert!(e.contains("'sourceId'"), "{e}");
    }
    use crate::schedule::ScheduleRecord;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn row(id: &str, start: i64) -> ScheduleRow {
        ScheduleRow {
            record: ScheduleRecord {
                appointment_id: id.into(),
                start_time: start,
                end_time: start + 900,
                status: "BK".into(),
                visit_type: String::new(),
                created_at: 0,
                p_aid: None,
            },
            reminder_sent_at: None,
        }
    }

    #[test]
    fn parameters_are_checked_and_named() {
        let q = RangeQuery::parse(&pairs(&[("start", "1"), ("end", "5")]), 10).unwrap();
        assert_eq!((q.start, q.end, q.limit, q.after), (1, 5, 10, None));
        for (bad, named) in [
            (&[("start", "1")][..], "'start' and 'end'"),
            (&[("start", "a"), ("end", "2")][..], "'start' and 'end'"),
            (&[("start", "5"), ("end", "1")][..], "'start' must not"),
            (
                &[("start", "1"), ("end", "2"), ("limit", "11")][..],
                "'limit'",
            ),
            (
                &[("start", "1"), ("end", "2"), ("limit", "0")][..],
                "'limit'",
            ),
            (
                &[("start", "1"), ("end", "2"), ("cursor", "x")][..],
                "'cursor'",
            ),
            (
                &[("start", "1"), ("end", "2"), ("cursor", "5:")][..],
                "'cursor'",
            ),
        ] {
            let e = RangeQuery::parse(&pairs(bad), 10).unwrap_err();
            assert!(e.contains(named), "{bad:?}: {e}");
        }
    }

    #[test]
    fn pages_follow_each_other_by_start_time_then_id() {
        // An id may hold ':': the cursor splits at the first one (the time has none).
        let rows = vec![row("a:1", 10), row("b", 10), row("c", 20)];
        let q = RangeQuery::parse(&pairs(&[("start", "0"), ("end", "99"), ("limit", "2")]), 10)
            .unwrap();
        let (page, next) = q.page(rows);
        assert_eq!(page.len(), 2);
        assert_eq!(next.as_deref(), Some("10:b"));
        let q2 = RangeQuery::parse(
            &pairs(&[("start", "0"), ("end", "99"), ("cursor", "10:a:1")]),
            10,
        )
        .unwrap();
        assert_eq!(q2.after, Some((10, "a:1".into())));
        let s = q2.statement();
        assert!(s
            .sql
            .contains("(start_time > ? OR (start_time = ? AND appointment_id > ?))"));
        assert!(s
            .sql
            .ends_with("ORDER BY start_time, appointment_id LIMIT ?"));
        assert_eq!(s.params.len(), 6);
        assert_eq!(s.params[5], 11i64.into());
    }
}
