//! `JSON.stringify(JSON.parse(text))`, computed the way Node computes it.
//!
//! Eka's Node SDK signs the re-serialised body rather than the raw bytes, so a body that
//! reached Eka's SDK users through `JSON.parse` verifies only against this form. The rules are
//! JavaScript's, not serde_json's:
//! - object keys keep insertion order, except that array-index keys (`"0"` … `"4294967294"`)
//!   come first in ascending numeric order; a duplicate key keeps its first position and its
//!   last value;
//! - no whitespace; non-ASCII is written raw; only `"`, `\` and control characters are escaped
//!   (`\b \f \n \r \t`, others as lowercase `\u00xx`); lone surrogates as `\udxxx`;
//! - numbers are IEEE doubles printed as `Number.prototype.toString` does (`ryu-js`);
//!   a number too large for a double becomes `null`, as `JSON.stringify(Infinity)` does.
//!
//! A purpose-built parser is used because serde_json rejects lone surrogates, which
//! `JSON.parse` accepts. Strings are kept as WTF-8 (UTF-8 that may also encode lone
//! surrogates), so the common case is a plain byte copy.

use indexmap::IndexMap;

use crate::support::from_json::parse_bytes;

/// Why a body could not be canonicalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CanonicalError {
    /// `JSON.parse` would throw.
    InvalidJson,
    /// Nested deeper than the configured limit.
    TooDeep,
}

impl std::fmt::Display for CanonicalError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CanonicalError::InvalidJson => "body is not valid JSON",
            CanonicalError::TooDeep => "body is nested too deeply",
        })
    }
}

impl std::error::Error for CanonicalError {}

/// Node's `JSON.stringify(JSON.parse(body))` for `body` decoded as UTF-8 (invalid sequences
/// become U+FFFD, as `Buffer#toString` does). Nesting beyond `max_depth` is refused.
pub fn js_canonicalize(body: &[u8], max_depth: usize) -> Result<Vec<u8>, CanonicalError> {
    let text = String::from_utf8_lossy(body);
    let mut parser = Parser {
        src: text.as_bytes(),
        pos: 0,
        max_depth,
    };
    parser.skip_ws();
    let value = parser.value(0)?;
    parser.skip_ws();
    if parser.pos != parser.src.len() {
        return Err(CanonicalError::InvalidJson);
    }
    let mut out = Vec::with_capacity(body.len());
    write_value(&value, &mut out);
    Ok(out)
}

enum JsValue {
    Null,
    Bool(bool),
    Number(f64),
    /// WTF-8 bytes.
    String(Vec<u8>),
    Array(Vec<JsValue>),
    Object(IndexMap<Vec<u8>, JsValue>),
}

