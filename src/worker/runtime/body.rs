//! Request bodies read under a byte limit: the webhook's (`MAX_BODY_BYTES`) and the admin
//! API's (the core's `json_body::MAX_BYTES`).

use futures::StreamExt;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{js_sys, Request, Result};

use crate::support::capped_body::CappedBody;

/// The declared `Content-Length`, when there is a readable one.
pub fn declared_length(req: &Request) -> Option<usize> {
    req.headers()
        .get("Content-Length")
        .ok()
        .flatten()
        .and_then(|v| v.parse::<usize>().ok())
}

/// The request body, read chunk by chunk up to `limit` bytes (without a declared length within
/// it); none as soon as it goes over (the rest is not read: dropping the stream cancels it).
pub async fn read_capped(
    req: &mut Request,
    limit: usize,
    declared: Option<usize>,
) -> Result<Option<Vec<u8>>> {
    // A declared length within the limit (checked by the caller) is read whole by the runtime
    // (it holds a body to its Content-Length), in one call rather than chunk by chunk.
    if declared.is_some_and(|n| n <= limit) {
        let buffer = JsFuture::from(req.inner().array_buffer()?).await?;
        let body = js_sys::Uint8Array::new(&buffer).to_vec();
        // Should a body still outgrow its declared length, it is refused all the same.
        return Ok((body.len() <= limit).then_some(body));
    }
    let mut stream = match req.stream() {
        Ok(stream) => stream,
        // No body at all.
        Err(_) => return Ok(Some(Vec::new())),
    };
    let mut body = CappedBody::new(limit);
    while let Some(chunk) = stream.next().await {
        if body.push(&chunk?).is_err() {
            return Ok(None);
        }
    }
    Ok(Some(body.into_bytes()))
}
