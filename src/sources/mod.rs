//! Sources (issue 21): one Eka account each — its credentials, signing keys, allowed events,
//! business id, origin, reminder settings and duplicate window — so one deployment serves
//! many clinics. Pure rules only: the Worker keeps the rows (D1, [`store`]), caches them per
//! isolate and routes ([`routing`]); the clock and randomness are parameters.
//!
//! # What an adapter does with this module
//!
//! - **Create / replace** (`POST`, `PUT`): [`parse_source`] with [`SourceRules`] (the other
//!   sources' business ids, `ALLOW_HTTP_DESTINATIONS`) and, for `PUT`, the secrets the source
//!   has: a secret field omitted (or `null`) keeps that secret. Unknown fields are refused.
//! - **Keep**: [`store::seal_secrets`] seals every secret with `EVENT_ENCRYPTION_KEY` (the
//!   source id as associated data); the spec's columns hold no secret.
//! - **Show**: [`store::SourceRecord::to_json`] with the opened secrets shows, per secret, its
//!   last 4 characters (only when it is at least 12 long) and a fingerprint, never the secret.
//! - **Rotate**: [`SourceSecrets::add_key`] and [`SourceSecrets::remove_key`].
//! - **Route and run**: [`routing`].

pub mod routing;
pub mod store;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::destinations::{check_url, DestinationError};
use crate::event_log::{longest_claim_hold_ms, new_event_id};
use crate::reminders::parse_offsets;
use crate::support::json_body::{self, present, BodyError};

/// The source the environment variables define (read-only through the API).
pub const DEFAULT_SOURCE_ID: &str = "default";
/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// The longest secret, signing key or business id, in bytes.
pub const MAX_SECRET_LEN: usize = 512;
/// Signing keys a source holds at most (rotation needs two or three).
pub const MAX_KEYS: usize = 10;
/// The duplicate window's bounds, in hours (as `DEDUP_WINDOW_HOURS`).
pub const DEDUP_HOURS_MAX: i64 = 24 * 365;

/// The fields of the admin API's body, camelCase like the destinations API.
pub const FIELDS: [&str; 14] = [
    "name",
    "clientId",
    "clientSecret",
    "apiKey",
    "apiBaseUrl",
    "signingKeys",
    "allowedEvents",
    "businessId",
    "originUrl",
    "reminderCallbackUrl",
    "reminderSigningKey",
    "reminderOffsets",
    "dedupWindowHours",
    "enabled",
];

// ---- errors ---------------------------------------------------------------------------------

/// Why a source body, a key or a key removal was refused. [`SourceError::field`] names the
/// field; the text is `<field>: <why>` and never carries a secret or a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceError {
    /// The body is not a JSON object of known, well-typed fields, or a required one (a
    /// credential, the name, the keys) is absent (the checks every admin body shares).
    Body(BodyError),
    /// A value breaks its rule (`why` names the rule, never the value).
    Invalid {
        /// The field.
        field: &'static str,
        /// The rule.
        why: String,
    },
    /// A URL field breaks the destinations' URL rule.
    Url {
        /// The field.
        field: &'static str,
        /// The rule it breaks.
        error: DestinationError,
    },
    /// `businessId` belongs to another source already.
    DuplicateBusinessId,
    /// `signingKeys` is empty (a source without a key would accept forgeries).
    NoKeys,
    /// A rotation would hold more than [`MAX_KEYS`] keys.
    TooManyKeys,
    /// No signing key has this fingerprint.
    UnknownKey,
    /// The key to remove is the source's last one.
    LastKey,
}

impl SourceError {
    /// The field the problem is in (`""` for the whole body).
    pub fn field(&self) -> &'static str {
        match self {
            SourceError::Body(e) => e.field(),
            SourceError::Invalid { field, .. } | SourceError::Url { field, .. } => field,
            SourceError::DuplicateBusinessId => "businessId",
            SourceError::NoKeys
            | SourceError::TooManyKeys
            | SourceError::UnknownKey
            | SourceError::LastKey => "signingKeys",
        }
    }

    /// The HTTP status: 404 for an unknown key fingerprint, 400 for the rest.
    pub fn status(&self) -> u16 {
        match self {
            SourceError::UnknownKey => 404,
            _ => 400,
        }
    }
}

impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let field = self.field();
        match self {
            SourceError::Body(e) => e.describe(f, "source", &FIELDS),
            SourceError::Invalid { why, .. } => write!(f, "{field}: {why}"),
            SourceError::Url { error, .. } => {
                // The destinations' text says `url: …`; the field here has another name.
                let text = error.to_string();
                let why = text.strip_prefix("url: ").unwrap_or(&text);
                write!(f, "{field}: {why}")
            }
            SourceError::DuplicateBusinessId => {
                write!(f, "{field}: another source has this business id already")
            }
            SourceError::NoKeys => write!(f, "{field}: must list at least one key"),
            SourceError::TooManyKeys => write!(f, "{field}: at most {MAX_KEYS} keys"),
            SourceError::UnknownKey => write!(f, "{field}: no key has this fingerprint"),
            SourceError::LastKey => write!(
                f,
                "{field}: this is the source's last key; add the new one first (rotate-key)"
            ),
        }
    }
}

impl std::error::Error for SourceError {}

impl From<BodyError> for SourceError {
    fn from(e: BodyError) -> Self {
        SourceError::Body(e)
    }
}

fn missing(field: &'static str) -> SourceError {
    BodyError::Missing(field).into()
}

fn invalid(field: &'static str, why: impl Into<String>) -> SourceError {
    SourceError::Invalid {
        field,
        why: why.into(),
    }
}

// ---- the model ------------------------------------------------------------------------------

/// The part of a source kept in clear: no secret in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceSpec {
    /// For the operator, 1 to [`MAX_NAME_CHARS`] characters.
    pub name: String,
    /// Whether intake is open: a disabled source answers 503 with `Retry-After`.
    pub enabled: bool,
    /// The Eka API's base URL (the environment's when none), without a trailing `/`.
    pub api_base_url: Option<String>,
    /// The events accepted and enriched (the environment's when none).
    pub allowed_events: Option<Vec<String>>,
    /// The Eka business this account is; a body carrying it at the default path is routed
    /// here (and verified with this source's keys). Unique across sources.
    pub business_id: Option<String>,
    /// The gate: verified webhooks go on to this origin (the environment's when none).
    pub origin_url: Option<String>,
    /// Where this source's reminders are POSTed (the environment's when none).
    pub reminder_callback_url: Option<String>,
    /// Automatic reminders, `24h,2h` (the environment's when none).
    pub reminder_offsets: Option<String>,
    /// How long an exact copy is a duplicate, in hours (the environment's when none).
    pub dedup_window_hours: Option<i64>,
}

/// The secrets of a source: kept only sealed, never returned.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceSecrets {
    /// Eka Connect client id.
    pub client_id: String,
    /// Eka Connect client secret.
    pub client_secret: String,
    /// Sent in the login body when set.
    pub api_key: Option<String>,
    /// The webhook signing keys, newest first; every one verifies.
    pub signing_keys: Vec<String>,
    /// Signs this source's reminders (the environment's when none).
    pub reminder_signing_key: Option<String>,
}

impl std::fmt::Debug for SourceSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets themselves.
        write!(f, "SourceSecrets({} keys)", self.signing_keys.len())
    }
}

/// A secret's fingerprint: the first 6 bytes of its SHA-256, hex (what `DELETE
/// …/keys/{fingerprint}` names).
pub fn fingerprint(secret: &str) -> String {
    hex::encode(&Sha256::digest(secret.as_bytes())[..6])
}

/// How a secret is shown: its fingerprint, and its last 4 characters when it has at least 12
/// (a shorter one would be mostly given away).
pub fn hint(secret: &str) -> Value {
    let chars: Vec<char> = secret.chars().collect();
    let last4 = (chars.len() >= 12).then(|| chars[chars.len() - 4..].iter().collect::<String>());
    json!({ "fingerprint": fingerprint(secret), "last4": last4 })
}

impl SourceSecrets {
    /// As sealed: `{"clientId","clientSecret","apiKey","signingKeys","reminderSigningKey"}`.
    pub fn to_json(&self) -> Value {
        json!({
            "clientId": self.client_id,
            "clientSecret": self.client_secret,
            "apiKey": self.api_key,
            "signingKeys": self.signing_keys,
            "reminderSigningKey": self.reminder_signing_key,
        })
    }

