//! Destinations (issue 11): URLs that accepted events are delivered to, each with its own
//! event filter, signing format and secret. Pure rules only — the Worker adapter keeps the
//! rows, the queue and the admin routes; the clock and randomness are parameters.
//!
//! # What an adapter does with this module
//!
//! - **Create / replace** (`POST`, `PUT`): [`DestinationSpec::parse`] with the allowed events
//!   and `ALLOW_HTTP_DESTINATIONS`. `PUT` is a **full replace** of the editable fields: an
//!   omitted optional field takes its default again (`enabled: true`, `format: "eka"`, no
//!   description). Unknown fields are refused, so a typo (or a `secret`) is never silently
//!   dropped. The secret is not part of the spec: [`generate_secret`] makes one at creation,
//!   [`Secrets::rotate`] replaces it.
//! - **Fan-out**: for each destination, [`intake`] says whether an event is sent, held (the
//!   destination is paused) or skipped (disabled, or not subscribed).
//! - **Send**: [`delivery_request`] builds the signed POST (or [`sign_headers`] for the
//!   signature headers alone) with [`Secrets::signing`]; the HTTP client must not follow
//!   redirects (a 3xx is a failure, as the Standard Webhooks specification recommends).
//! - **Record and decide**: [`Outcome::from_http`] reads the answer, [`AttemptRecord::new`]
//!   is the row for the attempt log, [`settle`] gives the destination's new
//!   [`DestinationHealth`] and the message's [`Next`] step.
//!
//! # Signing formats
//!
//! Every secret is a Standard Webhooks secret, `whsec_<base64 of 24 random bytes>`.
//!
//! - [`Format::Eka`]: `Eka-Webhook-Signature: t=<secs>,v1=<hex>[,v1=<hex>]`, the scheme of
//!   [`crate::signing::signature`], HMAC-SHA256 over `<t>.<body>`. **The HMAC key is the secret
//!   string's UTF-8 bytes, `whsec_` included**: Eka's SDKs (and this project's npm package and
//!   Worker) key the HMAC with the signing key as text, so the receiver configures the whole
//!   `whsec_…` string as its signing key, unchanged.
//! - [`Format::Standard`]: `webhook-id`, `webhook-timestamp` and `webhook-signature: v1,<base64>
//!   [v1,<base64>]` (standardwebhooks.com, see [`crate::signing::standard_webhooks`]), HMAC-SHA256 over
//!   `<id>.<t>.<body>` keyed by the base64-decoded bytes after `whsec_`. Any Standard
//!   Webhooks library verifies it with the secret as given.
//!
//! During a rotation both the new and the previous secret sign (new first) for
//! [`ROTATION_OVERLAP_MS`]. Receivers using this project's package or any Standard Webhooks
//! library accept either. Eka's own SDK reads only the **last** `v1`, i.e. the previous
//! secret's, until the overlap ends: such receivers keep working through the rotation and
//! must switch keys when the overlap ends (or verify with this package, which takes several
//! keys).

pub mod store;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::event_log::new_event_id;
use crate::signing::signature::{self, MacProvider};
use crate::signing::standard_webhooks;
use crate::support::http::{is_redirect, HttpError, HttpRequest, HttpResponse, Method};
use crate::support::retry::{clamp_retry_after, jitter, DELIVERY_SCHEDULE_MS};
use crate::webhook::pipeline::header;

/// The wildcard subscription: every allowed event.
pub const ALL_EVENTS: &str = "*";
/// The longest accepted URL, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// The longest accepted description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// How long a rotated-out secret keeps signing beside the new one: 24 hours.
pub const ROTATION_OVERLAP_MS: i64 = 24 * 3_600_000;
/// How long a destination has to answer (the Standard Webhooks specification recommends 15
/// to 30 s; the forward uses 15 s too).
pub const DELIVERY_TIMEOUT_MS: u32 = 15_000;
/// Attempts per message before it is dead-lettered: the Svix schedule's length.
pub const MAX_ATTEMPTS: u32 = DELIVERY_SCHEDULE_MS.len() as u32;
/// A receiver's `Retry-After` never delays the next attempt beyond this: 10 hours, the
/// schedule's longest step.
pub const RETRY_AFTER_MAX_MS: u64 = 36_000_000;
/// Consecutive failed attempts that pause a destination (`DESTINATION_PAUSE_AFTER`, 5).
pub const DEFAULT_PAUSE_AFTER: u32 = 5;
/// How much of a destination's answer an [`AttemptRecord`] keeps: 2 KB.
pub const RESPONSE_BODY_LIMIT: usize = crate::support::http::KEPT_RESPONSE_BYTES;
/// The `paused_reason` a `410 Gone` sets.
pub const GONE_REASON: &str = "410 Gone from the destination";
/// The header carrying the message id (the event id) in both formats.
pub const IDEMPOTENCY_KEY_HEADER: &str = "Idempotency-Key";

