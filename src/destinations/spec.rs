//! A destination's spec: its URL, events, format, description and whether it is enabled, as
//! the admin API sends it, checked.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{DestinationError, ALL_EVENTS, FIELDS, MAX_DESCRIPTION_CHARS, MAX_URL_LEN};
use crate::event_log::new_event_id;
use crate::support::json_body::{self, echo, present, BodyError};

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
    /// The sources it subscribes to (issue 21): `["*"]` (every source, the default) or ids.
    #[serde(default = "every_source")]
    pub sources: Vec<String>,
}

/// `["*"]`: every source.
pub fn every_source() -> Vec<String> {
    vec![ALL_EVENTS.to_owned()]
}

/// The `sources` of a body: absent → every source; `["*"]`; or source ids, without duplicates.
fn parse_sources(value: Option<&Value>) -> Result<Vec<String>, DestinationError> {
    let Some(value) = value else {
        return Ok(every_source());
    };
    let items = value
        .as_array()
        .ok_or_else(|| wrong_type("sources", "a list of strings"))?;
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let id = item
            .as_str()
            .map(str::trim)
            .ok_or_else(|| wrong_type("sources", "a list of strings"))?;
        if id != ALL_EVENTS && !crate::sources::is_source_id(id) {
            return Err(DestinationError::Sources);
        }
        if !ids.iter().any(|i| i == id) {
            ids.push(id.to_owned());
        }
    }
    let wildcard = ids.iter().any(|i| i == ALL_EVENTS);
    if ids.is_empty() || (wildcard && ids.len() > 1) {
        return Err(DestinationError::Sources);
    }
    Ok(ids)
}

impl DestinationSpec {
    /// Parses and validates a JSON body (`POST` to create, `PUT` to replace — a full replace,
    /// see the module documentation).
    pub fn parse(json: &[u8], rules: SpecRules<'_>) -> Result<DestinationSpec, DestinationError> {
        let value = json_body::parse(json)?;
        DestinationSpec::from_value(&value, rules)
    }

    /// As [`DestinationSpec::parse`], from parsed JSON.
    pub fn from_value(
        value: &Value,
        rules: SpecRules<'_>,
    ) -> Result<DestinationSpec, DestinationError> {
        let object = json_body::object(value, &FIELDS)?;
        let url = match present(object, "url") {
            None => return Err(BodyError::Missing("url").into()),
            Some(Value::String(url)) => url,
            Some(_) => return Err(wrong_type("url", "a string")),
        };
        check_url(url, rules.allow_http)?;
        let events = match present(object, "events") {
            None => return Err(BodyError::Missing("events").into()),
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
        let sources = parse_sources(present(object, "sources"))?;
        Ok(DestinationSpec {
            url: url.clone(),
            events,
            enabled,
            format,
            description,
            sources,
        })
    }

    /// Whether the destination subscribes to `event_type` (`"*"` matches every event).
    pub fn matches(&self, event_type: &str) -> bool {
        self.events
            .iter()
            .any(|e| e == ALL_EVENTS || e == event_type)
    }

    /// Whether the destination subscribes to events of `source` (`"*"` matches every one;
    /// `default` is the environment's account).
    pub fn subscribes_to(&self, source: &str) -> bool {
        self.sources.iter().any(|s| s == ALL_EVENTS || s == source)
    }

    /// The spec as the admin API shows it (no secret is part of it).
    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "url": self.url,
            "events": self.events,
            "enabled": self.enabled,
            "format": self.format,
            "description": self.description,
            "sources": self.sources,
        })
    }
}

/// A field's value, `null` counting as absent.
fn wrong_type(field: &'static str, expected: &'static str) -> DestinationError {
    BodyError::WrongType { field, expected }.into()
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