    /// From [`SourceSecrets::to_json`]'s text.
    pub fn from_json(value: &Value) -> Option<SourceSecrets> {
        let text = |k: &str| value.get(k).and_then(Value::as_str).map(str::to_owned);
        Some(SourceSecrets {
            client_id: text("clientId")?,
            client_secret: text("clientSecret")?,
            api_key: text("apiKey"),
            signing_keys: value
                .get("signingKeys")?
                .as_array()?
                .iter()
                .map(|k| k.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>()?,
            reminder_signing_key: text("reminderSigningKey"),
        })
    }

    /// As the admin API shows them: hints only ([`hint`]).
    pub fn hints(&self) -> Value {
        json!({
            "clientId": hint(&self.client_id),
            "clientSecret": hint(&self.client_secret),
            "apiKey": self.api_key.as_deref().map(hint),
            "reminderSigningKey": self.reminder_signing_key.as_deref().map(hint),
            "signingKeys": self.signing_keys.iter().map(|k| hint(k)).collect::<Vec<_>>(),
        })
    }

    /// `POST …/rotate-key {"key"}`: the key goes first; the older ones keep verifying. A key
    /// the source has already is not added twice.
    pub fn add_key(&mut self, body: &[u8]) -> Result<(), SourceError> {
        let value = json_body::parse(body)?;
        let object = json_body::object(&value, &["key"])?;
        let key = match present(object, "key") {
            None => return Err(missing("key")),
            Some(Value::String(key)) => check_secret("key", key)?,
            Some(_) => return Err(wrong_type("key", "a string")),
        };
        if self.signing_keys.contains(&key) {
            return Ok(());
        }
        if self.signing_keys.len() >= MAX_KEYS {
            return Err(SourceError::TooManyKeys);
        }
        self.signing_keys.insert(0, key);
        Ok(())
    }

    /// `DELETE …/keys/{fingerprint}`: removes that key, never the last one.
    pub fn remove_key(&mut self, key_fingerprint: &str) -> Result<(), SourceError> {
        let at = self
            .signing_keys
            .iter()
            .position(|k| fingerprint(k) == key_fingerprint)
            .ok_or(SourceError::UnknownKey)?;
        if self.signing_keys.len() == 1 {
            return Err(SourceError::LastKey);
        }
        self.signing_keys.remove(at);
        Ok(())
    }
}

/// What [`parse_source`] checks against.
#[derive(Debug, Clone, Copy)]
pub struct SourceRules<'a> {
    /// The business ids of the other sources (a `PUT` leaves out its own).
    pub taken_business_ids: &'a [String],
    /// `ALLOW_HTTP_DESTINATIONS=true`: `http://127.0.0.1` and `http://localhost` URLs too.
    pub allow_http: bool,
    /// Whether the environment sets `REMINDER_CALLBACK_URL` (offsets need a callback).
    pub env_reminder_callback: bool,
    /// Whether the environment sets `REMINDER_SIGNING_KEY` (a callback needs a key).
    pub env_reminder_signing_key: bool,
    /// `EVENT_CLAIM_LEASE_SECONDS` in ms when the operator set it (a default lease grows with
    /// the source instead, [`routing::effective_settings`]).
    pub explicit_lease_ms: Option<i64>,
    /// `EKA_API_TIMEOUT_MS` (the enrichment budget of a claim's hold).
    pub api_timeout_ms: u32,
    /// `DEDUP_WINDOW_HOURS`: the objects keep claims that long, so a source's window is at
    /// most this.
    pub env_dedup_window_hours: i64,
}

