//! The gate (`ORIGIN_URL`): verify and claim here, pass the request on to the origin
//! untouched, answer Eka with the origin's answer, and run this Worker's own work (enrichment,
//! schedule, reminders, forward) after that answer with `waitUntil`. The rules are in
//! [`crate::gate`]; a refusal, a duplicate or a copy in flight never reaches the origin.

use std::pin::pin;
use std::rc::Rc;
use std::time::Duration;

use futures::future::{select, Either};
use serde_json::json;
use worker::{
    AbortController, Context, Delay, Env, Fetch, Headers, Method, Request, RequestInit, Response,
    Result,
};

use super::fetch_client::WorkerClock;
use super::log;
use super::object_ledger::{admit, finish};
use super::respond::error;
use crate::gate::{origin_headers, origin_url, response_headers, ORIGIN_TIMEOUT_MS};
use crate::http::Clock;
use crate::pipeline::{Admission, Outcome};
use crate::settings::Settings;

/// What the origin answered.
struct OriginAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Why the origin gave no answer.
enum OriginError {
    Timeout,
    Unreachable,
}

/// Handles a webhook in front of `origin`. `answer` turns a pipeline outcome that stops here
/// (a refusal, a duplicate, a copy in flight) into the response, with its logging.
#[allow(clippy::too_many_arguments)]
pub async fn pass(
    origin: &str,
    path: &str,
    query: Option<&str>,
    body: Vec<u8>,
    headers: Vec<(String, String)>,
    env: &Env,
    ctx: &Context,
    settings: Rc<Settings>,
    answer: impl FnOnce(&Outcome) -> Result<Response>,
) -> Result<Response> {
    let admitted = match admit(env, ctx, &settings, &body, &headers).await {
        Admission::Answer(outcome) => return answer(&outcome),
        Admission::Admitted(admitted) => *admitted,
    };
    let url = origin_url(origin, path, query);
    let sent = origin_headers(&headers, admitted.event_id.as_deref(), WorkerClock.now_ms());
    let reply = send(&url, sent, &body).await;
    let status = reply.as_ref().ok().map(|r| r.status);
    let env = env.clone();
    let later = Rc::clone(&settings);
    ctx.wait_until(async move {
        if let Some(outcome) = finish(&env, &later, admitted, &body, status).await {
            for warning in &outcome.warnings {
                log::warn(later.debug, warning, json!({ "eventId": outcome.event_id }));
            }
            if let Some(e) = &outcome.error {
                log::warn(
                    later.debug,
                    &e.to_string(),
                    json!({ "status": outcome.status, "eventId": outcome.event_id }),
                );
            }
        }
    });
    match reply {
        Ok(answer) => {
            let out = Headers::new();
            for (name, value) in response_headers(&answer.headers) {
                out.append(&name, &value)?;
            }
            Ok(Response::from_bytes(answer.body)?
                .with_status(answer.status)
                .with_headers(out))
        }
        Err(OriginError::Timeout) => error(504, "The origin did not answer in time"),
        Err(OriginError::Unreachable) => error(502, "The origin could not be reached"),
    }
}

/// POSTs the exact bytes to the origin with a timeout that aborts the request.
async fn send(
    url: &str,
    headers: Vec<(String, String)>,
    body: &[u8],
) -> std::result::Result<OriginAnswer, OriginError> {
    let controller = AbortController::default();
    let signal = controller.signal();
    let exchange = async move {
        let out = Headers::new();
        for (name, value) in &headers {
            out.append(name, value)
                .map_err(|_| OriginError::Unreachable)?;
        }
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_headers(out)
            .with_body(Some(js_sys::Uint8Array::from(body).into()));
        let request = Request::new_with_init(url, &init).map_err(|_| OriginError::Unreachable)?;
        let mut response = Fetch::Request(request)
            .send_with_signal(&signal)
            .await
            .map_err(|_| OriginError::Unreachable)?;
        let status = response.status_code();
        let headers = response.headers().entries().collect();
        let body = response
            .bytes()
            .await
            .map_err(|_| OriginError::Unreachable)?;
        Ok(OriginAnswer {
            status,
            headers,
            body,
        })
    };
    let timeout = Delay::from(Duration::from_millis(u64::from(ORIGIN_TIMEOUT_MS)));
    match select(pin!(exchange), pin!(timeout)).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => {
            controller.abort();
            Err(OriginError::Timeout)
        }
    }
}