const MSG_ID_MAX_LEN: usize = 256;
const ECHO_MAX_CHARS: usize = 64;
const FIELDS: [&str; 5] = ["url", "events", "enabled", "format", "description"];

// ---- errors ---------------------------------------------------------------------------------

/// Why a destination, a secret or a message id was refused. [`DestinationError::field`] names
/// the field; the text (`Display`) is `<field>: <why>` and never carries a URL, a secret or a
/// body (an unknown event or field name is echoed, at most 64 characters of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationError {
    /// The input is not JSON.
    InvalidJson,
    /// The input is JSON but not an object.
    NotAnObject,
    /// A field this API does not know (the name as sent).
    UnknownField(String),
    /// A required field is absent or null.
    Missing(&'static str),
    /// A field has the wrong JSON type.
    WrongType {
        /// The field.
        field: &'static str,
        /// What it must be (`a string`, `a boolean`, `a list of strings`).
        expected: &'static str,
    },
    /// `url` has spaces or control characters, or is longer than [`MAX_URL_LEN`].
    UrlMalformed,
    /// `url` is not `https://` (nor an allowed `http://` one).
    UrlNotHttps,
    /// `url` is `http://` to a local host, but `ALLOW_HTTP_DESTINATIONS` is off.
    UrlHttpNotAllowed,
    /// `url` is `http://` to a host other than `127.0.0.1` or `localhost`.
    UrlHttpNotLocal,
    /// `url` carries a user name or password.
    UrlUserinfo,
    /// `url` has no host, or one that is not an ASCII host name or IP literal.
    UrlHost,
    /// `url` has a port that is not 1 to 65535.
    UrlPort,
    /// `events` is empty.
    EventsEmpty,
    /// `"*"` is listed beside other events.
    WildcardNotAlone,
    /// An event outside the allowed list.
    UnknownEvent {
        /// The event as sent (at most 64 characters).
        event: String,
        /// The allowed events.
        allowed: Vec<String>,
    },
    /// `description` is longer than [`MAX_DESCRIPTION_CHARS`].
    DescriptionTooLong,
    /// `format` is neither `eka` nor `standard`.
    UnknownFormat,
    /// A secret is not `whsec_` followed by base64 (Standard format).
    BadSecret,
    /// Signing was asked for with no (non-empty) secret.
    NoSecret,
    /// A message id is empty, longer than 256 bytes, or has a character outside
    /// `A-Z a-z 0-9 _ - :` (the Standard Webhooks scheme forbids `.` in it).
    BadMessageId,
}

impl DestinationError {
    /// The field the problem is in (`""` for the whole input).
    pub fn field(&self) -> &'static str {
        match self {
            DestinationError::InvalidJson
            | DestinationError::NotAnObject
            | DestinationError::UnknownField(_) => "",
            DestinationError::Missing(field) | DestinationError::WrongType { field, .. } => field,
            DestinationError::UrlMalformed
            | DestinationError::UrlNotHttps
            | DestinationError::UrlHttpNotAllowed
            | DestinationError::UrlHttpNotLocal
            | DestinationError::UrlUserinfo
            | DestinationError::UrlHost
            | DestinationError::UrlPort => "url",
            DestinationError::EventsEmpty
            | DestinationError::WildcardNotAlone
            | DestinationError::UnknownEvent { .. } => "events",
            DestinationError::DescriptionTooLong => "description",
            DestinationError::UnknownFormat => "format",
            DestinationError::BadSecret | DestinationError::NoSecret => "secret",
            DestinationError::BadMessageId => "msg_id",
        }
    }
}

