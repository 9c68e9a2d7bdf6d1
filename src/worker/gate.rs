//! The gate (`ORIGIN_URL`): verify and take the delivery in here (one object call: the intake
//! keeps the body), pass the request on to the origin untouched, answer Eka with the origin's
//! answer, and then tell the object what the origin answered (`waitUntil`): it runs this
//! Worker's own work (enrichment, schedule, reminders, fan-out) itself, or fails the event. The rules are in
//! [`crate::webhook::gate`]; a refusal, a duplicate or a copy in flight never reaches the origin.

use std::rc::Rc;
use std::time::Duration;

use worker::{Context, Delay, Env, Headers, Response, Result};

use crate::settings::Settings;
use crate::support::http::{Clock, HttpClient, HttpError, HttpRequest, Method};
use crate::webhook::gate::{origin_headers, origin_url, response_headers, ORIGIN_TIMEOUT_MS};
use crate::webhook::pipeline::{Admission, Outcome};
use crate::worker::runtime::fetch_client::{FetchClient, WorkerClock};
use crate::worker::runtime::respond::error;
use crate::worker::webhook::{admit, finish};

/// The origin's status is sent this long after its answer is handed back, so that the answer
/// has left before that call takes the isolate's thread (work started at once delayed the
/// answer by ~4 ms in workerd; a zero timer did not help). The intake is on record either way.
const AFTER_ANSWER_DELAY_MS: u64 = 20;

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
    let request = HttpRequest {
        method: Method::Post,
        url: origin_url(origin, path, query),
        headers: origin_headers(
            &headers,
            admitted.event_id.as_deref(),
            admitted.matched.map(|_| WorkerClock.now_ms()),
        ),
        body: Some(body.clone()),
        timeout_ms: ORIGIN_TIMEOUT_MS,
        // The origin's answer is Eka's: passed back whole (a 3xx too, unchanged).
        max_response_bytes: None,
    };
    let reply = FetchClient.send(request).await;
    let status = reply.as_ref().ok().map(|r| r.status);
    let env = env.clone();
    let later = Rc::clone(&settings);
    let dropped = crate::worker::runtime::probe::drops_after_answer(&env);
    ctx.wait_until(async move {
        if dropped {
            return;
        }
        Delay::from(Duration::from_millis(AFTER_ANSWER_DELAY_MS)).await;
        finish(&env, &later, admitted, status).await;
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
        Err(HttpError::Timeout) => error(504, "The origin did not answer in time"),
        Err(HttpError::Network(_)) => error(502, "The origin could not be reached"),
    }
}
