//! Hand-written decoders from a `serde_json::Value` for the types that travel between the
//! Worker and its objects, or rest in an object's SQLite (claims, commits, effects, outbox
//! entries). They read exactly serde's format of those types (the derives stay the
//! reference: each type's tests decode serde's encoding both ways and compare), but each is
//! one small function: serde's derived decoders (a visitor per struct, a sequence form per
//! struct, an enum access per enum) cost the Worker upload ~10 KiB gzip.
//!
//! As serde's derive does: unknown fields are ignored, a missing or `null` optional field is
//! `None`, a missing required field or a value of the wrong type is an error naming the field.

use serde::de::Error as _;
use serde_json::{Error, Map, Value};

/// A decoded value, or serde_json's error (the callers' error type is unchanged).
pub type Decoded<T> = Result<T, Error>;

/// A type read from JSON in serde's format without serde's derived decoder.
pub trait FromJson: Sized {
    /// Decodes `value`.
    fn from_json(value: Value) -> Decoded<Self>;
}

/// An error with `message`.
pub fn invalid(message: impl std::fmt::Display) -> Error {
    Error::custom(message)
}

/// JSON text decoded as `T` (one text parser for every type).
pub fn from_json_text<T: FromJson>(text: &str) -> Decoded<T> {
    T::from_json(parse(text)?)
}

/// JSON text as a `Value` (not generic: one copy in the upload). Read as bytes: the body
/// parser reads bytes too, so the upload holds serde_json's parser once, not also its `&str`
/// copy.
pub fn parse(text: &str) -> Decoded<Value> {
    parse_bytes(text.as_bytes())
}

/// JSON bytes as a `Value` (the one parser: [`parse`]).
#[inline(never)]
pub fn parse_bytes(bytes: &[u8]) -> Decoded<Value> {
    serde_json::from_slice(bytes)
}

/// `value` as compact JSON text: what `value.to_string()` writes, through the serializer the
/// upload holds anyway (`serde_json::to_string`); `Value`'s `Display` would add a second
/// serializer and a pretty printer (`{:#}`). Writing a `Value` cannot fail.
pub fn json_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// The largest integer a JavaScript number holds exactly (`Number.MAX_SAFE_INTEGER`).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// `value`, parsed from the text `JSON.stringify` wrote of a JavaScript value, with its numbers
/// as serde-wasm-bindgen reads that value: a number that is a safe integer (integral, at most
/// 2^53 − 1 either way, `-0` included) is an integer, any other number an `f64`. serde_json
/// reads `1.0` or `1e3` as an `f64` and `2^60` as an integer; JavaScript holds both as one
/// number, which the Worker used to read through serde-wasm-bindgen. Integers beyond 2^53
/// round to the `f64` JavaScript holds (`JSON.parse` and `as f64` both round to nearest).
pub fn javascript_numbers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            let Some(f) = n.as_f64() else { return };
            let safe = f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER;
            *value = if safe {
                Value::from(f as i64)
            } else {
                serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
            };
        }
        Value::Array(items) => items.iter_mut().for_each(javascript_numbers),
        Value::Object(map) => map.values_mut().for_each(javascript_numbers),
        _ => {}
    }
}

impl FromJson for Value {
    fn from_json(value: Value) -> Decoded<Self> {
        Ok(value)
    }
}

impl FromJson for String {
    fn from_json(value: Value) -> Decoded<Self> {
        match value {
            Value::String(s) => Ok(s),
            _ => Err(invalid("invalid type: expected a string")),
        }
    }
}

impl<T: FromJson> FromJson for Vec<T> {
    fn from_json(value: Value) -> Decoded<Self> {
        list(value)
    }
}

/// The fields of a JSON object, taken out by name.
pub struct Fields {
    map: Map<String, Value>,
}

impl Fields {
    /// The fields of `value`, which must be an object (`what` names it in the error).
    pub fn of(value: Value, what: &str) -> Decoded<Fields> {
        match value {
            Value::Object(map) => Ok(Fields { map }),
            _ => Err(invalid(format_args!("invalid type: expected {what}"))),
        }
    }

    /// The field `key`, `null` when missing.
    fn take(&mut self, key: &str) -> Value {
        self.map.remove(key).unwrap_or(Value::Null)
    }