impl std::fmt::Display for DestinationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let field = self.field();
        match self {
            DestinationError::InvalidJson => f.write_str("the body is not valid JSON"),
            DestinationError::NotAnObject => f.write_str("the destination must be a JSON object"),
            DestinationError::UnknownField(name) => write!(
                f,
                "{}: unknown field (the fields are {})",
                echo(name),
                FIELDS.join(", ")
            ),
            DestinationError::Missing(_) => write!(f, "{field}: is required"),
            DestinationError::WrongType { expected, .. } => {
                write!(f, "{field}: must be {expected}")
            }
            DestinationError::UrlMalformed => write!(
                f,
                "{field}: must be at most {MAX_URL_LEN} bytes without spaces or control characters"
            ),
            DestinationError::UrlNotHttps => write!(f, "{field}: must be an https:// URL"),
            DestinationError::UrlHttpNotAllowed => write!(
                f,
                "{field}: must be an https:// URL (http://127.0.0.1 and http://localhost need ALLOW_HTTP_DESTINATIONS=true)"
            ),
            DestinationError::UrlHttpNotLocal => write!(
                f,
                "{field}: http:// is allowed only for 127.0.0.1 and localhost; use https://"
            ),
            DestinationError::UrlUserinfo => {
                write!(f, "{field}: must not contain a user name or password")
            }
            DestinationError::UrlHost => write!(
                f,
                "{field}: the host is missing or is not an ASCII host name or IP address"
            ),
            DestinationError::UrlPort => write!(f, "{field}: the port must be 1 to 65535"),
            DestinationError::EventsEmpty => write!(
                f,
                "{field}: must list at least one event, or \"{ALL_EVENTS}\" for all"
            ),
            DestinationError::WildcardNotAlone => {
                write!(f, "{field}: \"{ALL_EVENTS}\" must be the only entry")
            }
            DestinationError::UnknownEvent { event, allowed } => {
                let list = serde_json::to_string(allowed).map_err(|_| std::fmt::Error)?;
                write!(
                    f,
                    "{field}: '{}' is not an allowed event (allowed: {list}, or \"{ALL_EVENTS}\")",
                    echo(event)
                )
            }
            DestinationError::DescriptionTooLong => write!(
                f,
                "{field}: must be at most {MAX_DESCRIPTION_CHARS} characters"
            ),
            DestinationError::UnknownFormat => {
                write!(f, "{field}: must be \"eka\" or \"standard\"")
            }
            DestinationError::BadSecret => {
                write!(f, "{field}: must be whsec_ followed by base64")
            }
            DestinationError::NoSecret => write!(f, "{field}: none to sign with"),
            DestinationError::BadMessageId => write!(
                f,
                "{field}: must be 1 to {MSG_ID_MAX_LEN} characters of A-Z, a-z, 0-9, _, - and :"
            ),
        }
    }
}

impl std::error::Error for DestinationError {}

/// At most [`ECHO_MAX_CHARS`] characters of a name sent by the client.
fn echo(text: &str) -> String {
    text.chars().take(ECHO_MAX_CHARS).collect()
}

// ---- the spec -------------------------------------------------------------------------------

/// How deliveries to a destination are signed. Serialised as `"eka"` / `"standard"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `Eka-Webhook-Signature` (the default: what the forward sends, and what receivers built
    /// on Eka's SDK or this project's npm package verify).
    #[default]
    Eka,
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`.
    Standard,
}

impl Format {
    /// `eka` or `standard`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Eka => "eka",
            Format::Standard => "standard",
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Format {
    type Err = DestinationError;

    /// Exactly `eka` or `standard` (lowercase, as serialised).
    fn from_str(text: &str) -> Result<Format, DestinationError> {
        match text {
            "eka" => Ok(Format::Eka),
            "standard" => Ok(Format::Standard),
            _ => Err(DestinationError::UnknownFormat),
        }
    }
}

/// What [`DestinationSpec::parse`] checks against.
#[derive(Debug, Clone, Copy)]
pub struct SpecRules<'a> {
    /// The events a destination may subscribe to: the webhook's allowed list
    /// (`Settings::webhook.allowed_events`); others would never be delivered.
    pub allowed_events: &'a [String],
    /// `ALLOW_HTTP_DESTINATIONS=true`: also accept `http://127.0.0.1[:port]` and
    /// `http://localhost[:port]` (development and tests). Never any other `http://` host.
    pub allow_http: bool,
}

/// The editable part of a destination, validated. JSON in and out:
/// `{"url", "events": [...] | ["*"], "enabled", "format", "description"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationSpec {
    /// Where deliveries are POSTed: `https://`, or `http://` to 127.0.0.1 / localhost when
    /// allowed. Kept exactly as given.
    pub url: String,
    /// Subscribed event types, without duplicates, in the order given; `["*"]` for all.
    pub events: Vec<String>,
    /// Whether the owner wants deliveries (default true). An automatic pause is separate: it
    /// is [`DestinationHealth::paused_reason`].
    pub enabled: bool,
    /// How deliveries are signed (default [`Format::Eka`]).
    pub format: Format,
    /// Free text for the owner, at most [`MAX_DESCRIPTION_CHARS`] characters.
    pub description: Option<String>,
}

impl DestinationSpec {
    /// Parses and validates a JSON body (`POST` to create, `PUT` to replace — a full replace,
    /// see the module documentation).
    pub fn parse(json: &[u8], rules: SpecRules<'_>) -> Result<DestinationSpec, DestinationError> {
        let value: Value =
            serde_json::from_slice(json).map_err(|_| DestinationError::InvalidJson)?;
        DestinationSpec::from_value(&value, rules)
    }

