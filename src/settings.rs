//! Runtime settings read from name → value lookups (the Worker's env, `.dev.vars`, a Node
//! service's options). Parsing and defaults live here so every adapter agrees; a problem is
//! reported by name (the variable's, or the adapter's own through [`Names`]), never with its
//! value.

use serde_json::{json, Value};

use crate::destinations::check_url;
use crate::eka::api::{EkaApiConfig, DEFAULT_BASE_URL, DEFAULT_TIMEOUT_MS};
use crate::eka::find::DEFAULT_FIND_CONCURRENCY;
use crate::event_log::{longest_claim_hold_ms, EventLogSettings};
use crate::reminders::{parse_offsets, Offset, DEFAULT_MAX_ATTEMPTS, DEFAULT_RETRY_BASE_MS};
use crate::signing::signature::{DEFAULT_MAX_DEPTH, DEFAULT_TOLERANCE_SECS, MAX_TOLERANCE_SECS};
use crate::support::bearer::MIN_ADMIN_TOKEN_CHARS;
use crate::webhook::event::allowed_events;
use crate::webhook::pipeline::{WebhookConfig, DEFAULT_MAX_BODY_BYTES, MAX_DEPTH_LIMIT};

/// The service's name, in health bodies and logs.
pub const SERVICE: &str = "eka-webhook-edge";
/// The service's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// The health route of every adapter.
pub const HEALTH_PATH: &str = "/eka-webhook-health";

/// How problems name settings. The lookup is always keyed by env-variable names; an adapter
/// whose users write other names (the Node package's `clientId`) reports problems under those.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Names {
    /// `(variable, shown as)`; a variable not in the table is shown as itself.
    pub table: &'static [(&'static str, &'static str)],
    /// Shown names in single quotes (`'clientId'`).
    pub quoted: bool,
    /// Said of a required setting that is missing.
    pub missing: &'static str,
}

impl Names {
    /// The env variables themselves (the Worker, `.dev.vars`).
    pub const ENV: Names = Names {
        table: &[],
        quoted: false,
        missing: "is not set",
    };

    /// How `variable` is shown in problems.
    pub fn show(&self, variable: &str) -> String {
        let name = self
            .table
            .iter()
            .find(|(v, _)| *v == variable)
            .map_or(variable, |(_, shown)| *shown);
        if self.quoted {
            format!("'{name}'")
        } else {
            name.to_owned()
        }
    }
}

/// Reminder settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderSettings {
    /// Where reminder contexts are POSTed; none means reminders cannot be scheduled.
    pub callback_url: Option<String>,
    /// Key that signs them.
    pub signing_key: Option<String>,
    /// Attempts before a reminder is marked failed.
    pub max_attempts: u32,
    /// First retry delay (doubling, capped at an hour).
    pub retry_base_ms: u64,
    /// Automatic reminders before each booking's start.
    pub offsets: Vec<Offset>,
}

/// Everything the Worker reads from its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Verification, allowed events, limits.
    pub webhook: WebhookConfig,
    /// Eka API client settings (credentials may be empty when missing; see `problems`).
    pub api: EkaApiConfig,
    /// Path of the webhook route, normalised (`/` by default).
    pub webhook_path: String,
    /// Bearer token for `/admin/*`; none hides those routes.
    pub admin_token: Option<String>,
    /// Where accepted events are forwarded.
    pub forward_url: Option<String>,
    /// `ORIGIN_URL`: the gate passes verified webhooks on to it untouched ([`crate::webhook::gate`]).
    pub origin_url: Option<String>,
    /// Key that signs forwarded events.
    pub forward_signing_key: Option<String>,
    /// Structured warning logs.
    pub debug: bool,
    /// Connections held at once by the range query.
    pub find_concurrency: usize,
    /// Reminder delivery.
    pub reminders: ReminderSettings,
    /// The event log: dedup window, retention, the replay key.
    pub events: EventLogSettings,
    /// Destinations: the pause rule, the retry schedule, `http://` for development.
    pub delivery: DeliverySettings,
    /// What is missing or malformed, by variable name. Non-empty means the webhook answers 500.
    pub problems: Vec<String>,
    /// What works but is weak (a short `ADMIN_TOKEN`): shown in admin health, no outage.
    pub warnings: Vec<String>,
}

