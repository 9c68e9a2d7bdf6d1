//! The object's one error type: its steps keep their errors typed (its storage or the runtime,
//! another object's call, a send not possible now, a refusal) and `status` maps them to the
//! answer in one place. A refusal answers its status with `{"error": …}`; a step that could not
//! be done now answers 503; anything else fails the call (the caller's `CallError::Runtime`), so
//! no internal text reaches an admin answer.

use std::fmt;

use worker::Response;

use super::dispatch::refuse;
use crate::schedule::StoreError;
use crate::worker::appointment::protocol::CallError;

/// Why one of the object's steps failed.
#[derive(Debug)]
pub enum ObjectError {
    /// Its own storage, D1, another object or the runtime failed.
    Runtime(worker::Error),
    /// Not possible now (the encryption key not set, randomness or D1 unavailable): 503.
    Unready(String),
    /// Refused with its status (404 not found, 409 the state refuses it).
    Refused(u16, String),
}

/// An object step's result.
pub type Result<T> = std::result::Result<T, ObjectError>;

impl ObjectError {
    /// The status this error answers; `None`: the call fails instead (a 500 the runtime
    /// answers, its text never in a reply).
    pub fn status(&self) -> Option<u16> {
        match self {
            ObjectError::Refused(status, _) => Some(*status),
            ObjectError::Unready(_) => Some(503),
            ObjectError::Runtime(_) => None,
        }
    }

    /// The same failure as "not now" (503): a manual retry that could not be attempted says
    /// why, whatever stood in the way.
    pub fn unready(self) -> Self {
        match self {
            ObjectError::Refused(..) | ObjectError::Unready(_) => self,
            other => ObjectError::Unready(other.to_string()),
        }
    }

    /// The answer: a refusal's status and message, or the call's failure.
    pub fn response(self) -> worker::Result<Response> {
        match self {
            ObjectError::Refused(status, message) => refuse(status, &message),
            ObjectError::Unready(message) => refuse(503, &message),
            other => Err(other.into()),
        }
    }
}

impl fmt::Display for ObjectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ObjectError::Runtime(e) => e.fmt(f),
            ObjectError::Unready(message) | ObjectError::Refused(_, message) => {
                f.write_str(message)
            }
        }
    }
}

impl From<worker::Error> for ObjectError {
    fn from(e: worker::Error) -> Self {
        ObjectError::Runtime(e)
    }
}

impl From<serde_json::Error> for ObjectError {
    fn from(e: serde_json::Error) -> Self {
        ObjectError::Runtime(e.into())
    }
}

impl From<StoreError> for ObjectError {
    fn from(e: StoreError) -> Self {
        ObjectError::Runtime(e.into())
    }
}

impl From<CallError> for ObjectError {
    /// Another object's refusal or failure, as its text ("object refused: …").
    fn from(e: CallError) -> Self {
        ObjectError::Runtime(worker::Error::RustError(e.to_string()))
    }
}

impl From<ObjectError> for worker::Error {
    fn from(e: ObjectError) -> Self {
        match e {
            ObjectError::Runtime(e) => e,
            other => worker::Error::RustError(other.to_string()),
        }
    }
}