    /// As [`DestinationSpec::parse`], from parsed JSON.
    pub fn from_value(
        value: &Value,
        rules: SpecRules<'_>,
    ) -> Result<DestinationSpec, DestinationError> {
        let object = value.as_object().ok_or(DestinationError::NotAnObject)?;
        if let Some(name) = object.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(DestinationError::UnknownField(name.clone()));
        }
        let url = match present(object, "url") {
            None => return Err(DestinationError::Missing("url")),
            Some(Value::String(url)) => url,
            Some(_) => return Err(wrong_type("url", "a string")),
        };
        check_url(url, rules.allow_http)?;
        let events = match present(object, "events") {
            None => return Err(DestinationError::Missing("events")),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| item.as_str().map(str::trim))
                .collect::<Option<Vec<&str>>>()
                .ok_or_else(|| wrong_type("events", "a list of strings"))?,
            Some(_) => return Err(wrong_type("events", "a list of strings")),
        };
        let events = check_events(&events, rules.allowed_events)?;
        let enabled = match present(object, "enabled") {
            None => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(wrong_type("enabled", "a boolean")),
        };
        let format = match present(object, "format") {
            None => Format::default(),
            Some(Value::String(text)) => text.parse()?,
            Some(_) => return Err(wrong_type("format", "a string")),
        };
        let description = match present(object, "description") {
            None => None,
            Some(Value::String(text)) if text.chars().count() > MAX_DESCRIPTION_CHARS => {
                return Err(DestinationError::DescriptionTooLong)
            }
            Some(Value::String(text)) => Some(text.clone()).filter(|t| !t.trim().is_empty()),
            Some(_) => return Err(wrong_type("description", "a string")),
        };
        Ok(DestinationSpec {
            url: url.clone(),
            events,
            enabled,
            format,
            description,
        })
    }

    /// Whether the destination subscribes to `event_type` (`"*"` matches every event).
    pub fn matches(&self, event_type: &str) -> bool {
        self.events
            .iter()
            .any(|e| e == ALL_EVENTS || e == event_type)
    }

    /// The spec as the admin API shows it (no secret is part of it).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "url": self.url,
            "events": self.events,
            "enabled": self.enabled,
            "format": self.format,
            "description": self.description,
        })
    }
}

/// A field's value, `null` counting as absent.
fn present<'a>(object: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    object.get(field).filter(|v| !v.is_null())
}

fn wrong_type(field: &'static str, expected: &'static str) -> DestinationError {
    DestinationError::WrongType { field, expected }
}

/// The URL rules of [`DestinationSpec`]: `https://<host>[:port][/path][?query]`, or with
/// `allow_http` `http://127.0.0.1` / `http://localhost` (any case) with an optional port.
pub fn check_url(url: &str, allow_http: bool) -> Result<(), DestinationError> {
    if url.len() > MAX_URL_LEN || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DestinationError::UrlMalformed);
    }
    let (is_https, rest) = match url.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("https") => (true, rest),
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => (false, rest),
        _ => return Err(DestinationError::UrlNotHttps),
    };
    // The authority ends at the path, query or fragment; a backslash is refused below (WHATWG
    // parsers read it as `/`, which would move what follows out of the authority).
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err(DestinationError::UrlUserinfo);
    }
    let (host, port) = split_host_port(authority)?;
    if !valid_host(host) {
        return Err(DestinationError::UrlHost);
    }
    if let Some(port) = port {
        match port.parse::<u16>() {
            Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => {}
            _ => return Err(DestinationError::UrlPort),
        }
    }
    if is_https {
        return Ok(());
    }
    let local = host == "127.0.0.1" || host.eq_ignore_ascii_case("localhost");
    match (local, allow_http) {
        (true, true) => Ok(()),
        (true, false) => Err(DestinationError::UrlHttpNotAllowed),
        (false, _) => Err(DestinationError::UrlHttpNotLocal),
    }
}