/// Who reads the settings. The edge (the Worker: a public URL anyone can POST to) refuses
/// unsigned webhooks unless told otherwise; the npm package keeps the SDK's optional
/// verification (no key: verification is off).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    /// The Worker: `EKA_SIGNING_KEY` is required, or `ALLOW_UNSIGNED_WEBHOOKS=true`.
    Edge,
    /// The npm package: as the SDK, no key means no verification.
    Package,
}

impl Settings {
    /// The edge's settings, read through `get` (which returns `None` for unset variables);
    /// problems name the variables.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Settings {
        Settings::from_lookup_for(get, &Names::ENV, Host::Edge)
    }

    /// The npm package's settings (`get` is still asked for variables), with problems naming
    /// the settings as `names` shows them.
    pub fn from_lookup_named(get: impl Fn(&str) -> Option<String>, names: &Names) -> Settings {
        Settings::from_lookup_for(get, names, Host::Package)
    }

    /// Settings for `host`, problems named as `names` shows them.
    pub fn from_lookup_for(
        get: impl Fn(&str) -> Option<String>,
        names: &Names,
        host: Host,
    ) -> Settings {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut problems = Vec::new();
        let mut required = |name: &str| -> String {
            get(name).unwrap_or_else(|| {
                problems.push(format!("{} {}", names.show(name), names.missing));
                String::new()
            })
        };
        let client_id = required("EKA_CLIENT_ID");
        let client_secret = required("EKA_CLIENT_SECRET");
        let mut number = |name: &str, default: u64, max: u64| -> u64 {
            match get(name) {
                None => default,
                Some(text) => match text.parse::<u64>() {
                    Ok(n) if n <= max => n,
                    _ => {
                        problems.push(format!(
                            "{} must be a whole number from 0 to {max}",
                            names.show(name)
                        ));
                        default
                    }
                },
            }
        };
        let tolerance_secs = number(
            "SIGNATURE_TOLERANCE_SECONDS",
            DEFAULT_TOLERANCE_SECS,
            MAX_TOLERANCE_SECS,
        );
        let max_body_bytes = number(
            "MAX_BODY_BYTES",
            DEFAULT_MAX_BODY_BYTES as u64,
            100 * 1024 * 1024,
        );
        let max_depth = number(
            "MAX_JSON_DEPTH",
            DEFAULT_MAX_DEPTH as u64,
            MAX_DEPTH_LIMIT as u64,
        );
        let timeout_ms = number("EKA_API_TIMEOUT_MS", u64::from(DEFAULT_TIMEOUT_MS), 300_000);
        let find_concurrency =
            number("FIND_CONCURRENCY", DEFAULT_FIND_CONCURRENCY as u64, 64).max(1);
        let max_attempts = number(
            "REMINDER_MAX_ATTEMPTS",
            u64::from(DEFAULT_MAX_ATTEMPTS),
            100,
        )
        .max(1);
        let retry_base_ms =
            number("REMINDER_RETRY_BASE_MS", DEFAULT_RETRY_BASE_MS, 3_600_000).max(100);
        let offsets = match parse_offsets(get("REMINDER_OFFSETS").as_deref().unwrap_or("")) {
            Ok(offsets) => offsets,
            Err(why) => {
                problems.push(format!("{}: {why}", names.show("REMINDER_OFFSETS")));
                Vec::new()
            }
        };
        let base_url = get("EKA_API_BASE_URL").unwrap_or_else(|| DEFAULT_BASE_URL.to_owned());
        if !(base_url.starts_with("https://") || base_url.starts_with("http://")) {
            problems.push(format!(
                "{} must be an http(s) URL",
                names.show("EKA_API_BASE_URL")
            ));
        }
        let forward_url = get("FORWARD_URL");
        let callback_url = get("REMINDER_CALLBACK_URL");
        let origin_url = get("ORIGIN_URL");
        for (name, url) in [
            ("ORIGIN_URL", &origin_url),
            ("FORWARD_URL", &forward_url),
            ("REMINDER_CALLBACK_URL", &callback_url),
        ] {
            // Plain http only where it cannot leak: to this machine, in development.
            if url.as_deref().is_some_and(|u| check_url(u, true).is_err()) {
                problems.push(format!(
                    "{} must be an https:// URL (http:// only to 127.0.0.1 or localhost)",
                    names.show(name)
                ));
            }
        }
        for (url, url_name, key_name) in [
            (&forward_url, "FORWARD_URL", "FORWARD_SIGNING_KEY"),
            (
                &callback_url,
                "REMINDER_CALLBACK_URL",
                "REMINDER_SIGNING_KEY",
            ),
        ] {
            // Unsigned, the receiver could not tell what we send from a forgery.
            if url.is_some() && get(key_name).is_none() {
                problems.push(format!(
                    "{} is set but {} is not",
                    names.show(url_name),
                    names.show(key_name)
                ));
            }
        }
        if !offsets.is_empty() && callback_url.is_none() {
            problems.push(format!(
                "{} is set but {} is not",
                names.show("REMINDER_OFFSETS"),
                names.show("REMINDER_CALLBACK_URL")
            ));
        }
        let mut events = EventLogSettings::from_lookup(&get, &mut problems);
        events.fit_lease(
            longest_claim_hold_ms(
                u32::try_from(timeout_ms).unwrap_or(DEFAULT_TIMEOUT_MS),
                origin_url.is_some(),
            ),
            get("EVENT_CLAIM_LEASE_SECONDS").is_some(),
            &mut problems,
        );
        let delivery = DeliverySettings::from_lookup(&get, &mut problems);
        let list = |name: &str| -> Vec<String> {
            get(name)
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_owned())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default()
        };
        let admin_token = get("ADMIN_TOKEN");
        let mut warnings = Vec::new();
        if admin_token
            .as_deref()
            .is_some_and(|t| t.chars().count() < MIN_ADMIN_TOKEN_CHARS)
        {
            warnings.push(format!(
                "{} is shorter than {MIN_ADMIN_TOKEN_CHARS} characters: use a long random token",
                names.show("ADMIN_TOKEN")
            ));
        }
        let signing_keys = list("EKA_SIGNING_KEY");
        let allow_unsigned = match host {
            Host::Package => true,
            Host::Edge => get("ALLOW_UNSIGNED_WEBHOOKS")
                .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1"),
        };
        if signing_keys.is_empty() {
            if !allow_unsigned {
                problems.push(format!(
                    "{} is not set: webhooks cannot be verified (ALLOW_UNSIGNED_WEBHOOKS=true accepts them unsigned)",
                    names.show("EKA_SIGNING_KEY")
                ));
            } else if host == Host::Edge {
                warnings.push(
                    "ALLOW_UNSIGNED_WEBHOOKS is true and EKA_SIGNING_KEY is not set: webhooks are accepted without a signature"
                        .to_owned(),
                );
            }
        }
        Settings {
            webhook: WebhookConfig {
                signing_keys,
                allow_unsigned,
                tolerance_secs,
                allowed_events: allowed_events(&list("ALLOWED_EVENTS")),
                max_body_bytes: usize::try_from(max_body_bytes).unwrap_or(DEFAULT_MAX_BODY_BYTES),
                max_depth: usize::try_from(max_depth).unwrap_or(DEFAULT_MAX_DEPTH),
                source: None,
                dedup_window_ms: None,
                claim_lease_ms: None,
            },
            api: EkaApiConfig {
                base_url: base_url.trim_end_matches('/').to_owned(),
                client_id,
                client_secret,
                api_key: get("EKA_API_KEY"),
                timeout_ms: u32::try_from(timeout_ms).unwrap_or(DEFAULT_TIMEOUT_MS),
            },
            webhook_path: normalise_path(get("WEBHOOK_PATH").as_deref().unwrap_or("/")),
            admin_token,
            origin_url,
            forward_url,
            forward_signing_key: get("FORWARD_SIGNING_KEY"),
            debug: get("DEBUG").is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1"),
            find_concurrency: usize::try_from(find_concurrency).unwrap_or(DEFAULT_FIND_CONCURRENCY),
            reminders: ReminderSettings {
                callback_url,
                signing_key: get("REMINDER_SIGNING_KEY"),
                max_attempts: u32::try_from(max_attempts).unwrap_or(DEFAULT_MAX_ATTEMPTS),
                retry_base_ms,
                offsets,
            },
            events,
            delivery,
            problems,
            warnings,
        }
    }

    /// `ok`, or `misconfigured` while there are problems.
    pub fn status(&self) -> &'static str {
        if self.problems.is_empty() {
            "ok"
        } else {
            "misconfigured"
        }
    }

    /// The public health body: the status and the version, nothing else (the webhook path,
    /// the checks and the features are for the admin's [`Settings::health`]).
    pub fn public_health(&self, version: &str) -> Value {
        json!({ "status": self.status(), "version": version })
    }

    /// The admin health body: which features are on, the problems and warnings, no secrets.
    pub fn health(&self, service: &str, version: &str) -> Value {
        json!({
            "status": self.status(),
            "service": service,
            "version": version,
            "problems": self.problems,
            "warnings": self.warnings,
            "signatureVerification": self.webhook.verifies_signatures(),
            "unsignedWebhooks": self.webhook.accepts_unsigned(),
            "signingKeys": self.webhook.signing_keys.len(),
            "toleranceSeconds": self.webhook.tolerance_secs,
            "allowedEvents": self.webhook.allowed_events,
            "webhookPath": self.webhook_path,
            "forward": self.forward_url.is_some(),
            "forwardSigned": self.forward_url.is_some() && self.forward_signing_key.is_some(),
            "admin": self.admin_token.is_some(),
            "apiKey": self.api.api_key.is_some(),
            "debug": self.debug,
            "reminders": self.reminders.callback_url.is_some(),
            "remindersSigned": self.reminders.callback_url.is_some() && self.reminders.signing_key.is_some(),
            "reminderOffsets": self.reminders.offsets.iter().map(|o| o.label.as_str()).collect::<Vec<_>>(),
            "reminderMaxAttempts": self.reminders.max_attempts,
        })
    }
}

