//! The core's `HttpClient` over the Workers `fetch`, with a timeout that aborts the request,
//! and the clock over `Date.now()`.

use std::pin::pin;
use std::time::Duration;

use futures::future::{select, Either};
use worker::{AbortController, Date, Delay, Fetch, Headers, Method, Request, RequestInit};

use crate::http::{self, Clock, HttpClient, HttpError, HttpRequest, HttpResponse};

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
        let timeout = Delay::from(Duration::from_millis(u64::from(request.timeout_ms)));
        let exchange = async move {
            let req = build(&request).map_err(|_| HttpError::Network("invalid request".into()))?;
            let mut response = Fetch::Request(req)
                .send_with_signal(&signal)
                .await
                .map_err(|_| HttpError::Network("fetch failed".into()))?;
            let status = response.status_code();
            let headers = response.headers().entries().collect();
            let body = response
                .bytes()
                .await
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
            Either::Left((result, _)) => result,
            Either::Right(_) => {
                controller.abort();
                Err(HttpError::Timeout)
            }
        }
    }
}

fn build(request: &HttpRequest) -> worker::Result<Request> {
    let headers = Headers::new();
    for (name, value) in &request.headers {
        headers.set(name, value)?;
    }
    let mut init = RequestInit::new();
    init.with_method(match request.method {
        http::Method::Get => Method::Get,
        http::Method::Post => Method::Post,
    })
    .with_headers(headers);
    if let Some(body) = &request.body {
        init.with_body(Some(js_sys::Uint8Array::from(body.as_slice()).into()));
    }
    Request::new_with_init(&request.url, &init)
}
