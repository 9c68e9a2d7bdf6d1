//! The attempt log's rows: the answer kept sealed, and opened for the admin API.

use serde_json::{json, Value};

use super::{int, text, ATTEMPT_TABLE};
use crate::destinations::AttemptRecord;
use crate::support::seal::KeyRing;
use crate::support::sql::Statement;

/// What an attempt's answer is sealed with: the attempt's id, marked so that it cannot pass
/// for another sealed value.
pub fn response_aad(attempt_id: &str) -> Vec<u8> {
    format!("{attempt_id}:response").into_bytes()
}

/// An attempt row: `id` (`att_…`) and the message it was for (none for a test send). The
/// receiver's answer is kept only sealed with `EVENT_ENCRYPTION_KEY` (`sealing`: the keys
/// and a fresh nonce; none: not kept): a receiver may echo what it was sent, patient data.
pub fn insert_attempt(
    id: &str,
    delivery_id: Option<&str>,
    a: &AttemptRecord,
    sealing: Option<(&KeyRing, [u8; 12])>,
) -> Statement {
    let body = sealing
        .filter(|_| !a.response_body.is_empty())
        .map(|(keys, nonce)| keys.seal(a.response_body.as_bytes(), &response_aad(id), nonce));
    Statement::new(
        format!(
            "INSERT INTO {ATTEMPT_TABLE} (id, delivery_id, event_id, destination_id, attempt, status, \
             ok, duration_ms, error, response_body, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
        ),
        vec![
            id.into(),
            delivery_id.into(),
            a.event_id.as_str().into(),
            a.destination_id.as_str().into(),
            i64::from(a.attempt).into(),
            a.status.map(i64::from).into(),
            i64::from(a.error.is_none()).into(),
            i64::try_from(a.duration_ms).unwrap_or(i64::MAX).into(),
            a.error.as_deref().into(),
            body.as_deref().into(),
            a.at_ms.into(),
        ],
    )
}

/// An attempt as the admin API shows it.
pub fn attempt_json(id: &str, delivery_id: Option<&str>, a: &AttemptRecord) -> Value {
    json!({
        "id": id,
        "eventId": a.event_id,
        "destinationId": a.destination_id,
        "deliveryId": delivery_id,
        "attempt": a.attempt,
        "status": a.status,
        "ok": a.error.is_none(),
        "durationMs": a.duration_ms,
        "error": a.error,
        "responseBody": Some(a.response_body.as_str()).filter(|b| !b.is_empty()),
        "at": a.at_ms,
    })
}

/// An attempt row from D1's JSON, as the admin API shows it: the answer opened with `keys`
/// (null when it was not kept or cannot be opened).
pub fn attempt_row_json(row: &Value, keys: Option<&KeyRing>) -> Option<Value> {
    let id = text(row, "id")?;
    let body = text(row, "response_body")
        .zip(keys)
        .and_then(|(sealed, keys)| keys.open(&sealed, &response_aad(&id)).ok())
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    Some(json!({
        "id": id,
        "eventId": text(row, "event_id")?,
        "destinationId": text(row, "destination_id")?,
        "deliveryId": text(row, "delivery_id"),
        "attempt": int(row, "attempt")?,
        "status": int(row, "status"),
        "ok": int(row, "ok")? != 0,
        "durationMs": int(row, "duration_ms")?,
        "error": text(row, "error"),
        "responseBody": body,
        "at": int(row, "at")?,
    }))
}