/// `host[:port]` or `[v6][:port]`.
fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), DestinationError> {
    if let Some(v6) = authority.strip_prefix('[') {
        let (inside, after) = v6.split_once(']').ok_or(DestinationError::UrlHost)?;
        let host = &authority[..inside.len() + 2];
        return match after {
            "" => Ok((host, None)),
            _ => match after.strip_prefix(':') {
                Some(port) => Ok((host, Some(port))),
                None => Err(DestinationError::UrlHost),
            },
        };
    }
    Ok(match authority.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

/// An ASCII host name (letters, digits, `-`, `.`, `_`; labels not empty except a final dot)
/// or a bracketed IPv6 literal of hex digits, `:` and `.`.
fn valid_host(host: &str) -> bool {
    if let Some(inside) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return !inside.is_empty()
            && inside
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Events: at least one; `"*"` alone or names from `allowed`; duplicates dropped.
fn check_events(events: &[&str], allowed: &[String]) -> Result<Vec<String>, DestinationError> {
    if events.is_empty() || events.iter().all(|e| e.is_empty()) {
        return Err(DestinationError::EventsEmpty);
    }
    if events.contains(&ALL_EVENTS) {
        return if events.iter().all(|e| *e == ALL_EVENTS) {
            Ok(vec![ALL_EVENTS.to_owned()])
        } else {
            Err(DestinationError::WildcardNotAlone)
        };
    }
    let mut out: Vec<String> = Vec::with_capacity(events.len());
    for event in events {
        if !allowed.iter().any(|a| a == event) {
            return Err(DestinationError::UnknownEvent {
                event: echo(event),
                allowed: allowed.to_vec(),
            });
        }
        if !out.iter().any(|e| e == event) {
            out.push((*event).to_owned());
        }
    }
    Ok(out)
}

/// A destination id: `dst_` + 26 Crockford base32 characters (time-sortable, as event ids;
/// `random` from [`crate::support::entropy::random_bytes`]).
pub fn new_destination_id(now_ms: i64, random: [u8; 10]) -> String {
    let event_id = new_event_id(now_ms, random);
    format!("dst_{}", event_id.trim_start_matches("evt_"))
}

// ---- secrets --------------------------------------------------------------------------------

/// A new secret, `whsec_<base64 of random>` (the Standard Webhooks convention: the key bytes
/// are the base64 after the prefix). `random`: 24 bytes from
/// [`crate::support::entropy::random_bytes`], the size Svix uses and the specification's minimum.
pub fn generate_secret(random: &[u8; 24]) -> String {
    standard_webhooks::generate_secret(random)
}

/// The HMAC key a secret signs with in `format`: for [`Format::Eka`] the secret string's UTF-8
/// bytes (`whsec_` included; it must not be empty), for [`Format::Standard`] the base64-decoded
/// bytes after `whsec_`.
pub fn signing_key(format: Format, secret: &str) -> Result<Vec<u8>, DestinationError> {
    match format {
        Format::Eka if secret.is_empty() => Err(DestinationError::NoSecret),
        Format::Eka => Ok(secret.as_bytes().to_vec()),
        Format::Standard => {
            standard_webhooks::secret_key(secret).map_err(|_| DestinationError::BadSecret)
        }
    }
}

/// A destination's secrets: the current one and, for [`ROTATION_OVERLAP_MS`] after a
/// rotation, the previous one. `Debug` shows neither.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    /// The secret deliveries are signed with.
    pub current: String,
    /// The rotated-out secret, still signing until `previous_until_ms`.
    pub previous: Option<String>,
    /// When the previous secret stops signing, epoch ms.
    pub previous_until_ms: Option<i64>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("current", &"<redacted>")
            .field("previous", &self.previous.as_ref().map(|_| "<redacted>"))
            .field("previous_until_ms", &self.previous_until_ms)
            .finish()
    }
}

impl Secrets {
    /// One secret, nothing rotated out.
    pub fn new(current: String) -> Secrets {
        Secrets {
            current,
            previous: None,
            previous_until_ms: None,
        }
    }

    /// `new_secret` becomes current; the current one signs beside it until
    /// `now_ms + ROTATION_OVERLAP_MS`. A secret rotated out earlier is dropped at once.
    pub fn rotate(self, new_secret: String, now_ms: i64) -> Secrets {
        Secrets {
            previous: Some(self.current),
            previous_until_ms: Some(now_ms.saturating_add(ROTATION_OVERLAP_MS)),
            current: new_secret,
        }
    }

    /// The secrets that sign at `now_ms`, current first (see the module documentation for
    /// why the previous one comes last).
    pub fn signing(&self, now_ms: i64) -> Vec<&str> {
        let mut out = vec![self.current.as_str()];
        if let (Some(previous), Some(until)) = (&self.previous, self.previous_until_ms) {
            if now_ms < until {
                out.push(previous);
            }
        }
        out
    }
}

// ---- signing --------------------------------------------------------------------------------

/// The signature headers of a delivery, signed with each of `secrets` in order (empty ones
/// skipped; none left is [`DestinationError::NoSecret`]). Only the signature scheme's
/// headers: [`delivery_request`] adds `Content-Type` and `Idempotency-Key`.
///
/// - [`Format::Eka`]: `[("Eka-Webhook-Signature", "t=<ts>,v1=<hex>[,v1=<hex>]")]`, keyed by
///   each secret's UTF-8 bytes; `msg_id` is not part of it (and not checked).
/// - [`Format::Standard`]: `[("webhook-id", msg_id), ("webhook-timestamp", ts),
///   ("webhook-signature", "v1,<b64>[ v1,<b64>]")]`; `msg_id` must pass
///   [`check_message_id`] and every secret must be `whsec_` base64.
pub fn sign_headers(
    format: Format,
    msg_id: &str,
    timestamp_secs: i64,
    body: &[u8],
    secrets: &[&str],
    mac: &impl MacProvider,
) -> Result<Vec<(String, String)>, DestinationError> {
    let secrets: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    if secrets.is_empty() {
        return Err(DestinationError::NoSecret);
    }
    match format {
        Format::Eka => {
            let keys: Vec<&[u8]> = secrets.iter().map(|s| s.as_bytes()).collect();
            let value = signature::sign_with_keys(body, &keys, timestamp_secs, mac);
            Ok(vec![(signature::SIGNATURE_HEADER.to_owned(), value)])
        }
        Format::Standard => {
            check_message_id(msg_id)?;
            standard_webhooks::headers(&secrets, msg_id, timestamp_secs, body, mac)
                .map_err(|_| DestinationError::BadSecret)
        }
    }
}

/// A message id usable in both formats and in a header: 1 to 256 bytes of `A-Z a-z 0-9 _ -
/// :` (event ids, `evt_…`, qualify). The Standard Webhooks scheme signs `<id>.<t>.<body>`, so
/// `.` is refused.
pub fn check_message_id(msg_id: &str) -> Result<(), DestinationError> {
    let ok = !msg_id.is_empty()
        && msg_id.len() <= MSG_ID_MAX_LEN
        && msg_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':'));
    if ok {
        Ok(())
    } else {
        Err(DestinationError::BadMessageId)
    }
}