/// How destinations are delivered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliverySettings {
    /// `DESTINATION_PAUSE_AFTER` (default 5; 0 never pauses, except on a 410).
    pub pause_after: u32,
    /// `ALLOW_HTTP_DESTINATIONS=true`: `http://127.0.0.1` and `http://localhost` are accepted
    /// (development and tests).
    pub allow_http: bool,
    /// `DELIVERY_RETRY_SCHEDULE_MS` (comma-separated ms, the first normally 0): replaces
    /// Svix's schedule, for tests and development. Its length is the number of attempts.
    pub schedule_ms: Vec<u64>,
}

impl DeliverySettings {
    /// Reads the settings through `get`; problems name the variable, never its value.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>, problems: &mut Vec<String>) -> Self {
        let pause_after = match get("DESTINATION_PAUSE_AFTER") {
            None => crate::destinations::DEFAULT_PAUSE_AFTER,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|n| *n <= 1000)
                .unwrap_or_else(|| {
                    problems.push(
                        "DESTINATION_PAUSE_AFTER must be a whole number from 0 to 1000".into(),
                    );
                    crate::destinations::DEFAULT_PAUSE_AFTER
                }),
        };
        let default_schedule = crate::support::retry::DELIVERY_SCHEDULE_MS.to_vec();
        let schedule_ms = match get("DELIVERY_RETRY_SCHEDULE_MS") {
            None => default_schedule,
            Some(text) => {
                let parsed: Option<Vec<u64>> = text
                    .split(',')
                    .map(|part| {
                        part.trim()
                            .parse::<u64>()
                            .ok()
                            .filter(|ms| *ms <= 86_400_000)
                    })
                    .collect();
                match parsed {
                    Some(list) if (1..=20).contains(&list.len()) => list,
                    _ => {
                        problems.push(
                            "DELIVERY_RETRY_SCHEDULE_MS must be 1 to 20 comma-separated delays in ms, each at most a day"
                                .into(),
                        );
                        default_schedule
                    }
                }
            }
        };
        DeliverySettings {
            pause_after,
            allow_http: get("ALLOW_HTTP_DESTINATIONS")
                .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1"),
            schedule_ms,
        }
    }
}

