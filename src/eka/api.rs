//! Eka Care API client: login with client credentials, then the appointment, patient, doctor
//! and clinic endpoints.
//!
//! Fixes over the SDK's client (docs/eka-compatibility.md#eka-api): the token's `expires_in`
//! is honoured (refreshed 30 s early) and a 401 triggers one re-login and retry; concurrent
//! callers share one login; every call has a timeout and one retry on 5xx or a transport
//! failure; ids are percent-encoded as path segments; error texts never carry upstream bodies
//! or tokens.

use std::cell::RefCell;
use std::rc::Rc;

use async_lock::Semaphore;
use futures::lock::Mutex;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};

use crate::support::from_json::json_text;
use crate::support::http::{Clock, HttpClient, HttpError, HttpRequest, HttpResponse, Method};
use crate::webhook::event::is_dot_segment;

/// Production API.
pub const DEFAULT_BASE_URL: &str = "https://api.eka.care";
/// Login path.
pub const LOGIN_PATH: &str = "/connect-auth/v1/account/login";
/// Token lifetime when the login response has no `expires_in`.
pub const DEFAULT_TOKEN_LIFETIME_SECS: u64 = 600;
/// A token is renewed this long before it expires.
pub const TOKEN_REFRESH_MARGIN_SECS: u64 = 30;
/// Default per-call timeout.
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;

/// Everything but the unreserved characters is encoded in a path segment.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Client settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EkaApiConfig {
    /// Base URL without a trailing slash.
    pub base_url: String,
    /// Eka Connect client id.
    pub client_id: String,
    /// Eka Connect client secret.
    pub client_secret: String,
    /// Sent in the login body when set.
    pub api_key: Option<String>,
    /// Per-call timeout.
    pub timeout_ms: u32,
}

impl EkaApiConfig {
    /// Production URL and default timeout.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        EkaApiConfig {
            base_url: DEFAULT_BASE_URL.to_owned(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            api_key: None,
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }
}

/// A resource of the Eka API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// `/dr/v1/appointment/{id}`.
    Appointment,
    /// `/dr/v1/patient/{id}`.
    Patient,
    /// `/dr/v1/doctor/{id}`.
    Doctor,
    /// `/dr/v1/business/clinic/{id}`.
    Clinic,
}

impl Resource {
    /// Lower-case name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Resource::Appointment => "appointment",
            Resource::Patient => "patient",
            Resource::Doctor => "doctor",
            Resource::Clinic => "clinic",
        }
    }

    fn path(&self) -> &'static str {
        match self {
            Resource::Appointment => "/dr/v1/appointment/",
            Resource::Patient => "/dr/v1/patient/",
            Resource::Doctor => "/dr/v1/doctor/",
            Resource::Clinic => "/dr/v1/business/clinic/",
        }
    }

    /// Unwraps a response body as the SDK does, plus the documented clinic envelope
    /// (docs/eka-compatibility.md#response-unwrapping).
    fn unwrap(&self, body: Value) -> Value {
        let key = match self {
            Resource::Appointment => "data",
            Resource::Patient => return body,
            Resource::Doctor => "doctor",
            Resource::Clinic => "clinic",
        };
        if body.get(key).is_some_and(Value::is_object) {
            return body.get(key).cloned().unwrap_or(body);
        }
        if *self == Resource::Clinic {
            if let Some(clinic) = body.pointer("/data/clinic").filter(|c| c.is_object()) {
                return clinic.clone();
            }
        }
        body
    }
}

/// Why an API call failed. The text never includes response bodies or tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// Login refused or failed.
    Login(Box<ApiError>),
    /// A non-2xx status (after the retries).
    Status(u16),
    /// 2xx whose body is not the JSON expected.
    InvalidResponse,
    /// No response.
    Transport(HttpError),
    /// An id that cannot be a path segment (empty, `.` or `..`).
    InvalidId,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::Login(inner) => write!(f, "login failed: {inner}"),
            ApiError::Status(status) => write!(f, "HTTP {status}"),
            ApiError::InvalidResponse => f.write_str("unexpected response body"),
            ApiError::Transport(e) => e.fmt(f),
            ApiError::InvalidId => f.write_str("invalid id"),
        }
    }
}

impl std::error::Error for ApiError {}

#[derive(Debug, Clone)]
struct Token {
    access_token: String,
    /// Renew at or after this instant (epoch ms).
    renew_at_ms: i64,
}

/// An access token shared between clients (the Worker keeps one per isolate and a client per
/// request). Plain synchronous data on purpose: no client ever waits on another's I/O, which
/// workerd forbids across requests.
#[derive(Debug, Clone, Default)]
pub struct TokenCache(Rc<RefCell<Option<Token>>>);

impl TokenCache {
    fn get(&self) -> Option<Token> {
        self.0.borrow().clone()
    }

    fn set(&self, token: Option<Token>) {
        *self.0.borrow_mut() = token;
    }
}