struct Parser<'a> {
    src: &'a [u8],
    pos: usize,
    max_depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), CanonicalError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(CanonicalError::InvalidJson)
        }
    }

    fn literal(&mut self, word: &[u8], value: JsValue) -> Result<JsValue, CanonicalError> {
        if self.src[self.pos..].starts_with(word) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(CanonicalError::InvalidJson)
        }
    }

    fn value(&mut self, depth: usize) -> Result<JsValue, CanonicalError> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => self.string().map(JsValue::String),
            Some(b't') => self.literal(b"true", JsValue::Bool(true)),
            Some(b'f') => self.literal(b"false", JsValue::Bool(false)),
            Some(b'n') => self.literal(b"null", JsValue::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(CanonicalError::InvalidJson),
        }
    }

    fn enter(&self, depth: usize) -> Result<(), CanonicalError> {
        if depth > self.max_depth {
            Err(CanonicalError::TooDeep)
        } else {
            Ok(())
        }
    }

    fn object(&mut self, depth: usize) -> Result<JsValue, CanonicalError> {
        self.enter(depth)?;
        self.pos += 1; // '{'
        let mut map = IndexMap::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(JsValue::Object(map));
        }
        loop {
            self.skip_ws();
            if self.peek() != Some(b'"') {
                return Err(CanonicalError::InvalidJson);
            }
            let key = self.string()?;
            self.skip_ws();
            self.expect(b':')?;
            self.skip_ws();
            let value = self.value(depth)?;
            // IndexMap::insert keeps the first position and takes the last value, like JS.
            map.insert(key, value);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(JsValue::Object(map));
                }
                _ => return Err(CanonicalError::InvalidJson),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<JsValue, CanonicalError> {
        self.enter(depth)?;
        self.pos += 1; // '['
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(JsValue::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value(depth)?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(JsValue::Array(items));
                }
                _ => return Err(CanonicalError::InvalidJson),
            }
        }
    }

    fn number(&mut self) -> Result<JsValue, CanonicalError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(CanonicalError::InvalidJson),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.required_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            self.required_digits()?;
        }
        Ok(JsValue::Number(json_number(&self.src[start..self.pos])))
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
    }

    fn required_digits(&mut self) -> Result<(), CanonicalError> {
        let start = self.pos;
        self.digits();
        if self.pos == start {
            Err(CanonicalError::InvalidJson)
        } else {
            Ok(())
        }
    }

    /// A string literal, returned as WTF-8.
    fn string(&mut self) -> Result<Vec<u8>, CanonicalError> {
        self.pos += 1; // '"'
        let mut out = Vec::new();
        loop {
            let run_start = self.pos;
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' || b < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.extend_from_slice(&self.src[run_start..self.pos]);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.escape(&mut out)?;
                }
                // A raw control character or the end of input.
                _ => return Err(CanonicalError::InvalidJson),
            }
        }
    }

    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), CanonicalError> {
        let byte = self.peek().ok_or(CanonicalError::InvalidJson)?;
        self.pos += 1;
        let simple = match byte {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let unit = self.hex4()?;
                push_code_unit(out, unit);
                return Ok(());
            }
            _ => return Err(CanonicalError::InvalidJson),
        };
        out.push(simple);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u16, CanonicalError> {
        let digits = self
            .src
            .get(self.pos..self.pos + 4)
            .ok_or(CanonicalError::InvalidJson)?;
        let mut unit: u16 = 0;
        for &d in digits {
            let v = (d as char)
                .to_digit(16)
                .ok_or(CanonicalError::InvalidJson)?;
            unit = (unit << 4) | v as u16;
        }
        self.pos += 4;
        Ok(unit)
    }
}

/// Appends one UTF-16 code unit to a WTF-8 buffer, joining a low surrogate with a high
/// surrogate that ends the buffer into one supplementary character.
/// The value of a JSON number literal (syntax already checked), correctly rounded as
/// JavaScript's `JSON.parse` reads it. serde_json with `float_roundtrip` rounds correctly, as
/// Rust's `str::parse::<f64>` does; using it rather than `str::parse` keeps a second float
/// parser and its tables (~10 KB) out of the Worker, and reading it as a `Value` (the upload's
/// one JSON parser) rather than as an `f64` keeps serde's typed number decoder out too; a
/// `Value` number is the same `f64` (integers beyond 2^53 round as `as f64` does, as serde's
/// `f64` decoder rounds them). serde_json refuses only literals beyond f64's range, which
/// JavaScript reads as ±Infinity.
fn json_number(literal: &[u8]) -> f64 {
    match parse_bytes(literal).ok().and_then(|v| v.as_f64()) {
        Some(n) => n,
        None if literal.first() == Some(&b'-') => f64::NEG_INFINITY,
        None => f64::INFINITY,
    }
}

fn push_code_unit(out: &mut Vec<u8>, unit: u16) {
    if (0xDC00..=0xDFFF).contains(&unit) {
        if let Some(high) = trailing_high_surrogate(out) {
            out.truncate(out.len() - 3);
            let cp = 0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(unit) - 0xDC00);
            if let Some(c) = char::from_u32(cp) {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            return;
        }
    }
    // Generalised UTF-8 for a 16-bit value (surrogates included).
    let u = u32::from(unit);
    if u < 0x80 {
        out.push(u as u8);
    } else if u < 0x800 {
        out.push(0xC0 | (u >> 6) as u8);
        out.push(0x80 | (u & 0x3F) as u8);
    } else {
        out.push(0xE0 | (u >> 12) as u8);
        out.push(0x80 | ((u >> 6) & 0x3F) as u8);
        out.push(0x80 | (u & 0x3F) as u8);
    }
}

