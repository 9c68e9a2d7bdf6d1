//! The admin lists' query parameters and cursors (events, deliveries, attempts, stats,
//! reminders), the replay body, and keyset paging: no panic; what is accepted is in range
//! (limit 1 to 200, hours 1 to 720, since ≤ until, cursors only ids this API makes); the SQL
//! has exactly one placeholder per bound value (values never reach the SQL text); a page is
//! the first `limit` rows with a cursor only when more came back.
#![no_main]
use eka_webhook_edge::destinations::store::{is_id, list_statement, parse_list_query, ListKind};
use eka_webhook_edge::event_log::{
    is_event_id, list_events, parse_event_query, parse_replay_batch, parse_stats_hours,
    replay_candidates, MAX_LIMIT,
};
use eka_webhook_edge::reminders::parse_list_request;
use eka_webhook_edge::support::page::keyset_page;
use eka_webhook_edge::support::sql::Statement;
use libfuzzer_sys::fuzz_target;

fn placeholders_match(statement: &Statement) {
    assert_eq!(
        statement.sql.matches('?').count(),
        statement.params.len(),
        "{}",
        statement.sql
    );
}

fuzz_target!(|data: &[u8]| {
    let pairs: Vec<(String, String)> = form_urlencoded::parse(data)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    if let Ok(q) = parse_event_query(&pairs) {
        assert!((1..=MAX_LIMIT).contains(&q.limit));
        assert!(q.cursor.as_deref().map_or(true, is_event_id));
        if let (Some(s), Some(u)) = (q.since_ms, q.until_ms) {
            assert!(0 <= s && s <= u);
        }
        placeholders_match(&list_events(&q));
    }
    for (kind, prefix) in [(ListKind::Deliveries, "msg"), (ListKind::Attempts, "att")] {
        if let Ok(q) = parse_list_query(kind, &pairs) {
            assert!((1..=MAX_LIMIT).contains(&q.limit));
            assert!(q.cursor.as_deref().map_or(true, |c| is_id(c, prefix)));
            assert!(q.filters.iter().all(|(_, v)| !v.is_empty()));
            placeholders_match(&list_statement(&q));
        }
    }
    if let Ok(hours) = parse_stats_hours(&pairs) {
        assert!((1..=720).contains(&hours));
    }
    if let Ok(appointment) = parse_list_request(&pairs) {
        assert!(!appointment.is_empty() && appointment.trim() == appointment);
    }
    if let Ok(body) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(batch) = parse_replay_batch(&body) {
            assert!(batch.query.status.is_some());
            assert!(batch.query.cursor.as_deref().map_or(true, is_event_id));
            placeholders_match(&replay_candidates(&batch, 100));
        }
    }
    let limit = data.first().map_or(0, |b| usize::from(*b % 8));
    let n = pairs.len();
    let (rows, next) = keyset_page(pairs, limit, |(k, _)| Some(k.clone()));
    assert_eq!(rows.len(), n.min(limit));
    assert_eq!(next.is_some(), n > limit && limit > 0);
    if let Some(next) = next {
        assert_eq!(rows.last().map(|(k, _)| k), Some(&next));
    }
});
