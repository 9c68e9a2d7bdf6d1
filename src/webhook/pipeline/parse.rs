//! The body as a JSON object, with nesting refused before serde_json recurses.

use serde_json::{Map, Value};

use super::WebhookError;

/// Parses the body as a JSON object, refusing deep nesting before serde_json recurses.
pub(super) fn parse_object(
    body: &[u8],
    max_depth: usize,
) -> Result<Map<String, Value>, WebhookError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(WebhookError::BodyRequired);
    }
    if nesting_exceeds(body, max_depth) {
        return Err(WebhookError::TooDeep);
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(WebhookError::BodyRequired),
        Err(_) => Err(WebhookError::InvalidJson),
    }
}

/// True if brackets outside strings nest deeper than `max_depth`.
fn nesting_exceeds(body: &[u8], max_depth: usize) -> bool {
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'{' | b'[' => {
                depth += 1;
                if depth > max_depth {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}