/// The high surrogate that ends a WTF-8 buffer, if one does (`ED A0..AF xx`).
fn trailing_high_surrogate(buf: &[u8]) -> Option<u16> {
    match buf {
        [.., 0xED, b1 @ 0xA0..=0xAF, b2] => {
            Some(0xD000 | (u16::from(b1 & 0x3F) << 6) | u16::from(b2 & 0x3F))
        }
        _ => None,
    }
}

/// The array index a key names, if it is one: `"0"` or a numeral without a leading zero,
/// at most 2^32 − 2.
fn array_index(key: &[u8]) -> Option<u32> {
    match key {
        [b'0'] => Some(0),
        [b'1'..=b'9', rest @ ..] if rest.len() < 10 && rest.iter().all(u8::is_ascii_digit) => {
            let value = key
                .iter()
                .fold(0u64, |acc, d| acc * 10 + u64::from(d - b'0'));
            u32::try_from(value).ok().filter(|&v| v != u32::MAX)
        }
        _ => None,
    }
}

fn write_value(value: &JsValue, out: &mut Vec<u8>) {
    match value {
        JsValue::Null => out.extend_from_slice(b"null"),
        JsValue::Bool(true) => out.extend_from_slice(b"true"),
        JsValue::Bool(false) => out.extend_from_slice(b"false"),
        JsValue::Number(n) => write_number(*n, out),
        JsValue::String(s) => write_string(s, out),
        JsValue::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(item, out);
            }
            out.push(b']');
        }
        JsValue::Object(map) => write_object(map, out),
    }
}

fn write_object(map: &IndexMap<Vec<u8>, JsValue>, out: &mut Vec<u8>) {
    let mut indexed: Vec<(u32, &Vec<u8>, &JsValue)> = map
        .iter()
        .filter_map(|(k, v)| array_index(k).map(|i| (i, k, v)))
        .collect();
    indexed.sort_unstable_by_key(|&(i, _, _)| i);
    let named = map.iter().filter(|(k, _)| array_index(k).is_none());
    out.push(b'{');
    let entries = indexed.into_iter().map(|(_, k, v)| (k, v)).chain(named);
    for (n, (key, value)) in entries.enumerate() {
        if n > 0 {
            out.push(b',');
        }
        write_string(key, out);
        out.push(b':');
        write_value(value, out);
    }
    out.push(b'}');
}