/// The tokens one runtime instance keeps, one per account (an account is its API config: the
/// environment's, each source's), at most [`TokenSlots::BOUND`] of them. The account used
/// longest ago is forgotten first: its next webhook logs in again.
#[derive(Debug, Default)]
pub struct TokenSlots(Vec<(EkaApiConfig, TokenCache)>);

impl TokenSlots {
    /// Accounts kept at once. An entry is the config's few short strings and one token (well
    /// under 4 KiB), so 1024 is at most a few MiB of a Worker isolate's 128 MiB, and covers
    /// every source of a deployment with up to 1023 active ones (each webhook of a source
    /// beyond it would log in again).
    pub const BOUND: usize = 1024;

    /// The token cache of `config`'s account, made (forgetting the least recently used
    /// account when full) if there is none; the account becomes the most recently used.
    pub fn for_account(&mut self, config: &EkaApiConfig) -> TokenCache {
        if let Some(at) = self.0.iter().position(|(cached, _)| cached == config) {
            let entry = self.0.remove(at);
            let tokens = entry.1.clone();
            self.0.push(entry);
            return tokens;
        }
        if self.0.len() >= Self::BOUND {
            self.0.remove(0);
        }
        let tokens = TokenCache::default();
        self.0.push((config.clone(), tokens.clone()));
        tokens
    }

    /// How many accounts are kept.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no account is kept.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The Eka API client. Generic over the transport and the clock.
pub struct EkaClient<H, C> {
    http: H,
    clock: C,
    config: EkaApiConfig,
    tokens: TokenCache,
    /// Held across a login, so this client's concurrent calls share one.
    login: Mutex<()>,
}

impl<H: HttpClient, C: Clock> EkaClient<H, C> {
    /// A client with no token yet (it logs in on first use).
    pub fn new(config: EkaApiConfig, http: H, clock: C) -> Self {
        Self::with_tokens(config, http, clock, TokenCache::default())
    }

    /// A client that shares `tokens` with other clients.
    pub fn with_tokens(config: EkaApiConfig, http: H, clock: C, tokens: TokenCache) -> Self {
        EkaClient {
            http,
            clock,
            config,
            tokens,
            login: Mutex::new(()),
        }
    }

    /// The settings.
    pub fn config(&self) -> &EkaApiConfig {
        &self.config
    }

    /// The transport.
    pub fn http(&self) -> &H {
        &self.http
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// A view whose calls hold at most `permits` open connections between them (Workers
    /// allow six per invocation). The token cache is shared with this client.
    pub fn limited<'a>(&'a self, permits: &'a Semaphore) -> Limited<'a, H, C> {
        Limited {
            client: self,
            transport: Permitted {
                inner: &self.http,
                permits,
            },
        }
    }

    /// Logs in now, whatever token is cached (the admin API's credential check): `Ok` when
    /// Eka gave a token; the error names the status, never a body or a secret.
    pub async fn check_login(&self) -> Result<(), ApiError> {
        self.login(&self.http)
            .await
            .map(|_| ())
            .map_err(|e| ApiError::Login(Box::new(e)))
    }

    async fn appointment_via<T: HttpClient>(
        &self,
        http: &T,
        id: &str,
        partner_id: bool,
    ) -> Result<Map<String, Value>, ApiError> {
        let query = if partner_id { "?partner_id=1" } else { "" };
        match self
            .resource(http, Resource::Appointment, id, query)
            .await?
        {
            Value::Object(map) => Ok(map),
            _ => Err(ApiError::InvalidResponse),
        }
    }

    async fn resource<T: HttpClient>(
        &self,
        http: &T,
        resource: Resource,
        id: &str,
        query: &str,
    ) -> Result<Value, ApiError> {
        if id.is_empty() || is_dot_segment(id) {
            return Err(ApiError::InvalidId);
        }
        let url = format!(
            "{}{}{}{}",
            self.config.base_url.trim_end_matches('/'),
            resource.path(),
            utf8_percent_encode(id, SEGMENT),
            query
        );
        let token = self.token(http, None).await?;
        let mut response = send_with_retry(http, self.get_request(&url, &token)).await?;
        if response.status == 401 {
            let fresh = self.token(http, Some(&token)).await?;
            response = send_with_retry(http, self.get_request(&url, &fresh)).await?;
        }
        if !(200..300).contains(&response.status) {
            return Err(ApiError::Status(response.status));
        }
        let body: Value =
            serde_json::from_slice(&response.body).map_err(|_| ApiError::InvalidResponse)?;
        Ok(resource.unwrap(body))
    }

    fn get_request(&self, url: &str, token: &str) -> HttpRequest {
        HttpRequest {
            method: Method::Get,
            url: url.to_owned(),
            headers: vec![
                ("Authorization".into(), format!("Bearer {token}")),
                ("client-id".into(), self.config.client_id.clone()),
                ("Accept".into(), "application/json".into()),
            ],
            body: None,
            timeout_ms: self.config.timeout_ms,
            max_response_bytes: None,
        }
    }

    /// A valid access token. `stale` is a token the server refused: if the cache still holds
    /// it, log in again; if someone already replaced it, use theirs. This client's lock is held
    /// across the login, so its concurrent callers share one.
    async fn token<T: HttpClient>(
        &self,
        http: &T,
        stale: Option<&str>,
    ) -> Result<String, ApiError> {
        let _login = self.login.lock().await;
        if let Some(token) = self.tokens.get() {
            let refused = stale == Some(token.access_token.as_str());
            if !refused && self.clock.now_ms() < token.renew_at_ms {
                return Ok(token.access_token);
            }
        }
        self.tokens.set(None);
        let token = self
            .login(http)
            .await
            .map_err(|e| ApiError::Login(Box::new(e)))?;
        let access = token.access_token.clone();
        self.tokens.set(Some(token));
        Ok(access)
    }

    async fn login<T: HttpClient>(&self, http: &T) -> Result<Token, ApiError> {
        let mut body = json!({
            "client_id": self.config.client_id,
            "client_secret": self.config.client_secret,
        });
        if let (Some(key), Some(map)) = (&self.config.api_key, body.as_object_mut()) {
            map.insert("api_key".into(), Value::String(key.clone()));
        }
        let request = HttpRequest {
            method: Method::Post,
            url: format!(
                "{}{}",
                self.config.base_url.trim_end_matches('/'),
                LOGIN_PATH
            ),
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("client-id".into(), self.config.client_id.clone()),
            ],
            body: Some(json_text(&body).into_bytes()),
            timeout_ms: self.config.timeout_ms,
            max_response_bytes: None,
        };
        let response = send_with_retry(http, request).await?;
        if !(200..300).contains(&response.status) {
            return Err(ApiError::Status(response.status));
        }
        let body: Value =
            serde_json::from_slice(&response.body).map_err(|_| ApiError::InvalidResponse)?;
        let access_token = body
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::InvalidResponse)?
            .to_owned();
        let lifetime = body
            .get("expires_in")
            .and_then(Value::as_f64)
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or(DEFAULT_TOKEN_LIFETIME_SECS, |s| s as u64);
        Ok(Token {
            access_token,
            renew_at_ms: self
                .clock
                .now_ms()
                .saturating_add(usable_lifetime_ms(lifetime)),
        })
    }
}

