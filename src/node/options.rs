//! The `WebhookSDK` options object → the settings lookup. Only JavaScript types are checked
//! here (a wrong type is reported by option name, never with the value); parsing, defaults
//! and every other problem are `Settings`'.

use std::collections::HashMap;

use js_sys::{Array, Reflect};
use wasm_bindgen::JsValue;

use crate::settings::{Names, Settings};

/// The JavaScript type an option takes.
#[derive(Clone, Copy)]
enum Kind {
    /// A string.
    Text,
    /// A number (parsed and range-checked by `Settings`).
    Number,
    /// A boolean; a string or number is handed to `Settings` as it is (`DEBUG`'s `true`/`1`).
    Flag,
    /// A string (comma-separated list) or an array of strings.
    TextOrList,
    /// An array of strings.
    List,
}

/// The options that are settings: `(env variable, option, type)`.
const OPTIONS: [(&str, &str, Kind); 12] = [
    ("EKA_CLIENT_ID", "clientId", Kind::Text),
    ("EKA_CLIENT_SECRET", "clientSecret", Kind::Text),
    ("EKA_API_KEY", "apiKey", Kind::Text),
    ("EKA_API_BASE_URL", "apiBaseUrl", Kind::Text),
    ("EKA_API_TIMEOUT_MS", "timeoutMs", Kind::Number),
    ("EKA_SIGNING_KEY", "signingKey", Kind::TextOrList),
    (
        "SIGNATURE_TOLERANCE_SECONDS",
        "toleranceSeconds",
        Kind::Number,
    ),
    ("ALLOWED_EVENTS", "allowedEvents", Kind::List),
    ("MAX_BODY_BYTES", "maxBodyBytes", Kind::Number),
    ("WEBHOOK_PATH", "path", Kind::Text),
    ("FIND_CONCURRENCY", "findConcurrency", Kind::Number),
    ("DEBUG", "debug", Kind::Flag),
];

const fn name_table<const N: usize>(
    options: [(&'static str, &'static str, Kind); N],
) -> [(&'static str, &'static str); N] {
    let mut table = [("", ""); N];
    let mut i = 0;
    while i < N {
        table[i] = (options[i].0, options[i].1);
        i += 1;
    }
    table
}

const NAME_TABLE: [(&str, &str); OPTIONS.len()] = name_table(OPTIONS);

/// Problems name the options as a Node user writes them: `'clientId' is required`.
pub const NODE_NAMES: Names = Names {
    table: &NAME_TABLE,
    quoted: true,
    missing: "is required",
};

/// Prefixes what the constructor throws.
pub fn sdk_error(problems: &[String]) -> JsValue {
    js_sys::TypeError::new(&format!("WebhookSDK: {}", problems.join("; "))).into()
}

/// Settings from the options object; a wrong type, or any problem `Settings` finds, is the
/// error (all of them, each naming its option).
pub fn settings_from(options: &JsValue) -> Result<Settings, JsValue> {
    if !options.is_object() {
        return Err(sdk_error(&["the options must be an object".to_owned()]));
    }
    let mut values = HashMap::new();
    let mut wrong = Vec::new();
    for (variable, option, kind) in OPTIONS {
        let value = Reflect::get(options, &JsValue::from_str(option)).unwrap_or(JsValue::UNDEFINED);
        match text_of(&value, kind) {
            Ok(Some(text)) => {
                values.insert(variable, text);
            }
            Ok(None) => {}
            Err(expected) => wrong.push(format!("{} {expected}", NODE_NAMES.show(variable))),
        }
    }
    if !wrong.is_empty() {
        return Err(sdk_error(&wrong));
    }
    let settings = Settings::from_lookup_named(|name| values.get(name).cloned(), &NODE_NAMES);
    if settings.problems.is_empty() {
        Ok(settings)
    } else {
        Err(sdk_error(&settings.problems))
    }
}

/// The lookup's text for one option; `Err` says what type was expected.
fn text_of(value: &JsValue, kind: Kind) -> Result<Option<String>, &'static str> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    let text = match kind {
        Kind::Text => value.as_string().ok_or("must be a string")?,
        Kind::Number => value.as_f64().map(number_text).ok_or("must be a number")?,
        Kind::Flag => match (value.as_bool(), value.as_f64(), value.as_string()) {
            (Some(flag), _, _) => flag.to_string(),
            (_, Some(n), _) => number_text(n),
            (_, _, Some(text)) => text,
            _ => return Err("must be a boolean"),
        },
        Kind::TextOrList => match value.as_string() {
            Some(text) => text,
            None => list(value).ok_or("must be a string or an array of strings")?,
        },
        Kind::List => list(value).ok_or("must be an array of strings")?,
    };
    Ok(Some(text))
}

/// An array of strings as the comma-separated text `Settings` reads.
fn list(value: &JsValue) -> Option<String> {
    if !Array::is_array(value) {
        return None;
    }
    let items: Option<Vec<String>> = Array::from(value).iter().map(|v| v.as_string()).collect();
    items.map(|items| items.join(","))
}

/// A whole number as digits; anything else as text `Settings` will refuse (`1.5`, `-5`, `NaN`).
fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&n) {
        format!("{}", n as u64)
    } else {
        n.to_string()
    }
}