    /// The required field `key`.
    pub fn get<T: FromJson>(&mut self, key: &str) -> Decoded<T> {
        match self.map.remove(key) {
            Some(value) => T::from_json(value).map_err(|e| in_field(key, e)),
            None => Err(invalid(format_args!("missing field `{key}`"))),
        }
    }

    /// The optional field `key` (missing or `null`: none).
    pub fn opt<T: FromJson>(&mut self, key: &str) -> Decoded<Option<T>> {
        match self.take(key) {
            Value::Null => Ok(None),
            value => T::from_json(value).map(Some).map_err(|e| in_field(key, e)),
        }
    }

    /// The required string `key`.
    pub fn string(&mut self, key: &str) -> Decoded<String> {
        self.get(key)
    }

    /// The optional string `key`.
    pub fn opt_string(&mut self, key: &str) -> Decoded<Option<String>> {
        self.opt(key)
    }

    /// The required integer `key` (an `i64`; a float is refused, as serde refuses it).
    pub fn i64(&mut self, key: &str) -> Decoded<i64> {
        match self.map.remove(key) {
            Some(value) => int(&value, key),
            None => Err(invalid(format_args!("missing field `{key}`"))),
        }
    }

    /// The optional integer `key`.
    pub fn opt_i64(&mut self, key: &str) -> Decoded<Option<i64>> {
        match self.take(key) {
            Value::Null => Ok(None),
            value => int(&value, key).map(Some),
        }
    }

    /// The required non-negative integer `key`, at most `max`.
    pub fn uint(&mut self, key: &str, max: u64) -> Decoded<u64> {
        match self.map.remove(key) {
            Some(value) => unsigned(&value, key, max),
            None => Err(invalid(format_args!("missing field `{key}`"))),
        }
    }

    /// The optional non-negative integer `key`, at most `max`.
    pub fn opt_uint(&mut self, key: &str, max: u64) -> Decoded<Option<u64>> {
        match self.take(key) {
            Value::Null => Ok(None),
            value => unsigned(&value, key, max).map(Some),
        }
    }

    /// The optional number `key`.
    pub fn opt_f64(&mut self, key: &str) -> Decoded<Option<f64>> {
        match self.take(key) {
            Value::Null => Ok(None),
            value => value
                .as_f64()
                .map(Some)
                .ok_or_else(|| invalid(format_args!("invalid type: `{key}` must be a number"))),
        }
    }

    /// The required boolean `key`.
    pub fn bool(&mut self, key: &str) -> Decoded<bool> {
        match self.map.remove(key) {
            Some(Value::Bool(b)) => Ok(b),
            Some(_) => Err(invalid(format_args!(
                "invalid type: `{key}` must be a boolean"
            ))),
            None => Err(invalid(format_args!("missing field `{key}`"))),
        }
    }

    /// The required list `key`, each item a `T`.
    pub fn list<T: FromJson>(&mut self, key: &str) -> Decoded<Vec<T>> {
        match self.map.remove(key) {
            Some(value) => list(value).map_err(|e| in_field(key, e)),
            None => Err(invalid(format_args!("missing field `{key}`"))),
        }
    }
}

/// A JSON array, each item a `T`.
pub fn list<T: FromJson>(value: Value) -> Decoded<Vec<T>> {
    match value {
        Value::Array(items) => items.into_iter().map(T::from_json).collect(),
        _ => Err(invalid("invalid type: expected a list")),
    }
}

/// An externally tagged enum value in serde's format: `"tag"` (a unit variant) or
/// `{"tag": content}`. Returns the tag and the content (`null` for a unit variant).
pub fn variant(value: Value, what: &str) -> Decoded<(String, Value)> {
    match value {
        Value::String(tag) => Ok((tag, Value::Null)),
        Value::Object(map) if map.len() == 1 => match map.into_iter().next() {
            Some((tag, content)) => Ok((tag, content)),
            None => Err(invalid(format_args!("invalid type: expected {what}"))),
        },
        _ => Err(invalid(format_args!("invalid type: expected {what}"))),
    }
}