/// Paths compare without the query and without a trailing `/` (`""` is `/`), as the SDK.
pub fn normalise_path(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else if trimmed.starts_with('/') {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Settings {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    const CREDS: [(&str, &str); 3] = [
        ("EKA_CLIENT_ID", "id"),
        ("EKA_CLIENT_SECRET", "s3cret"),
        ("EKA_SIGNING_KEY", "k"),
    ];

    #[test]
    fn defaults_with_credentials_only() {
        let s = settings(&CREDS);
        assert!(s.problems.is_empty());
        assert_eq!(s.api.base_url, "https://api.eka.care");
        assert_eq!(s.webhook.tolerance_secs, 300);
        assert_eq!(s.webhook.allowed_events.len(), 4);
        assert!(s.webhook.verifies_signatures() && !s.webhook.accepts_unsigned());
        assert_eq!(s.webhook_path, "/");
        assert_eq!(s.find_concurrency, 6);
        assert!(s.admin_token.is_none() && s.forward_url.is_none() && !s.debug);
    }

    #[test]
    fn delivery_settings_default_to_svix_and_five_and_name_bad_values() {
        let s = settings(&CREDS);
        assert_eq!(s.delivery.pause_after, 5);
        assert!(!s.delivery.allow_http);
        assert_eq!(
            s.delivery.schedule_ms,
            crate::support::retry::DELIVERY_SCHEDULE_MS.to_vec()
        );
        let mut pairs = CREDS.to_vec();
        pairs.extend([
            ("DESTINATION_PAUSE_AFTER", "0"),
            ("ALLOW_HTTP_DESTINATIONS", "true"),
            ("DELIVERY_RETRY_SCHEDULE_MS", "0, 100,200"),
        ]);
        let s = settings(&pairs);
        assert_eq!(s.delivery.pause_after, 0);
        assert!(s.delivery.allow_http);
        assert_eq!(s.delivery.schedule_ms, vec![0, 100, 200]);
        let mut pairs = CREDS.to_vec();
        pairs.extend([
            ("DESTINATION_PAUSE_AFTER", "-1"),
            ("DELIVERY_RETRY_SCHEDULE_MS", "0,soon"),
        ]);
        let s = settings(&pairs);
        assert_eq!(s.problems.len(), 2, "{:?}", s.problems);
        assert!(s.problems[0].starts_with("DESTINATION_PAUSE_AFTER"));
        assert!(s.problems[1].starts_with("DELIVERY_RETRY_SCHEDULE_MS"));
        assert_eq!(s.delivery.pause_after, 5);
    }

    #[test]
    fn missing_credentials_are_named() {
        let s = settings(&[("EKA_CLIENT_SECRET", "  "), ("EKA_SIGNING_KEY", "k")]);
        assert_eq!(
            s.problems,
            ["EKA_CLIENT_ID is not set", "EKA_CLIENT_SECRET is not set"]
        );
    }

    #[test]
    fn lists_numbers_and_flags_are_parsed() {
        let mut pairs = CREDS.to_vec();
        pairs.extend([
            ("EKA_SIGNING_KEY", "new, old ,"),
            ("SIGNATURE_TOLERANCE_SECONDS", "0"),
            (
                "ALLOWED_EVENTS",
                "appointment.created, appointment.statuschange",
            ),
            ("WEBHOOK_PATH", "hooks/eka/"),
            ("DEBUG", "TRUE"),
            ("EKA_API_BASE_URL", "https://api.dev.eka.care/"),
        ]);
        let s = settings(&pairs);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        assert_eq!(s.webhook.signing_keys, ["new", "old"]);
        assert_eq!(s.webhook.tolerance_secs, 0);
        assert_eq!(
            s.webhook.allowed_events,
            ["appointment.created", "appointment.statuschange"]
        );
        assert_eq!(s.webhook_path, "/hooks/eka");
        assert!(s.debug);
        assert_eq!(s.api.base_url, "https://api.dev.eka.care");
    }

    #[test]
    fn malformed_values_are_problems_that_name_the_variable_not_the_value() {
        let mut pairs = CREDS.to_vec();
        pairs.extend([
            ("SIGNATURE_TOLERANCE_SECONDS", "-5"),
            ("FORWARD_URL", "ftp://origin"),
            ("FORWARD_SIGNING_KEY", "f"),
            ("EKA_API_BASE_URL", "api.eka.care"),
        ]);
        let s = settings(&pairs);
        assert_eq!(s.problems.len(), 3, "{:?}", s.problems);
        assert!(s.problems[0].starts_with("SIGNATURE_TOLERANCE_SECONDS must be"));
        assert!(s
            .problems
            .iter()
            .all(|p| !p.contains("-5") && !p.contains("ftp")));
    }

    #[test]
    fn reminder_settings_parse_and_need_a_callback_for_offsets() {
        let mut pairs = CREDS.to_vec();
        pairs.extend([
            ("REMINDER_OFFSETS", "24h,15m"),
            ("REMINDER_MAX_ATTEMPTS", "3"),
        ]);
        let s = settings(&pairs);
        assert_eq!(
            s.problems,
            ["REMINDER_OFFSETS is set but REMINDER_CALLBACK_URL is not"]
        );
        pairs.push(("REMINDER_CALLBACK_URL", "http://127.0.0.1:9/cb"));
        pairs.push(("REMINDER_SIGNING_KEY", "r"));
        let s = settings(&pairs);
        assert!(s.problems.is_empty());
        assert_eq!(s.reminders.offsets.len(), 2);
        assert_eq!(s.reminders.max_attempts, 3);
        assert_eq!(s.reminders.retry_base_ms, 30_000);
        pairs.push(("REMINDER_OFFSETS", "soon"));
        let s = settings(&[("REMINDER_OFFSETS", "soon")]);
        assert!(s
            .problems
            .iter()
            .any(|p| p.starts_with("REMINDER_OFFSETS: ")));
    }

    #[test]
    fn health_shows_features_but_no_secrets() {
        let mut pairs = CREDS.to_vec();
        pairs.extend([
            ("EKA_SIGNING_KEY", "whsec"),
            ("ADMIN_TOKEN", "adm"),
            ("EKA_API_KEY", "k9"),
        ]);
        let h = settings(&pairs)
            .health("eka-webhook-edge", "0.1.0")
            .to_string();
        for secret in ["s3cret", "whsec", "adm\"", "k9"] {
            assert!(!h.contains(secret), "{h}");
        }
        assert!(h.contains("\"signatureVerification\":true"));
        assert!(h.contains("\"status\":\"ok\""));
    }

    #[test]
    fn public_health_is_the_status_and_version_only() {
        let mut pairs = CREDS.to_vec();
        pairs.extend([("EKA_SIGNING_KEY", "k"), ("WEBHOOK_PATH", "/secret-path")]);
        let s = settings(&pairs);
        assert_eq!(
            s.public_health("1.2.3"),
            json!({"status": "ok", "version": "1.2.3"})
        );
        let broken = settings(&[("EKA_CLIENT_ID", "id"), ("EKA_SIGNING_KEY", "k")]);
        assert_eq!(
            broken.public_health("1.2.3"),
            json!({"status": "misconfigured", "version": "1.2.3"})
        );
        // The detail (and what is wrong) is the admin's.
        let detail = broken.health("eka-webhook-edge", "1.2.3");
        assert_eq!(detail["problems"], json!(["EKA_CLIENT_SECRET is not set"]));
    }

    #[test]
    fn a_short_admin_token_is_a_warning_not_a_problem() {
        let mut pairs = CREDS.to_vec();
        pairs.push(("ADMIN_TOKEN", "short-token"));
        let s = settings(&pairs);
        assert!(s.problems.is_empty());
        assert_eq!(
            s.warnings,
            ["ADMIN_TOKEN is shorter than 32 characters: use a long random token"]
        );
        assert_eq!(s.health("x", "1")["warnings"], json!(s.warnings));
        assert_eq!(s.status(), "ok");
        let long = "k".repeat(32);
        pairs.push(("ADMIN_TOKEN", &long));
        let map: HashMap<&str, &str> = pairs.iter().copied().collect();
        let s = Settings::from_lookup(|n| map.get(n).map(|v| v.to_string()));
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn problems_can_name_the_settings_as_another_adapter_does() {
        const NODE: Names = Names {
            table: &[
                ("EKA_CLIENT_ID", "clientId"),
                ("SIGNATURE_TOLERANCE_SECONDS", "toleranceSeconds"),
                ("EKA_API_BASE_URL", "apiBaseUrl"),
            ],
            quoted: true,
            missing: "is required",
        };
        let map: HashMap<&str, &str> = [
            ("EKA_CLIENT_SECRET", "s3cret"),
            ("SIGNATURE_TOLERANCE_SECONDS", "1.5"),
            ("EKA_API_BASE_URL", "ftp://x"),
            ("MAX_BODY_BYTES", "lots"),
        ]
        .into_iter()
        .collect();
        let s = Settings::from_lookup_named(|name| map.get(name).map(|v| v.to_string()), &NODE);
        assert_eq!(
            s.problems,
            [
                "'clientId' is required",
                "'toleranceSeconds' must be a whole number from 0 to 31536000",
                "'MAX_BODY_BYTES' must be a whole number from 0 to 104857600",
                "'apiBaseUrl' must be an http(s) URL",
            ]
        );
        assert_eq!(Names::ENV.show("EKA_CLIENT_ID"), "EKA_CLIENT_ID");
    }

    #[test]
    fn paths_normalise_like_the_sdk() {
        for (input, want) in [
            ("", "/"),
            ("/", "/"),
            ("//", "/"),
            ("/a/", "/a"),
            ("a", "/a"),
            ("/a?x=1", "/a"),
        ] {
            assert_eq!(normalise_path(input), want, "{input:?}");
        }
    }
}