/// One retry on a 5xx or a transport failure.
async fn send_with_retry<T: HttpClient>(
    http: &T,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    match http.send(request.clone()).await {
        Ok(response) if response.status < 500 => Ok(response),
        _ => match http.send(request).await {
            Ok(response) => Ok(response),
            Err(e) => Err(ApiError::Transport(e)),
        },
    }
}

/// The calls enrichment needs. Implemented by the client and by its limited view.
#[allow(async_fn_in_trait)]
pub trait EkaApi {
    /// `GET /dr/v1/appointment/{id}`; `partner_id` sets `?partner_id=1` (the id is then the
    /// partner's appointment id). Must be a JSON object.
    async fn appointment(&self, id: &str, partner_id: bool)
        -> Result<Map<String, Value>, ApiError>;
    /// Any resource by id, unwrapped.
    async fn get(&self, resource: Resource, id: &str) -> Result<Value, ApiError>;
}

impl<H: HttpClient, C: Clock> EkaApi for EkaClient<H, C> {
    async fn appointment(
        &self,
        id: &str,
        partner_id: bool,
    ) -> Result<Map<String, Value>, ApiError> {
        self.appointment_via(&self.http, id, partner_id).await
    }
    async fn get(&self, resource: Resource, id: &str) -> Result<Value, ApiError> {
        self.resource(&self.http, resource, id, "").await
    }
}

/// A client whose calls share a pool of connection permits. See [`EkaClient::limited`].
pub struct Limited<'a, H, C> {
    client: &'a EkaClient<H, C>,
    transport: Permitted<'a, H>,
}

impl<H: HttpClient, C: Clock> EkaApi for Limited<'_, H, C> {
    async fn appointment(
        &self,
        id: &str,
        partner_id: bool,
    ) -> Result<Map<String, Value>, ApiError> {
        self.client
            .appointment_via(&self.transport, id, partner_id)
            .await
    }
    async fn get(&self, resource: Resource, id: &str) -> Result<Value, ApiError> {
        self.client
            .resource(&self.transport, resource, id, "")
            .await
    }
}

/// A transport that holds a permit for the duration of each request.
struct Permitted<'a, H> {
    inner: &'a H,
    permits: &'a Semaphore,
}

impl<H: HttpClient> HttpClient for Permitted<'_, H> {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let _permit = self.permits.acquire().await;
        self.inner.send(request).await
    }
}

/// How long a token is used: `expires_in` less the 30 s margin, or half of it for tokens
/// shorter than twice the margin.
fn usable_lifetime_ms(expires_in_secs: u64) -> i64 {
    let secs = if expires_in_secs > 2 * TOKEN_REFRESH_MARGIN_SECS {
        expires_in_secs - TOKEN_REFRESH_MARGIN_SECS
    } else {
        expires_in_secs / 2
    };
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}