/// The whole delivery: a JSON `POST` of `body` to `spec.url`, with `Content-Type:
/// application/json`, `Idempotency-Key: <msg_id>` (both formats; the message id is the event
/// id, the same on every attempt, so the receiver can drop a copy) and [`sign_headers`] at
/// `now_ms` (a fresh timestamp per attempt, as the specification asks). `msg_id` must pass
/// [`check_message_id`] in both formats here.
pub fn delivery_request(
    spec: &DestinationSpec,
    msg_id: &str,
    now_ms: i64,
    body: Vec<u8>,
    secrets: &[&str],
    mac: &impl MacProvider,
) -> Result<HttpRequest, DestinationError> {
    check_message_id(msg_id)?;
    let signed = sign_headers(
        spec.format,
        msg_id,
        now_ms.div_euclid(1000),
        &body,
        secrets,
        mac,
    )?;
    let mut headers = vec![
        ("Content-Type".to_owned(), "application/json".to_owned()),
        (IDEMPOTENCY_KEY_HEADER.to_owned(), msg_id.to_owned()),
    ];
    headers.extend(signed);
    Ok(HttpRequest {
        method: Method::Post,
        url: spec.url.clone(),
        headers,
        body: Some(body),
        timeout_ms: DELIVERY_TIMEOUT_MS,
        max_response_bytes: Some(RESPONSE_BODY_LIMIT),
    })
}

// ---- outcomes, health, next step ------------------------------------------------------------

/// How one delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The destination answered (2xx is a success; anything else, 3xx included, a failure).
    Answered {
        /// The status.
        status: u16,
        /// Its `Retry-After`, in seconds from now, when it sent a readable one.
        retry_after_secs: Option<u64>,
    },
    /// No answer within [`DELIVERY_TIMEOUT_MS`].
    TimedOut,
    /// No answer: connection refused, DNS, TLS, …
    Unreachable,
}

impl Outcome {
    /// Reads an HTTP result, with its `Retry-After` header read by [`parse_retry_after`].
    pub fn from_http(result: &Result<HttpResponse, HttpError>, now_ms: i64) -> Outcome {
        match result {
            Ok(response) => Outcome::Answered {
                status: response.status,
                retry_after_secs: header(&response.headers, "Retry-After")
                    .and_then(|v| parse_retry_after(v, now_ms)),
            },
            Err(HttpError::Timeout) => Outcome::TimedOut,
            Err(HttpError::Network(_)) => Outcome::Unreachable,
        }
    }

    /// A 2xx answer.
    pub fn is_success(&self) -> bool {
        matches!(self, Outcome::Answered { status, .. } if (200..300).contains(status))
    }

    /// The status, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            Outcome::Answered { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A stable code for a failure: `redirect` (a 3xx, never followed), `http_status`,
    /// `timeout` or `network`; none for a 2xx.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            _ if self.is_success() => None,
            Outcome::Answered { status, .. } if is_redirect(*status) => Some("redirect"),
            Outcome::Answered { .. } => Some("http_status"),
            Outcome::TimedOut => Some("timeout"),
            Outcome::Unreachable => Some("network"),
        }
    }
}