fn write_number(n: f64, out: &mut Vec<u8>) {
    if n.is_finite() {
        let mut buf = ryu_js::Buffer::new();
        out.extend_from_slice(buf.format_finite(n).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn write_string(s: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    let mut i = 0;
    let mut run_start = 0;
    while i < s.len() {
        let b = s[i];
        let escape: Option<&[u8]> = match b {
            b'"' => Some(b"\\\""),
            b'\\' => Some(b"\\\\"),
            0x08 => Some(b"\\b"),
            0x0c => Some(b"\\f"),
            b'\n' => Some(b"\\n"),
            b'\r' => Some(b"\\r"),
            b'\t' => Some(b"\\t"),
            _ => None,
        };
        if let Some(esc) = escape {
            out.extend_from_slice(&s[run_start..i]);
            out.extend_from_slice(esc);
            i += 1;
            run_start = i;
        } else if b < 0x20 {
            out.extend_from_slice(&s[run_start..i]);
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xF)]);
            i += 1;
            run_start = i;
        } else if b == 0xED && s.get(i + 1).is_some_and(|b1| *b1 >= 0xA0) {
            // A lone surrogate in WTF-8: `\udxxx`, as well-formed JSON.stringify writes it.
            out.extend_from_slice(&s[run_start..i]);
            let unit = 0xD000u16
                | (u16::from(s[i + 1] & 0x3F) << 6)
                | u16::from(s.get(i + 2).copied().unwrap_or(0x80) & 0x3F);
            out.extend_from_slice(b"\\u");
            for shift in [12u16, 8, 4, 0] {
                out.push(HEX[usize::from((unit >> shift) & 0xF)]);
            }
            i += 3;
            run_start = i;
        } else {
            i += 1;
        }
    }
    if let Some(rest) = s.get(run_start..) {
        out.extend_from_slice(rest);
    }
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_read_as_rusts_correctly_rounded_parser_reads_them() {
        let mut literals: Vec<String> = [
            "0",
            "-0",
            "0.0",
            "-0.0",
            "1",
            "-1",
            "0.1",
            "0.3",
            "1e400",
            "-1e400",
            "1e-400",
            "-1e-400",
            "2.2250738585072011e-308",
            "2.2250738585072014e-308",
            "4.9e-324",
            "2.4e-324",
            "2.5e-324",
            "1.7976931348623157e308",
            "1.7976931348623158e308",
            "1.7976931348623159e308",
            "9007199254740993",
            "-9007199254740993",
            "18446744073709551615",
            "18446744073709551616",
            "123456789012345678901234567890",
            "0.30000000000000004",
            "1E5",
            "1e+5",
            "1.5E-5",
            "100000000000000000000000",
            "7.2057594037927933e16",
            "9.5e-5",
            "1730189586",
            "1e23",
            "8.98846567431158e307",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        literals.push(format!("0.{}1", "0".repeat(400)));
        literals.push(format!("1{}", "0".repeat(310)));
        literals.push(format!("{}e-300", "9".repeat(800)));
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let f = f64::from_bits(x);
            if f.is_finite() {
                literals.push(format!("{f:e}"));
                literals.push(format!(
                    "{}e{}",
                    x % 100_000_000_000_000_000,
                    (x >> 40) % 700
                ));
                literals.push(format!("-0.{}e-{}", x, (x >> 50) % 330));
            }
        }
        for literal in &literals {
            let ours = super::json_number(literal.as_bytes());
            let rust: f64 = literal.parse().unwrap();
            assert_eq!(ours.to_bits(), rust.to_bits(), "{literal}");
        }
    }

    use super::*;

    fn canon(text: &str) -> String {
        let bytes = js_canonicalize(text.as_bytes(), 64).expect("valid JSON");
        String::from_utf8(bytes).expect("UTF-8 output")
    }

    #[test]
    fn removes_whitespace() {
        assert_eq!(
            canon(" {\n \"a\" : [ 1 , 2 ] ,\t\"b\":{} }\r\n"),
            r#"{"a":[1,2],"b":{}}"#
        );
    }

    #[test]
    fn keeps_insertion_order_of_string_keys() {
        assert_eq!(canon(r#"{"z":1,"a":2,"m":3}"#), r#"{"z":1,"a":2,"m":3}"#);
    }

    #[test]
    fn moves_array_index_keys_first_in_ascending_order() {
        assert_eq!(
            canon(r#"{"b":1,"10":2,"a":3,"2":4,"0":5}"#),
            r#"{"0":5,"2":4,"10":2,"b":1,"a":3}"#
        );
    }

    #[test]
    fn keys_that_are_not_array_indices_keep_their_place() {
        // Leading zero, sign, fraction, and 2^32 - 1 (one past the largest index) are names.
        assert_eq!(
            canon(r#"{"x":0,"01":1,"-1":2,"1.5":3,"4294967295":4,"4294967294":5}"#),
            r#"{"4294967294":5,"x":0,"01":1,"-1":2,"1.5":3,"4294967295":4}"#
        );
    }

    #[test]
    fn duplicate_key_keeps_first_position_and_last_value() {
        assert_eq!(canon(r#"{"a":1,"b":2,"a":3}"#), r#"{"a":3,"b":2}"#);
    }

    #[test]
    fn non_ascii_is_written_raw() {
        assert_eq!(
            canon(r#"{"n":"café — क्लिनिक"}"#),
            r#"{"n":"café — क्लिनिक"}"#
        );
        assert_eq!(canon(r#""\u00e9\u2028""#), "\"é\u{2028}\"");
    }

    #[test]
    fn unescapes_what_json_stringify_does_not_escape() {
        assert_eq!(canon(r#""\u0026\u003c\u003e\/""#), r#""&<>/""#);
    }

    #[test]
    fn escapes_quote_backslash_and_control_characters() {
        assert_eq!(
            canon(r#""q\"b\\\b\f\n\r\t\u0001\u001f\u007f""#),
            "\"q\\\"b\\\\\\b\\f\\n\\r\\t\\u0001\\u001f\u{7f}\""
        );
    }

    #[test]
    fn lone_surrogates_are_escaped_lowercase() {
        assert_eq!(canon(r#""\uD800""#), r#""\ud800""#);
        assert_eq!(canon(r#""a\uDFFFb""#), r#""a\udfffb""#);
        // Reversed pair: two lone surrogates.
        assert_eq!(canon(r#""\uDC00\uD800""#), r#""\udc00\ud800""#);
    }

    #[test]
    fn escaped_surrogate_pair_becomes_one_raw_character() {
        assert_eq!(canon(r#""\ud83d\ude00""#), "\"😀\"");
    }

    #[test]
    fn numbers_are_formatted_as_javascript_does() {
        let cases = [
            ("1.0", "1"),
            ("1e21", "1e+21"),
            ("1E2", "100"),
            ("-0", "0"),
            ("-0.0", "0"),
            ("1e-7", "1e-7"),
            ("0.000001", "0.000001"),
            ("123456789012345678901", "123456789012345680000"),
            ("9007199254740993", "9007199254740992"),
            ("1.5e300", "1.5e+300"),
            ("1e400", "null"),
            ("0.1", "0.1"),
            ("5e-324", "5e-324"),
        ];
        for (input, expected) in cases {
            assert_eq!(canon(input), expected, "number {input}");
        }
    }

    #[test]
    fn literals_pass_through() {
        assert_eq!(canon("[true,false,null]"), "[true,false,null]");
    }

    #[test]
    fn rejects_what_json_parse_rejects() {
        let bad = [
            "",
            " ",
            "{",
            "}",
            "[1,]",
            "{\"a\":1,}",
            "{a:1}",
            "'x'",
            "01",
            "1.",
            ".5",
            "+1",
            "1e",
            "-",
            "NaN",
            "Infinity",
            "tru",
            "nul",
            "\"\\x\"",
            "\"\\u12\"",
            "\"abc",
            "\"a\nb\"",
            "{} {}",
            "\u{feff}{}",
            "[1 2]",
            "{\"a\" 1}",
        ];
        for input in bad {
            assert_eq!(
                js_canonicalize(input.as_bytes(), 64),
                Err(CanonicalError::InvalidJson),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn nesting_beyond_the_limit_is_refused_without_recursing_further() {
        let deep = "[".repeat(100_000);
        assert_eq!(
            js_canonicalize(deep.as_bytes(), 64),
            Err(CanonicalError::TooDeep)
        );
        let ok = format!("{}{}", "[".repeat(64), "]".repeat(64));
        assert!(js_canonicalize(ok.as_bytes(), 64).is_ok());
        let over = format!("{}{}", "[".repeat(65), "]".repeat(65));
        assert_eq!(
            js_canonicalize(over.as_bytes(), 64),
            Err(CanonicalError::TooDeep)
        );
    }

    #[test]
    fn invalid_utf8_is_decoded_as_replacement_characters() {
        assert_eq!(
            js_canonicalize(b"\"a\xffb\"", 8).unwrap(),
            "\"a\u{fffd}b\"".as_bytes()
        );
    }
}