/// Parses and validates a body (`POST` with `previous` none; `PUT` with the source's secrets,
/// a full replace of the spec where an omitted secret keeps its value).
pub fn parse_source(
    body: &[u8],
    rules: SourceRules<'_>,
    previous: Option<&SourceSecrets>,
) -> Result<(SourceSpec, SourceSecrets), SourceError> {
    let value = json_body::parse(body)?;
    let object = json_body::object(&value, &FIELDS)?;
    let name = string(object, "name")?.ok_or(missing("name"))?;
    let name = name.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid(
            "name",
            format!("must be 1 to {MAX_NAME_CHARS} characters"),
        ));
    }
    let url = |field: &'static str| -> Result<Option<String>, SourceError> {
        let Some(url) = string(object, field)?.filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        check_url(url, rules.allow_http).map_err(|error| SourceError::Url { field, error })?;
        Ok(Some(url.trim_end_matches('/').to_owned()))
    };
    let api_base_url = url("apiBaseUrl")?;
    let origin_url = url("originUrl")?;
    let reminder_callback_url = url("reminderCallbackUrl")?;
    let allowed_events = match present(object, "allowedEvents") {
        None => None,
        Some(Value::Array(items)) => {
            let mut events: Vec<String> = Vec::with_capacity(items.len());
            for item in items {
                let event = item
                    .as_str()
                    .map(str::trim)
                    .ok_or_else(|| wrong_type("allowedEvents", "a list of strings"))?;
                if event.is_empty() || event.len() > 100 || event.contains(',') {
                    return Err(invalid(
                        "allowedEvents",
                        "each event is 1 to 100 characters without commas",
                    ));
                }
                if !events.iter().any(|e| e == event) {
                    events.push(event.to_owned());
                }
            }
            if events.is_empty() {
                return Err(invalid(
                    "allowedEvents",
                    "must list at least one event (omit it for the environment's)",
                ));
            }
            Some(events)
        }
        Some(_) => return Err(wrong_type("allowedEvents", "a list of strings")),
    };
    let business_id = string(object, "businessId")?
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(str::to_owned);
    if let Some(b) = &business_id {
        if b.len() > MAX_SECRET_LEN {
            return Err(invalid(
                "businessId",
                format!("must be at most {MAX_SECRET_LEN} bytes"),
            ));
        }
        if rules.taken_business_ids.iter().any(|t| t == b) {
            return Err(SourceError::DuplicateBusinessId);
        }
    }
    let reminder_offsets = match present(object, "reminderOffsets") {
        None => None,
        Some(Value::String(text)) => Some(text.clone()),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(Value::as_str)
                .collect::<Option<Vec<&str>>>()
                .ok_or_else(|| wrong_type("reminderOffsets", "a list of strings"))?
                .join(","),
        ),
        Some(_) => return Err(wrong_type("reminderOffsets", "a list of strings")),
    };
    let reminder_offsets = match reminder_offsets {
        None => None,
        Some(text) => {
            let offsets = parse_offsets(&text).map_err(|why| invalid("reminderOffsets", why))?;
            if offsets.is_empty() {
                None
            } else {
                if reminder_callback_url.is_none() && !rules.env_reminder_callback {
                    return Err(invalid(
                        "reminderOffsets",
                        "need reminderCallbackUrl (or REMINDER_CALLBACK_URL)",
                    ));
                }
                let labels: Vec<&str> = offsets.iter().map(|o| o.label.as_str()).collect();
                Some(labels.join(","))
            }
        }
    };
    let window_max = rules.env_dedup_window_hours.clamp(1, DEDUP_HOURS_MAX);
    let dedup_window_hours = match present(object, "dedupWindowHours") {
        None => None,
        Some(v) => match v.as_i64() {
            // At most DEDUP_WINDOW_HOURS: the objects keep claims that long.
            Some(h) if (1..=window_max).contains(&h) => Some(h),
            _ => {
                return Err(invalid(
                    "dedupWindowHours",
                    format!("must be a whole number from 1 to {window_max} (DEDUP_WINDOW_HOURS)"),
                ))
            }
        },
    };
    let enabled = match present(object, "enabled") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(wrong_type("enabled", "a boolean")),
    };
    let secrets = parse_secrets(object, previous)?;
    // Unsigned, the receiver could not tell this source's reminders from a forgery.
    if reminder_callback_url.is_some()
        && secrets.reminder_signing_key.is_none()
        && !rules.env_reminder_signing_key
    {
        return Err(missing("reminderSigningKey"));
    }
    // The gate holds the claim through the origin call: an explicit lease must outlast it, or
    // a copy could take over a delivery still running (the environment's rule, per source).
    if let (Some(_), Some(lease_ms)) = (&origin_url, rules.explicit_lease_ms) {
        let longest = longest_claim_hold_ms(rules.api_timeout_ms, true);
        if lease_ms <= longest {
            return Err(invalid(
                "originUrl",
                format!(
                    "with an origin a webhook holds its claim up to {} s, not shorter than EVENT_CLAIM_LEASE_SECONDS ({} s): raise the lease or leave it unset",
                    longest / 1000,
                    lease_ms / 1000
                ),
            ));
        }
    }
    Ok((
        SourceSpec {
            name: name.to_owned(),
            enabled,
            api_base_url,
            allowed_events,
            business_id,
            origin_url,
            reminder_callback_url,
            reminder_offsets,
            dedup_window_hours,
        },
        secrets,
    ))
}