/// The error for an unknown variant `tag` of `what`.
pub fn unknown_variant(tag: &str, what: &str) -> Error {
    invalid(format_args!("unknown variant `{tag}` of {what}"))
}

fn in_field(key: &str, e: Error) -> Error {
    invalid(format_args!("field `{key}`: {e}"))
}

fn int(value: &Value, key: &str) -> Decoded<i64> {
    value
        .as_i64()
        .ok_or_else(|| invalid(format_args!("invalid type: `{key}` must be an integer")))
}

fn unsigned(value: &Value, key: &str, max: u64) -> Decoded<u64> {
    match value.as_u64() {
        Some(n) if n <= max => Ok(n),
        _ => Err(invalid(format_args!(
            "invalid value: `{key}` must be an integer from 0 to {max}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_follow_serde_rules() {
        let mut f = Fields::of(
            json!({"s": "x", "n": -3, "u": 7, "b": true, "null": null, "f": 1.5, "big": 70000}),
            "a test object",
        )
        .unwrap();
        assert_eq!(f.string("s").unwrap(), "x");
        assert_eq!(f.i64("n").unwrap(), -3);
        assert_eq!(f.uint("u", u16::MAX as u64).unwrap(), 7);
        assert!(f.bool("b").unwrap());
        assert_eq!(f.opt_string("null").unwrap(), None);
        assert_eq!(f.opt_string("absent").unwrap(), None);
        // A float is not an integer; out of range is refused.
        assert!(f.i64("f").unwrap_err().to_string().contains("`f`"));
        assert!(f.uint("big", u16::MAX as u64).is_err());
        let missing = f.string("absent").unwrap_err().to_string();
        assert!(missing.contains("missing field `absent`"), "{missing}");
        assert!(Fields::of(json!([1]), "a test object").is_err());
    }

    #[test]
    fn wrong_types_are_refused_with_the_field() {
        let mut f = Fields::of(json!({"s": 1, "b": "true", "l": {}}), "x").unwrap();
        assert!(f.string("s").unwrap_err().to_string().contains("`s`"));
        assert!(f.bool("b").unwrap_err().to_string().contains("`b`"));
        assert!(f
            .list::<String>("l")
            .unwrap_err()
            .to_string()
            .contains("`l`"));
    }

    #[test]
    fn numbers_become_what_javascript_holds() {
        let mut v = parse(
            r#"{"a":[1.0,-0.0,1e3,0.5,-7,9007199254740991,9007199254740993,1152921504606846976,
            -9007199254740992,1e300,"1.0"],"b":{"c":2.50}}"#,
        )
        .unwrap();
        javascript_numbers(&mut v);
        assert_eq!(
            v.to_string(),
            r#"{"a":[1,0,1000,0.5,-7,9007199254740991,9007199254740992.0,1.152921504606847e+18,-9007199254740992.0,1e+300,"1.0"],"b":{"c":2.5}}"#
        );
        assert!(v["a"][0].is_i64() && v["a"][1].is_i64() && v["a"][6].is_f64());
        // Read as i64 where JavaScript has a safe integer, as f64 beyond.
        assert_eq!(v["a"][2].as_i64(), Some(1000));
        assert_eq!(v["a"][5].as_i64(), Some(9_007_199_254_740_991));
        assert_eq!(v["a"][7].as_i64(), None);
    }

    #[test]
    fn lists_of_strings_from_text() {
        let list: Vec<String> = from_json_text(r#"["a","é"]"#).unwrap();
        assert_eq!(list, ["a", "é"]);
        assert!(from_json_text::<Vec<String>>(r#"["a",1]"#).is_err());
        assert!(from_json_text::<Vec<String>>(r#"{"a":1}"#).is_err());
        assert!(from_json_text::<Vec<String>>("[").is_err());
    }

    #[test]
    fn variants_in_serde_format() {
        assert_eq!(
            variant(json!("status"), "a command").unwrap(),
            ("status".to_owned(), Value::Null)
        );
        assert_eq!(
            variant(json!({"claim": {"a": 1}}), "a command").unwrap(),
            ("claim".to_owned(), json!({"a": 1}))
        );
        assert!(variant(json!({"a": 1, "b": 2}), "a command").is_err());
        assert!(variant(json!(3), "a command").is_err());
    }
}
