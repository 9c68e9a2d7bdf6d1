//! Why a destination, a secret or a message id was refused.

use super::{ALL_EVENTS, FIELDS, MAX_DESCRIPTION_CHARS, MAX_URL_LEN, MSG_ID_MAX_LEN};
use crate::support::json_body::{echo, BodyError};

/// Why a destination, a secret or a message id was refused. [`DestinationError::field`] names
/// the field; the text (`Display`) is `<field>: <why>` and never carries a URL, a secret or a
/// body (an unknown event or field name is echoed, at most 64 characters of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DestinationError {
    /// The body is not a JSON object of known, well-typed fields (the checks every admin
    /// body shares).
    Body(BodyError),
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
    /// `sources` is empty, names something that is not a source id, or lists `"*"` beside ids.
    Sources,
}

impl DestinationError {
    /// The field the problem is in (`""` for the whole input).
    pub fn field(&self) -> &'static str {
        match self {
            DestinationError::Body(e) => e.field(),
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
            DestinationError::Sources => "sources",
        }
    }
}

impl std::fmt::Display for DestinationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let field = self.field();
        match self {
            DestinationError::Body(e) => e.describe(f, "destination", &FIELDS),
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
            DestinationError::Sources => write!(
                f,
                "{field}: must be [\"{ALL_EVENTS}\"] (every source) or a list of source ids (default, src_…)"
            ),
        }
    }
}

impl std::error::Error for DestinationError {}

impl From<BodyError> for DestinationError {
    fn from(e: BodyError) -> Self {
        DestinationError::Body(e)
    }
}
