//! The checks every JSON body of the admin API shares (a destination, a source, a key to add):
//! JSON, an object, only known fields, a field present and of its type. Their refusals are one
//! type, [`BodyError`], that the concerns' own errors carry (`DestinationError::Body`,
//! `SourceError::Body`); the concern names what the body is and lists its fields in the text.

use std::fmt;

use serde_json::{Map, Value};

/// At most this many characters of a name the client sent are echoed in a refusal.
pub const ECHO_MAX_CHARS: usize = 64;

/// The largest admin body read, in bytes: past it the request is refused with 413 and the rest
/// is not read. The largest body a concern accepts (a source with every secret at its longest)
/// is far inside it.
pub const MAX_BYTES: usize = 64 * 1024;

/// Whether a declared `Content-Length` is already over [`MAX_BYTES`] (413 before any read).
pub fn declared_too_large(declared: Option<usize>) -> bool {
    declared.is_some_and(|n| n > MAX_BYTES)
}

/// Why a JSON body was refused before any rule of its concern ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyError {
    /// The body is not JSON.
    InvalidJson,
    /// The body is JSON but not an object.
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
}

impl BodyError {
    /// The field the problem is in (`""` for the whole body).
    pub fn field(&self) -> &'static str {
        match self {
            BodyError::InvalidJson | BodyError::NotAnObject | BodyError::UnknownField(_) => "",
            BodyError::Missing(field) | BodyError::WrongType { field, .. } => field,
        }
    }

    /// The refusal's text: `noun` names the body (`the destination must be a JSON object`),
    /// `fields` are the ones it may have (listed after an unknown one). Never a value, only a
    /// field name as sent, at most [`ECHO_MAX_CHARS`] characters of it.
    pub fn describe(&self, f: &mut fmt::Formatter<'_>, noun: &str, fields: &[&str]) -> fmt::Result {
        let field = self.field();
        match self {
            BodyError::InvalidJson => f.write_str("the body is not valid JSON"),
            BodyError::NotAnObject => write!(f, "the {noun} must be a JSON object"),
            BodyError::UnknownField(name) => write!(
                f,
                "{}: unknown field (the fields are {})",
                echo(name),
                fields.join(", ")
            ),
            BodyError::Missing(_) => write!(f, "{field}: is required"),
            BodyError::WrongType { expected, .. } => write!(f, "{field}: must be {expected}"),
        }
    }
}

/// `body` as JSON.
pub fn parse(body: &[u8]) -> Result<Value, BodyError> {
    serde_json::from_slice(body).map_err(|_| BodyError::InvalidJson)
}

/// `value` as an object whose every field is one of `fields`.
pub fn object<'a>(value: &'a Value, fields: &[&str]) -> Result<&'a Map<String, Value>, BodyError> {
    let object = value.as_object().ok_or(BodyError::NotAnObject)?;
    match object.keys().find(|k| !fields.contains(&k.as_str())) {
        Some(name) => Err(BodyError::UnknownField(name.clone())),
        None => Ok(object),
    }
}

/// `object[field]`, unless it is absent or null.
pub fn present<'a>(object: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    object.get(field).filter(|v| !v.is_null())
}

/// At most [`ECHO_MAX_CHARS`] characters of a name sent by the client.
pub fn echo(text: &str) -> String {
    text.chars().take(ECHO_MAX_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Shown<'a>(&'a BodyError);

    impl fmt::Display for Shown<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.describe(f, "thing", &["a", "b"])
        }
    }

    fn text(e: &BodyError) -> String {
        Shown(e).to_string()
    }

    #[test]
    fn a_declared_length_past_the_limit_is_refused_before_the_read() {
        assert!(!declared_too_large(None), "no length: read under the cap");
        assert!(!declared_too_large(Some(0)));
        assert!(!declared_too_large(Some(MAX_BYTES)));
        assert!(declared_too_large(Some(MAX_BYTES + 1)));
    }

    #[test]
    fn a_body_must_be_a_json_object_of_known_fields() {
        assert_eq!(parse(b"{nope"), Err(BodyError::InvalidJson));
        let list = parse(b"[1]").unwrap();
        assert_eq!(object(&list, &["a"]), Err(BodyError::NotAnObject));
        let extra = parse(br#"{"a":1,"c":2}"#).unwrap();
        assert_eq!(
            object(&extra, &["a", "b"]),
            Err(BodyError::UnknownField("c".into()))
        );
        let fine = parse(br#"{"a":1,"b":null}"#).unwrap();
        let fine = object(&fine, &["a", "b"]).unwrap();
        assert_eq!(present(fine, "a"), Some(&Value::from(1)));
        assert_eq!(present(fine, "b"), None, "null is absent");
    }

    #[test]
    fn refusals_name_the_field_and_echo_at_most_64_characters() {
        let long = "x".repeat(100);
        assert_eq!(
            text(&BodyError::UnknownField(long)),
            format!("{}: unknown field (the fields are a, b)", "x".repeat(64))
        );
        assert_eq!(
            text(&BodyError::NotAnObject),
            "the thing must be a JSON object"
        );
        let wrong = BodyError::WrongType {
            field: "a",
            expected: "a string",
        };
        assert_eq!(
            (wrong.field(), text(&wrong).as_str()),
            ("a", "a: must be a string")
        );
        assert_eq!(text(&BodyError::Missing("b")), "b: is required");
        assert_eq!(BodyError::InvalidJson.field(), "");
    }
}
