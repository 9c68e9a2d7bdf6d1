//! The Worker's one error type for its routes, and its status mapping (svix-server's
//! `error.rs` is the model): a handler answers `Err(WorkerError)` and the router turns it into
//! the answer once. Refusals say what was wrong (and which field); an internal failure
//! (D1, a Durable Object, the runtime) answers a 500 that names no internals, its detail
//! logged when `DEBUG=true`.

use std::fmt;

use serde_json::json;
use worker::Response;

use crate::destinations::DestinationError;
use crate::worker::appointment::protocol::{CallError, Refusal};
use crate::worker::runtime::log;
use crate::worker::runtime::respond;

/// The body of an unexpected failure's 500.
pub const INTERNAL_ERROR: &str = "Internal error: storage or a Durable Object failed; try again";

/// Why a route did not answer 2xx.
#[derive(Debug)]
pub enum WorkerError {
    /// 400: the request is wrong; `field` names the offending field when one is to blame.
    Invalid {
        /// What is wrong, for the sender.
        message: String,
        /// The field, when one is to blame.
        field: Option<&'static str>,
    },
    /// 404: what was asked for does not exist (`"Destination not found"`).
    NotFound(&'static str),
    /// 409: the request is fine but the state refuses it (a config destination, a message
    /// not failed, the encryption key not set).
    Conflict(String),
    /// A refusal passed on with its own status: an object's, or a core rule's that carries
    /// its status (reminder requests, replay availability).
    Status(u16, String),
    /// 500: D1, an object or the runtime failed; the text is logged, never answered.
    Internal(String),
    /// 500: the runtime's own error, kept as it is (formatted only when logged: a `?` on a
    /// runtime call stays a move, not a formatting at every call site).
    Runtime(worker::Error),
}

/// A route's result.
pub type WorkerResult<T> = Result<T, WorkerError>;

impl WorkerError {
    /// 400 without a field.
    pub fn invalid(message: impl fmt::Display) -> Self {
        WorkerError::Invalid {
            message: message.to_string(),
            field: None,
        }
    }

    /// 409.
    pub fn conflict(message: impl fmt::Display) -> Self {
        WorkerError::Conflict(message.to_string())
    }

    /// A refusal with its own status (a core rule's that carries it).
    pub fn refused(status: u16, message: impl fmt::Display) -> Self {
        WorkerError::Status(status, message.to_string())
    }

    /// 400 naming `field`.
    pub fn field(message: impl fmt::Display, field: &'static str) -> Self {
        WorkerError::Invalid {
            message: message.to_string(),
            field: Some(field),
        }
    }

    /// 500, with the detail to log.
    pub fn internal(detail: impl fmt::Display) -> Self {
        WorkerError::Internal(detail.to_string())
    }

    /// The HTTP status this error answers.
    pub fn status(&self) -> u16 {
        match self {
            WorkerError::Invalid { .. } => 400,
            WorkerError::NotFound(_) => 404,
            WorkerError::Conflict(_) => 409,
            WorkerError::Status(status, _) => *status,
            WorkerError::Internal(_) | WorkerError::Runtime(_) => 500,
        }
    }

    /// The answer: `{"error": …}` (and `"field"` when known) with [`Self::status`]; an
    /// internal failure is logged (`DEBUG=true`) and answers [`INTERNAL_ERROR`].
    pub fn response(&self, debug: bool) -> worker::Result<Response> {
        match self {
            WorkerError::Invalid {
                message,
                field: Some(field),
            } => respond::json(400, &json!({ "error": message, "field": field })),
            WorkerError::Internal(_) | WorkerError::Runtime(_) => {
                log::warn(
                    debug,
                    "request failed",
                    json!({ "error": self.to_string() }),
                );
                respond::error(500, INTERNAL_ERROR)
            }
            other => respond::error(other.status(), &other.to_string()),
        }
    }
}

impl fmt::Display for WorkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WorkerError::Invalid { message, .. }
            | WorkerError::Conflict(message)
            | WorkerError::Status(_, message)
            | WorkerError::Internal(message) => f.write_str(message),
            WorkerError::NotFound(what) => f.write_str(what),
            WorkerError::Runtime(e) => write!(f, "{e}"),
        }
    }
}

impl From<worker::Error> for WorkerError {
    fn from(e: worker::Error) -> Self {
        WorkerError::Runtime(e)
    }
}

impl From<serde_json::Error> for WorkerError {
    fn from(e: serde_json::Error) -> Self {
        WorkerError::Runtime(e.into())
    }
}

impl From<CallError> for WorkerError {
    /// An object's refusal keeps its status and message; a failed call is internal.
    fn from(e: CallError) -> Self {
        match e {
            CallError::Refused(Refusal { status, message }) => WorkerError::Status(status, message),
            CallError::Runtime(e) => e.into(),
        }
    }
}

impl From<DestinationError> for WorkerError {
    fn from(e: DestinationError) -> Self {
        let field = e.field();
        WorkerError::field(e, field)
    }
}