/// The secrets of a body: a required one must be there on create; on replace an omitted one
/// keeps `previous`'s, and an optional one set to `""` is removed.
fn parse_secrets(
    object: &Map<String, Value>,
    previous: Option<&SourceSecrets>,
) -> Result<SourceSecrets, SourceError> {
    let required = |field: &'static str, kept: Option<&String>| -> Result<String, SourceError> {
        match string(object, field)? {
            Some(text) if !text.trim().is_empty() => check_secret(field, text),
            Some(_) => Err(missing(field)),
            None => kept.cloned().ok_or(missing(field)),
        }
    };
    let optional = |field: &'static str,
                    kept: Option<&Option<String>>|
     -> Result<Option<String>, SourceError> {
        match string(object, field)? {
            Some(text) if text.trim().is_empty() => Ok(None),
            Some(text) => check_secret(field, text).map(Some),
            None => Ok(kept.cloned().flatten()),
        }
    };
    let client_id = required("clientId", previous.map(|p| &p.client_id))?;
    let client_secret = required("clientSecret", previous.map(|p| &p.client_secret))?;
    let api_key = optional("apiKey", previous.map(|p| &p.api_key))?;
    let signing_keys = match present(object, "signingKeys") {
        None => previous
            .map(|p| p.signing_keys.clone())
            .ok_or(missing("signingKeys"))?,
        Some(Value::Array(items)) => {
            let mut keys: Vec<String> = Vec::with_capacity(items.len());
            for item in items {
                let key = item
                    .as_str()
                    .ok_or_else(|| wrong_type("signingKeys", "a list of strings"))?;
                let key = check_secret("signingKeys", key)?;
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            if keys.is_empty() {
                return Err(SourceError::NoKeys);
            }
            if keys.len() > MAX_KEYS {
                return Err(SourceError::TooManyKeys);
            }
            keys
        }
        Some(_) => return Err(wrong_type("signingKeys", "a list of strings")),
    };
    Ok(SourceSecrets {
        client_id,
        client_secret,
        api_key,
        signing_keys,
        reminder_signing_key: optional(
            "reminderSigningKey",
            previous.map(|p| &p.reminder_signing_key),
        )?,
    })
}

/// A secret: trimmed, not empty, at most [`MAX_SECRET_LEN`] bytes, no control characters.
fn check_secret(field: &'static str, text: &str) -> Result<String, SourceError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(missing(field));
    }
    if text.len() > MAX_SECRET_LEN || text.chars().any(char::is_control) {
        return Err(invalid(
            field,
            format!("must be at most {MAX_SECRET_LEN} bytes without control characters"),
        ));
    }
    Ok(text.to_owned())
}

fn string<'a>(
    object: &'a Map<String, Value>,
    field: &'static str,
) -> Result<Option<&'a str>, SourceError> {
    match present(object, field) {
        None => Ok(None),
        Some(Value::String(text)) => Ok(Some(text)),
        Some(_) => Err(wrong_type(field, "a string")),
    }
}

fn wrong_type(field: &'static str, expected: &'static str) -> SourceError {
    BodyError::WrongType { field, expected }.into()
}

/// A source id: `src_` + 26 Crockford base32 characters (time-sortable, as event ids).
pub fn new_source_id(now_ms: i64, random: [u8; 10]) -> String {
    let event_id = new_event_id(now_ms, random);
    format!("src_{}", event_id.trim_start_matches("evt_"))
}

/// Whether `id` names a source: `default`, or an id [`new_source_id`] makes.
pub fn is_source_id(id: &str) -> bool {
    id == DEFAULT_SOURCE_ID || crate::destinations::store::is_id(id, "src")
}

/// The `default` source is the account of the environment variables: the admin API may read it,
/// never change it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DefaultReadOnly;

impl std::fmt::Display for DefaultReadOnly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "The default source is the account of the environment variables (EKA_CLIENT_ID, EKA_SIGNING_KEY, …): read-only through the API",
        )
    }
}

/// Whether the admin API may change source `id` (replace, delete, toggle, its keys): every
/// source but `default`.
pub fn check_editable(id: &str) -> Result<(), DefaultReadOnly> {
    if id == DEFAULT_SOURCE_ID {
        Err(DefaultReadOnly)
    } else {
        Ok(())
    }
}

/// The webhook path of a source, the URL to register in its Eka account.
pub fn webhook_path(id: &str) -> String {
    format!("{}{id}", routing::HOOKS_PREFIX)
}

#[cfg(test)]
mod tests;