/// `Retry-After` as seconds from `now_ms`: delay-seconds, or an HTTP date (a past date is 0).
/// Anything else is `None`.
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<u64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for u64 is "a very long time": the clamp caps it anyway.
        return Some(value.parse::<u64>().unwrap_or(u64::MAX));
    }
    // An HTTP date (RFC 9110: IMF-fixdate, and the two obsolete forms) with `httpdate`, a
    // small parser (chrono's general one costs the Worker upload ~7 KB gzip).
    let at = httpdate::parse_http_date(value).ok()?;
    let at_ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())?;
    let delta_ms = at_ms.saturating_sub(now_ms).max(0);
    Some(u64::try_from(delta_ms).unwrap_or(0).div_ceil(1000))
}

/// A destination's delivery health, kept beside its spec. `Default` is a new destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationHealth {
    /// Failed attempts since the last success (any message).
    pub consecutive_failures: u32,
    /// The last successful attempt, epoch ms.
    pub last_success_ms: Option<i64>,
    /// The last failed attempt, epoch ms.
    pub last_failure_ms: Option<i64>,
    /// Why deliveries are paused, when they are: `"<n> consecutive failed attempts"` or
    /// [`GONE_REASON`]. Stable text, for the admin API.
    pub paused_reason: Option<String>,
    /// When the pause began, epoch ms.
    pub paused_at_ms: Option<i64>,
}

impl DestinationHealth {
    /// Deliveries are paused (held) until [`DestinationHealth::resume`].
    pub fn is_paused(&self) -> bool {
        self.paused_reason.is_some()
    }

    /// The owner resumes a paused destination: no pause, the failure count back to 0 (the
    /// times are kept). Held messages are then sent again by the adapter.
    pub fn resume(self) -> DestinationHealth {
        DestinationHealth {
            consecutive_failures: 0,
            paused_reason: None,
            paused_at_ms: None,
            ..self
        }
    }
}

/// The pause rule, after one attempt at `now_ms`:
/// - a success sets `last_success_ms` and the failure count to 0 (a pause already in place
///   stays: only the owner resumes);
/// - a failure sets `last_failure_ms` and counts; `410 Gone` pauses at once ([`GONE_REASON`]);
///   otherwise reaching `pause_after` consecutive failures pauses with `"<pause_after>
///   consecutive failed attempts"` (`pause_after` 0: never, except for a 410). A pause in
///   place keeps its first reason and time.
pub fn after_attempt(
    state: DestinationHealth,
    outcome: &Outcome,
    pause_after: u32,
    now_ms: i64,
) -> DestinationHealth {
    if outcome.is_success() {
        return DestinationHealth {
            consecutive_failures: 0,
            last_success_ms: Some(now_ms),
            ..state
        };
    }
    let mut next = DestinationHealth {
        consecutive_failures: state.consecutive_failures.saturating_add(1),
        last_failure_ms: Some(now_ms),
        ..state
    };
    if next.is_paused() {
        return next;
    }
    let reason = if outcome.status() == Some(410) {
        Some(GONE_REASON.to_owned())
    } else if pause_after > 0 && next.consecutive_failures >= pause_after {
        Some(format!("{pause_after} consecutive failed attempts"))
    } else {
        None
    };
    if reason.is_some() {
        next.paused_reason = reason;
        next.paused_at_ms = Some(now_ms);
    }
    next
}

/// What happens to a message after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// A 2xx: done.
    Delivered,
    /// Try again at this time, epoch ms.
    RetryAt(i64),
    /// The schedule is used up ([`MAX_ATTEMPTS`]): dead letter (replayable by hand).
    Failed,
    /// The destination is paused: keep the message, send it when the destination resumes.
    Held,
}

/// The message's next step after attempt `attempt` (1 = the first) ended with `outcome`;
/// `health`: the destination's health after that attempt ([`after_attempt`]). In order:
/// a 2xx is [`Next::Delivered`]; after [`MAX_ATTEMPTS`] attempts [`Next::Failed`]; a paused
/// destination [`Next::Held`]; otherwise [`Next::RetryAt`] the Svix schedule's next delay
/// (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) with ±20 % jitter from `random01` (uniform in
/// `[0, 1)`), or later when the destination's `Retry-After` asks for it (honoured up to
/// [`RETRY_AFTER_MAX_MS`]; it never brings an attempt forward).
pub fn next_step(
    attempt: u32,
    outcome: &Outcome,
    health: &DestinationHealth,
    now_ms: i64,
    random01: f64,
) -> Next {
    next_step_on(
        &DELIVERY_SCHEDULE_MS,
        attempt,
        outcome,
        health,
        now_ms,
        random01,
    )
}

