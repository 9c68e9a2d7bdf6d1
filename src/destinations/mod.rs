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
//! - **Record and decide**: [`SendOutcome::from_http`] reads the answer, [`AttemptRecord::new`]
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

pub mod sealed_secrets;
pub mod store;
pub mod wake;

mod attempt;
mod error;
mod message;
mod outcome;
mod secrets;
mod signing;
mod spec;

pub use attempt::*;
pub use error::*;
pub use message::*;
pub use outcome::*;
pub use secrets::*;
pub use signing::*;
pub use spec::*;

use crate::support::retry::DELIVERY_SCHEDULE_MS;

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
const FIELDS: [&str; 6] = [
    "url",
    "events",
    "enabled",
    "format",
    "description",
    "sources",
];
