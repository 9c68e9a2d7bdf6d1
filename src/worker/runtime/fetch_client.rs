//! The core's `HttpClient` over the Workers `fetch`, with a timeout that aborts the request
//! (as does dropping it unfinished), and the clock over `Date.now()`. Redirects are never
//! followed (`redirect: "manual"`): a 3xx is handed to the core as it is. An answer is read up
//! to the request's `max_response_bytes` and the rest of its body cancelled.

use std::pin::pin;
use std::time::Duration;

use futures::future::{select, Either};
use futures::StreamExt;
use wasm_bindgen::JsValue;
use worker::wasm_bindgen_futures::JsFuture;
use worker::{web_sys, AbortController, Date, Delay, Fetch, Headers, Request, ResponseBody};

use crate::support::http::{self, Clock, HttpClient, HttpError, HttpRequest, HttpResponse};

/// `fetch`.
#[derive(Debug, Clone, Copy, Default)]
pub struct FetchClient;

/// `Date.now()`.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerClock;

impl Clock for WorkerClock {
    fn now_ms(&self) -> i64 {
        i64::try_from(Date::now().as_millis()).unwrap_or(i64::MAX)
    }
}

impl HttpClient for FetchClient {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let controller = AbortController::default();
        let signal = controller.signal();
        let mut pending = AbortUnlessDone(Some(controller));
        let timeout = Delay::from(Duration::from_millis(u64::from(request.timeout_ms)));
        let exchange = async move {
            let req = build(&request).map_err(|_| HttpError::Network("invalid request".into()))?;
            let mut response = Fetch::Request(req)
                .send_with_signal(&signal)
                .await
                .map_err(|_| HttpError::Network("fetch failed".into()))?;
            let status = response.status_code();
            let headers: Vec<(String, String)> = response.headers().entries().collect();
            // A declared length within the limit is read whole (the runtime holds a body to
            // its Content-Length); otherwise chunk by chunk, up to the limit.
            let declared = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| v.trim().parse::<usize>().ok());
            let body = match request.max_response_bytes {
                Some(limit) if !declared.is_some_and(|n| n <= limit) => {
                    read_at_most(&mut response, limit).await
                }
                _ => body_bytes(response).await,
            }
            .map_err(|_| HttpError::Network("reading the response failed".into()))?;
            Ok(HttpResponse {
                status,
                headers,
                body,
            })
        };
        let exchange = pin!(exchange);
        let timeout = pin!(timeout);
        match select(exchange, timeout).await {
            Either::Left((result, _)) => {
                pending.0 = None;
                result
            }
            // `pending` aborts the request.
            Either::Right(_) => Err(HttpError::Timeout),
        }
    }
}

/// Aborts a request that did not finish: at its timeout, and when its caller stops waiting
/// (drops the future), as a copy whose claim answered first drops the appointment fetch it
/// started beside it. Unaborted, that fetch ran on for as long as the copy's request had other
/// work after its answer, and then reached the Eka API or not by that timing.
struct AbortUnlessDone(Option<AbortController>);

impl Drop for AbortUnlessDone {
    fn drop(&mut self) {
        if let Some(controller) = self.0.take() {
            controller.abort();
        }
    }
}

/// The whole body of `response`, read by the runtime in one call (`arrayBuffer()`) rather than
/// chunk by chunk through a stream reader in wasm (a profile found that reader a good part of
/// each Eka call's and each object call's CPU).
pub(crate) async fn body_bytes(response: worker::Response) -> worker::Result<Vec<u8>> {
    let stream = match response.body() {
        ResponseBody::Stream(stream) => stream,
        ResponseBody::Body(bytes) => return Ok(bytes.clone()),
        ResponseBody::Empty => return Ok(Vec::new()),
    };
    // A plain wrapper of the stream (status 200, no headers): it only reads it.
    let raw = web_sys::Response::new_with_opt_readable_stream(Some(stream))?;
    let buffer = JsFuture::from(raw.array_buffer()?).await?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// The first `limit` bytes of the body; the rest is cancelled (the stream is dropped) rather
/// than read.
async fn read_at_most(response: &mut worker::Response, limit: usize) -> worker::Result<Vec<u8>> {
    let Ok(mut stream) = response.stream() else {
        // No body (a 204, a HEAD).
        return Ok(Vec::new());
    };
    let mut body = Vec::new();
    while body.len() < limit {
        match stream.next().await {
            Some(chunk) => {
                let chunk = chunk?;
                let room = limit - body.len();
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
            None => break,
        }
    }
    // Dropping the stream cancels what is left of it.
    drop(stream);
    Ok(body)
}

fn build(request: &HttpRequest) -> worker::Result<Request> {
    let headers = Headers::new();
    for (name, value) in &request.headers {
        headers.set(name, value)?;
    }
    let body = request
        .body
        .as_ref()
        .map(|body| JsValue::from(js_sys::Uint8Array::from(body.as_slice())));
    let method = match request.method {
        http::Method::Get => "GET",
        http::Method::Post => "POST",
    };
    new_request(&request.url, method, &headers, body.as_ref())
}

/// `Request::new_with_init` without workers-rs's `RequestInit`, whose conversion carries the
/// serialisation of every `cf` option (none of which we set) into the Worker upload. Sets
/// method, headers when there are any, body, and redirect "manual": this Worker never follows
/// a redirect.
pub(crate) fn new_request(
    url: &str,
    method: &str,
    headers: &Headers,
    body: Option<&JsValue>,
) -> worker::Result<Request> {
    new_raw_request(url, method, headers, body).map(Request::from)
}

/// [`new_request`] as the runtime's request (no `worker::Request`, which parses the URL and
/// takes the headers apart: an object call hands it straight to the stub).
pub(crate) fn new_raw_request(
    url: &str,
    method: &str,
    headers: &Headers,
    body: Option<&JsValue>,
) -> worker::Result<web_sys::Request> {
    let init = web_sys::RequestInit::new();
    if !headers.is_empty() {
        init.set_headers(&headers.0);
    }
    init.set_method(method);
    init.set_redirect(web_sys::RequestRedirect::Manual);
    if let Some(body) = body {
        init.set_body(body);
    }
    web_sys::Request::new_with_str_and_init(url, &init).map_err(|e| {
        worker::Error::JsError(
            e.as_string()
                .unwrap_or_else(|| "invalid URL or options for Request".to_string()),
        )
    })
}