/// [`next_step`] on another schedule (`schedule[n]`: the delay before attempt n + 1, 0-based;
/// its length is the number of attempts): `DELIVERY_RETRY_SCHEDULE_MS` shortens it for tests
/// and development.
pub fn next_step_on(
    schedule: &[u64],
    attempt: u32,
    outcome: &Outcome,
    health: &DestinationHealth,
    now_ms: i64,
    random01: f64,
) -> Next {
    if outcome.is_success() {
        return Next::Delivered;
    }
    // `schedule[n]` is the delay before attempt n + 1 (0-based n): after attempt `attempt`
    // (1-based) the next one is index `attempt`.
    let Some(scheduled) = usize::try_from(attempt.max(1))
        .ok()
        .and_then(|i| schedule.get(i))
        .map(|delay| jitter(*delay, random01))
    else {
        return Next::Failed;
    };
    if health.is_paused() {
        return Next::Held;
    }
    let asked = match outcome {
        Outcome::Answered {
            retry_after_secs: Some(secs),
            ..
        } => i64::try_from(clamp_retry_after(*secs, 0, RETRY_AFTER_MAX_MS)).unwrap_or(0),
        _ => 0,
    };
    Next::RetryAt(now_ms.saturating_add(scheduled.max(asked)))
}

/// [`after_attempt`] then [`next_step`]: the destination's new health and the message's fate.
pub fn settle(
    attempt: u32,
    outcome: &Outcome,
    health: DestinationHealth,
    pause_after: u32,
    now_ms: i64,
    random01: f64,
) -> (DestinationHealth, Next) {
    let health = after_attempt(health, outcome, pause_after, now_ms);
    let next = next_step(attempt, outcome, &health, now_ms, random01);
    (health, next)
}

/// What the fan-out does with a new event for one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    /// Disabled by its owner, or not subscribed to the event: no message.
    Skip,
    /// Queue a message, first attempt at once.
    Send,
    /// Keep a message, held until the destination resumes (nothing is lost while paused).
    Hold,
}

/// [`Intake`] for `event_type` at a destination with this spec and health.
pub fn intake(spec: &DestinationSpec, health: &DestinationHealth, event_type: &str) -> Intake {
    if !spec.enabled || !spec.matches(event_type) {
        Intake::Skip
    } else if health.is_paused() {
        Intake::Hold
    } else {
        Intake::Send
    }
}

// ---- the attempt log ------------------------------------------------------------------------

/// One row of the attempt log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The event (and message) id.
    pub event_id: String,
    /// The destination.
    pub destination_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The answer's status, when there was one.
    pub status: Option<u16>,
    /// From sending to the answer (or the failure), ms.
    pub duration_ms: u64,
    /// [`Outcome::error_code`]: `redirect`, `http_status`, `timeout`, `network`, or none for
    /// a 2xx.
    pub error: Option<String>,
    /// The first [`RESPONSE_BODY_LIMIT`] bytes of the answer ([`truncate_body`]); empty when
    /// there was none. A redirect's starts with the line `Location: <where it pointed>`.
    pub response_body: String,
    /// When the attempt began, epoch ms.
    pub at_ms: i64,
}

impl AttemptRecord {
    /// The record of an attempt that began at `at_ms` and took `duration_ms`.
    pub fn new(
        event_id: &str,
        destination_id: &str,
        attempt: u32,
        result: &Result<HttpResponse, HttpError>,
        duration_ms: u64,
        at_ms: i64,
    ) -> AttemptRecord {
        let outcome = Outcome::from_http(result, at_ms);
        AttemptRecord {
            event_id: event_id.to_owned(),
            destination_id: destination_id.to_owned(),
            attempt,
            status: outcome.status(),
            duration_ms,
            error: outcome.error_code().map(str::to_owned),
            response_body: match result {
                Ok(response) if response.is_redirect() => {
                    let location = response.location().unwrap_or_default();
                    let mut kept = format!("Location: {location}\n\n").into_bytes();
                    kept.extend_from_slice(&response.body);
                    truncate_body(&kept, RESPONSE_BODY_LIMIT)
                }
                Ok(response) => truncate_body(&response.body, RESPONSE_BODY_LIMIT),
                Err(_) => String::new(),
            },
            at_ms,
        }
    }
}

/// At most `max_bytes` of `body` as text: cut on a character boundary, invalid UTF-8 shown as
/// U+FFFD.
pub fn truncate_body(body: &[u8], max_bytes: usize) -> String {
    // A character that starts before `max_bytes` ends within 3 bytes after it, so this window
    // decodes every character that can be kept; one cut by the window starts at or after
    // `max_bytes` and falls outside the result.
    let window = &body[..body.len().min(max_bytes.saturating_add(3))];
    let text = String::from_utf8_lossy(window);
    let mut end = text.len().min(max_bytes);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_owned()
}
