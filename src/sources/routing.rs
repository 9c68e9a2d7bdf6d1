//! Which source a webhook is for, and the settings it runs with.
//!
//! - `/hooks/{sourceId}` is a source's own path; an unknown id answers 404, a disabled source
//!   503 with `Retry-After` (Eka keeps the event and delivers it again later).
//! - At the default path, a body whose top-level `business_id` belongs to exactly one source
//!   may be routed to it; it is then verified with *that source's* keys only, so an unverified
//!   field can pick a source but never a key that accepts a forgery.
//! - A source runs with [`effective_settings`]: its own credentials, keys, events, origin,
//!   reminder settings and duplicate window over the environment's defaults.
//! - An isolate keeps the sources it read ([`cache_use`]): after [`CACHE_REFRESH_AFTER_MS`] it
//!   reads them again in the background while still answering from its copy, and a copy
//!   [`CACHE_MAX_AGE_MS`] old is never used, so a change made through another isolate takes
//!   effect everywhere within that bound.

use super::store::SourceRecord;
use super::{SourceSecrets, DEFAULT_SOURCE_ID};
use crate::event_log::longest_claim_hold_ms;
use crate::reminders::{parse_offsets, Offset};
use crate::settings::Settings;

/// Where the sources' paths start.
pub const HOOKS_PREFIX: &str = "/hooks/";
/// After this age an isolate's copy of the sources is read again in the background (the copy
/// still answers meanwhile): 1 second.
pub const CACHE_REFRESH_AFTER_MS: i64 = 1_000;
/// A copy this old is never used (the request reads D1 first): 5 seconds, the bound on how
/// fast a change made through another isolate takes effect.
pub const CACHE_MAX_AGE_MS: i64 = 5_000;
/// A background read not back after this is taken as lost: the next request starts another.
pub const CACHE_REFRESH_TIMEOUT_MS: i64 = 3_000;
/// `Retry-After` of a disabled source, in seconds.
pub const DISABLED_RETRY_AFTER_SECS: u64 = 60;

/// The source id in a normalised path `/hooks/{id}` (one non-empty segment).
pub fn path_source_id(path: &str) -> Option<&str> {
    path.strip_prefix(HOOKS_PREFIX)
        .filter(|id| !id.is_empty() && !id.contains('/'))
}

/// What a request does with an isolate's copy of the sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheUse {
    /// Use it.
    Fresh,
    /// Use it, and read the sources again in the background.
    Refresh,
    /// Do not use it: read the sources before answering.
    Reload,
}

/// What to do at `now_ms` with sources read at `loaded_at_ms`, a background read having
/// started at `refreshing_since_ms` (none: no read in flight).
pub fn cache_use(loaded_at_ms: i64, now_ms: i64, refreshing_since_ms: Option<i64>) -> CacheUse {
    // A clock that went back does not keep a stale copy forever.
    if now_ms < loaded_at_ms || now_ms - loaded_at_ms >= CACHE_MAX_AGE_MS {
        return CacheUse::Reload;
    }
    if now_ms - loaded_at_ms < CACHE_REFRESH_AFTER_MS {
        return CacheUse::Fresh;
    }
    let in_flight = refreshing_since_ms
        .is_some_and(|at| now_ms >= at && now_ms - at < CACHE_REFRESH_TIMEOUT_MS);
    if in_flight {
        CacheUse::Fresh
    } else {
        CacheUse::Refresh
    }
}

/// The top-level `business_id` of a body, when it is a JSON object with a string there.
pub fn body_business_id(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    value
        .get("business_id")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
}

/// The source a default-path body is routed to: the one source whose business id it carries.
pub fn route_by_business_id<'a>(
    business_id: Option<&str>,
    sources: &'a [SourceRecord],
) -> Option<&'a SourceRecord> {
    let business_id = business_id?;
    let mut matching = sources
        .iter()
        .filter(|s| s.spec.business_id.as_deref() == Some(business_id));
    let first = matching.next()?;
    matching.next().is_none().then_some(first)
}

/// What a webhook at a path is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake<'a> {
    /// The environment's account.
    Default,
    /// A source, enabled.
    Source(&'a SourceRecord),
    /// A source whose intake is paused: 503 with `Retry-After`.
    Disabled,
    /// No such source: 404.
    Unknown,
}

/// The intake of `/hooks/{id}`.
pub fn intake_at<'a>(id: &str, sources: &'a [SourceRecord]) -> Intake<'a> {
    if id == DEFAULT_SOURCE_ID {
        return Intake::Default;
    }
    match sources.iter().find(|s| s.id == id) {
        None => Intake::Unknown,
        Some(s) if !s.spec.enabled => Intake::Disabled,
        Some(s) => Intake::Source(s),
    }
}

/// The variables a source's own value replaces, so the environment's problems with them do
/// not make the source misconfigured.
fn overridden(spec: &super::SourceSpec, secrets: &SourceSecrets) -> Vec<&'static str> {
    let mut names = vec!["EKA_CLIENT_ID", "EKA_CLIENT_SECRET", "EKA_SIGNING_KEY"];
    let optional = [
        (spec.api_base_url.is_some(), "EKA_API_BASE_URL"),
        (spec.origin_url.is_some(), "ORIGIN_URL"),
        (
            spec.reminder_callback_url.is_some(),
            "REMINDER_CALLBACK_URL",
        ),
        (spec.reminder_offsets.is_some(), "REMINDER_OFFSETS"),
        (spec.dedup_window_hours.is_some(), "DEDUP_WINDOW_HOURS"),
        (spec.allowed_events.is_some(), "ALLOWED_EVENTS"),
        (secrets.api_key.is_some(), "EKA_API_KEY"),
    ];
    names.extend(optional.iter().filter(|(set, _)| *set).map(|(_, n)| *n));
    names
}

/// The settings a source's webhooks run with: the environment's, with the source's own
/// credentials, signing keys, base URL, allowed events, origin, reminder callback, key and
/// offsets, and duplicate window where it sets them, and `/hooks/{id}` as the path.
pub fn effective_settings(
    base: &Settings,
    record: &SourceRecord,
    secrets: &SourceSecrets,
) -> Settings {
    let spec = &record.spec;
    let mut s = base.clone();
    s.webhook_path = super::webhook_path(&record.id);
    s.webhook.signing_keys = secrets.signing_keys.clone();
    s.webhook.source = Some(record.id.clone());
    if let Some(events) = &spec.allowed_events {
        s.webhook.allowed_events = events.clone();
    }
    if let Some(url) = &spec.api_base_url {
        s.api.base_url = url.trim_end_matches('/').to_owned();
    }
    s.api.client_id = secrets.client_id.clone();
    s.api.client_secret = secrets.client_secret.clone();
    s.api.api_key = secrets.api_key.clone().or(s.api.api_key);
    if spec.origin_url.is_some() {
        s.origin_url = spec.origin_url.clone();
    }
    if spec.reminder_callback_url.is_some() {
        s.reminders.callback_url = spec.reminder_callback_url.clone();
    }
    if secrets.reminder_signing_key.is_some() {
        s.reminders.signing_key = secrets.reminder_signing_key.clone();
    }
    if let Some(offsets) = &spec.reminder_offsets {
        // Checked when the source was written; a row that no longer parses keeps none.
        s.reminders.offsets = parse_offsets(offsets).unwrap_or_default();
    }
    if let Some(hours) = spec.dedup_window_hours {
        // Never past the environment's: the objects forget claims after that.
        let window = hours
            .saturating_mul(3_600_000)
            .min(base.events.dedup_window_ms);
        s.events.dedup_window_ms = window;
        s.webhook.dedup_window_ms = Some(window);
    }
    let overridden = overridden(spec, secrets);
    s.problems
        .retain(|p| !overridden.iter().any(|name| p.starts_with(name)));
    // The rules whose environment problems were just dropped, on the source's own values (a
    // row written before these rules were checked at create/update stops here).
    if spec.reminder_callback_url.is_some() && s.reminders.signing_key.is_none() {
        s.problems.push(
            "reminderCallbackUrl is set but reminderSigningKey (or REMINDER_SIGNING_KEY) is not"
                .to_owned(),
        );
    }
    if spec.origin_url.is_some() {
        let explicit = s.events.lease_explicit;
        let longest = longest_claim_hold_ms(s.api.timeout_ms, true);
        s.events.fit_lease(longest, explicit, &mut s.problems);
    }
    // The object decides claims with the environment's lease unless the claim says otherwise.
    s.webhook.claim_lease_ms =
        (s.events.lease_ms != base.events.lease_ms).then_some(s.events.lease_ms);
    s
}

/// Which account an appointment's reminders run with: whose Eka API fetches the context at
/// fire time, and whose callback URL, signing key and offsets apply (each, where the source
/// sets none, the environment's: [`effective_settings`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReminderAccount<'a> {
    /// The environment's account (no source recorded, or `default`).
    Environment,
    /// The source the appointment arrived at; paused or not (a pause holds intake only).
    Source(&'a SourceRecord),
    /// That source was deleted: its reminders are cancelled, never sent with another
    /// account's callback or credentials.
    Gone,
}

/// The account of an appointment recorded as arriving at `source_id` (none: never recorded,
/// the environment's as before sources existed).
pub fn reminder_account<'a>(
    source_id: Option<&str>,
    records: &'a [SourceRecord],
) -> ReminderAccount<'a> {
    match source_id {
        None | Some(DEFAULT_SOURCE_ID) => ReminderAccount::Environment,
        Some(id) => records
            .iter()
            .find(|r| r.id == id)
            .map_or(ReminderAccount::Gone, ReminderAccount::Source),
    }
}

/// What the reminder sweep covers: whether any account (the environment's, or a source's own
/// or inherited callback) can deliver reminders, and the offsets of those that can (the
/// window runs to the longest).
pub fn sweep_reminders(base: &Settings, records: &[SourceRecord]) -> (bool, Vec<Offset>) {
    let mut any = false;
    let mut offsets = Vec::new();
    if base.reminders.callback_url.is_some() {
        any = true;
        offsets.extend(base.reminders.offsets.iter().cloned());
    }
    for spec in records.iter().map(|r| &r.spec) {
        if spec.reminder_callback_url.is_none() && base.reminders.callback_url.is_none() {
            continue;
        }
        any = true;
        match &spec.reminder_offsets {
            Some(own) => offsets.extend(parse_offsets(own).unwrap_or_default()),
            None => offsets.extend(base.reminders.offsets.iter().cloned()),
        }
    }
    (any, offsets)
}

/// The `default` source as the admin API shows it: the environment's account, read-only.
pub fn default_source(settings: &Settings) -> (super::SourceSpec, SourceSecrets) {
    let offsets: Vec<&str> = settings
        .reminders
        .offsets
        .iter()
        .map(|o| o.label.as_str())
        .collect();
    let spec = super::SourceSpec {
        name: "Environment (EKA_* variables)".to_owned(),
        enabled: true,
        api_base_url: Some(settings.api.base_url.clone()),
        allowed_events: Some(settings.webhook.allowed_events.clone()),
        business_id: None,
        origin_url: settings.origin_url.clone(),
        reminder_callback_url: settings.reminders.callback_url.clone(),
        reminder_offsets: (!offsets.is_empty()).then(|| offsets.join(",")),
        dedup_window_hours: Some(settings.events.dedup_window_ms / 3_600_000),
    };
    let secrets = SourceSecrets {
        client_id: settings.api.client_id.clone(),
        client_secret: settings.api.client_secret.clone(),
        api_key: settings.api.api_key.clone(),
        signing_keys: settings.webhook.signing_keys.clone(),
        reminder_signing_key: settings.reminders.signing_key.clone(),
    };
    (spec, secrets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::SourceSpec;
    use std::collections::HashMap;

    fn record(id: &str, business: Option<&str>, enabled: bool) -> SourceRecord {
        SourceRecord {
            id: id.into(),
            spec: SourceSpec {
                name: id.into(),
                enabled,
                api_base_url: None,
                allowed_events: None,
                business_id: business.map(str::to_owned),
                origin_url: None,
                reminder_callback_url: None,
                reminder_offsets: None,
                dedup_window_hours: None,
            },
            sealed_secrets: "v1.x".into(),
            created_at: 1,
            updated_at: 1,
        }
    }

    fn secrets() -> SourceSecrets {
        SourceSecrets {
            client_id: "cid-a".into(),
            client_secret: "csec-a".into(),
            api_key: None,
            signing_keys: vec!["key-a2".into(), "key-a1".into()],
            reminder_signing_key: None,
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Settings {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn only_one_segment_under_hooks_is_a_source_path() {
        assert_eq!(path_source_id("/hooks/src_1"), Some("src_1"));
        assert_eq!(path_source_id("/hooks/default"), Some("default"));
        assert_eq!(path_source_id("/hooks/"), None);
        assert_eq!(path_source_id("/hooks/a/b"), None);
        assert_eq!(path_source_id("/hooksx/a"), None);
        assert_eq!(path_source_id("/"), None);
    }

    #[test]
    fn intake_is_unknown_disabled_or_the_source() {
        let sources = [record("src_a", None, true), record("src_b", None, false)];
        assert_eq!(intake_at("src_a", &sources), Intake::Source(&sources[0]));
        assert_eq!(intake_at("src_b", &sources), Intake::Disabled);
        assert_eq!(intake_at("src_c", &sources), Intake::Unknown);
        assert_eq!(intake_at("default", &sources), Intake::Default);
    }

    #[test]
    fn a_business_id_routes_only_to_exactly_one_source() {
        let sources = [
            record("src_a", Some("biz-a"), true),
            record("src_b", Some("biz-b"), true),
        ];
        let a = route_by_business_id(Some("biz-a"), &sources).map(|s| s.id.as_str());
        assert_eq!(a, Some("src_a"));
        assert!(route_by_business_id(Some("biz-x"), &sources).is_none());
        assert!(route_by_business_id(None, &sources).is_none());
        // Two rows with one business id (the unique index forbids it; a stale cache could
        // hold it): ambiguous, so not routed.
        let twice = [
            record("src_a", Some("biz"), true),
            record("src_b", Some("biz"), true),
        ];
        assert!(route_by_business_id(Some("biz"), &twice).is_none());
        let body = br#"{"event":"appointment.created","business_id":"biz-b","data":{}}"#;
        assert_eq!(body_business_id(body).as_deref(), Some("biz-b"));
        assert_eq!(body_business_id(br#"{"business_id":7}"#), None);
        assert_eq!(body_business_id(b"not json"), None);
    }

    #[test]
    fn the_cache_answers_then_refreshes_in_the_background_within_a_hard_bound() {
        let at = 1_000;
        assert_eq!(cache_use(at, at, None), CacheUse::Fresh);
        assert_eq!(
            cache_use(at, at + CACHE_REFRESH_AFTER_MS - 1, None),
            CacheUse::Fresh
        );
        // Stale: still used, and one background read starts.
        let stale = at + CACHE_REFRESH_AFTER_MS;
        assert_eq!(cache_use(at, stale, None), CacheUse::Refresh);
        // While that read is in flight no other starts...
        assert_eq!(cache_use(at, stale + 100, Some(stale)), CacheUse::Fresh);
        // ...unless it is lost (never came back in time).
        let lost = stale + CACHE_REFRESH_TIMEOUT_MS;
        assert!(lost < at + CACHE_MAX_AGE_MS);
        assert_eq!(cache_use(at, lost, Some(stale)), CacheUse::Refresh);
        // A read marked in the future (a clock that went back) is not in flight.
        assert_eq!(cache_use(at, stale, Some(stale + 1)), CacheUse::Refresh);
        // The hard bound: never used at its age, in flight or not.
        let old = at + CACHE_MAX_AGE_MS;
        assert_eq!(cache_use(at, old - 1, Some(old - 2)), CacheUse::Fresh);
        assert_eq!(cache_use(at, old, None), CacheUse::Reload);
        assert_eq!(cache_use(at, old, Some(old - 1)), CacheUse::Reload);
        // A clock that went back does not keep a stale copy forever.
        assert_eq!(cache_use(at, at - 1, None), CacheUse::Reload);
    }

    #[test]
    fn a_source_runs_with_its_own_values_over_the_environment() {
        let base = env(&[
            ("EKA_CLIENT_ID", "env-id"),
            ("EKA_CLIENT_SECRET", "env-secret"),
            ("EKA_SIGNING_KEY", "env-key"),
            ("ORIGIN_URL", "https://origin.example"),
            ("DEDUP_WINDOW_HOURS", "10"),
            ("REMINDER_CALLBACK_URL", "https://cb.example"),
        ]);
        let mut r = record("src_a", Some("biz-a"), true);
        r.spec.api_base_url = Some("https://api.dev.eka.care/".into());
        r.spec.dedup_window_hours = Some(2);
        r.spec.reminder_offsets = Some("2h,15m".into());
        r.spec.allowed_events = Some(vec!["appointment.created".into()]);
        let s = effective_settings(&base, &r, &secrets());
        assert_eq!(s.webhook_path, "/hooks/src_a");
        assert_eq!(s.webhook.source.as_deref(), Some("src_a"));
        assert_eq!(base.webhook.source, None);
        assert_eq!(s.webhook.signing_keys, ["key-a2", "key-a1"]);
        assert_eq!(s.webhook.allowed_events, ["appointment.created"]);
        assert_eq!(s.api.base_url, "https://api.dev.eka.care");
        assert_eq!(s.api.client_id, "cid-a");
        assert_eq!(s.api.client_secret, "csec-a");
        assert_eq!(s.events.dedup_window_ms, 2 * 3_600_000);
        assert_eq!(s.reminders.offsets.len(), 2);
        // The window reaches the source's claims (the object decides duplicates with it).
        assert_eq!(s.webhook.dedup_window_ms, Some(2 * 3_600_000));
        assert_eq!(base.webhook.dedup_window_ms, None);
        // Never longer than the environment's: the objects keep claims that long only (a row
        // from before that rule, or DEDUP_WINDOW_HOURS lowered since).
        let mut long = r.clone();
        long.spec.dedup_window_hours = Some(48);
        let capped = effective_settings(&base, &long, &secrets());
        assert_eq!(capped.events.dedup_window_ms, 10 * 3_600_000);
        assert_eq!(capped.webhook.dedup_window_ms, Some(10 * 3_600_000));
        // Not set by the source: the environment's.
        assert_eq!(s.origin_url.as_deref(), Some("https://origin.example"));
        assert_eq!(
            s.reminders.callback_url.as_deref(),
            Some("https://cb.example")
        );
        // The environment's own account is untouched.
        assert_eq!(base.api.client_id, "env-id");
        assert_eq!(base.events.dedup_window_ms, 10 * 3_600_000);
    }

    #[test]
    fn the_environments_missing_credentials_do_not_misconfigure_a_source() {
        let base = env(&[("DEBUG", "1")]);
        // Credentials and the signing key: each source has its own.
        assert_eq!(base.problems.len(), 3, "{:?}", base.problems);
        let s = effective_settings(&base, &record("src_a", None, true), &secrets());
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        let bad = env(&[("SIGNATURE_TOLERANCE_SECONDS", "-1")]);
        let s = effective_settings(&bad, &record("src_a", None, true), &secrets());
        assert_eq!(s.problems.len(), 1, "{:?}", s.problems);
        assert!(s.problems[0].starts_with("SIGNATURE_TOLERANCE_SECONDS"));
    }
    #[test]
    fn a_source_with_its_own_origin_holds_the_lease_rule() {
        // The environment has no origin: the default lease (120 s) outlasts enrichment (60 s).
        let base = env(&[("EKA_API_TIMEOUT_MS", "15000")]);
        assert_eq!(base.events.lease_ms, 120_000);
        let mut r = record("src_a", None, true);
        r.spec.origin_url = Some("https://origin.example".into());
        // 30 s origin + 6 × 15 s = 120 s: the default lease grows past it.
        let s = effective_settings(&base, &r, &secrets());
        assert_eq!(s.events.lease_ms, 130_000);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
        // Its claims carry it: the object decides them with it, not with the environment's
        // 120 s, under which a copy could take over a delivery still running.
        assert_eq!(s.webhook.claim_lease_ms, Some(130_000));
        // A source whose lease is the environment's sends none (the object's own applies).
        let plain = effective_settings(&base, &record("src_b", None, true), &secrets());
        assert_eq!(plain.webhook.claim_lease_ms, None);
        // An explicit lease is never raised: the source is misconfigured, naming it.
        let short = env(&[
            ("EKA_API_TIMEOUT_MS", "15000"),
            ("EVENT_CLAIM_LEASE_SECONDS", "100"),
        ]);
        assert!(!short
            .problems
            .iter()
            .any(|p| p.starts_with("EVENT_CLAIM_LEASE_SECONDS")));
        let s = effective_settings(&short, &r, &secrets());
        assert_eq!(s.events.lease_ms, 100_000);
        assert!(
            s.problems
                .iter()
                .any(|p| p.starts_with("EVENT_CLAIM_LEASE_SECONDS")),
            "{:?}",
            s.problems
        );
    }

    #[test]
    fn a_source_callback_without_any_reminder_key_is_a_problem() {
        // The environment's callback problem names REMINDER_CALLBACK_URL, which the source
        // overrides; the source's own callback still needs a key.
        let base = env(&[("REMINDER_CALLBACK_URL", "https://cb.example")]);
        let mut r = record("src_a", None, true);
        r.spec.reminder_callback_url = Some("https://cb.source.example".into());
        let s = effective_settings(&base, &r, &secrets());
        assert!(
            s.problems.iter().any(|p| p.contains("reminderSigningKey")),
            "{:?}",
            s.problems
        );
        let mut keyed = secrets();
        keyed.reminder_signing_key = Some("reminder-key".into());
        let s = effective_settings(&base, &r, &keyed);
        assert!(s.problems.is_empty(), "{:?}", s.problems);
    }

    #[test]
    fn reminders_run_with_the_appointments_source_or_the_environment() {
        let base = env(&[
            ("EKA_CLIENT_ID", "env-id"),
            ("EKA_CLIENT_SECRET", "env-secret"),
            ("EKA_SIGNING_KEY", "env-key"),
            ("REMINDER_CALLBACK_URL", "https://cb.env.example"),
            ("REMINDER_SIGNING_KEY", "env-reminder-key"),
            ("REMINDER_OFFSETS", "24h,2h"),
        ]);
        let mut own = record("src_a", Some("biz-a"), false);
        own.spec.reminder_callback_url = Some("https://cb.a.example".into());
        own.spec.reminder_offsets = Some("30m".into());
        let bare = record("src_b", Some("biz-b"), true);
        let records = [own.clone(), bare.clone()];
        // Which account: recorded source (a paused one too), else the environment; a deleted
        // source is gone, never the environment's.
        assert_eq!(
            reminder_account(None, &records),
            ReminderAccount::Environment
        );
        assert_eq!(
            reminder_account(Some("default"), &records),
            ReminderAccount::Environment
        );
        assert_eq!(
            reminder_account(Some("src_a"), &records),
            ReminderAccount::Source(&records[0])
        );
        assert_eq!(
            reminder_account(Some("src_gone"), &records),
            ReminderAccount::Gone
        );
        // A source with its own callback, key and offsets: all three its own, and its own
        // Eka account fetches the context.
        let mut keyed = secrets();
        keyed.reminder_signing_key = Some("a-reminder-key".into());
        let s = effective_settings(&base, &own, &keyed);
        assert_eq!(
            s.reminders.callback_url.as_deref(),
            Some("https://cb.a.example")
        );
        assert_eq!(s.reminders.signing_key.as_deref(), Some("a-reminder-key"));
        let labels: Vec<&str> = s
            .reminders
            .offsets
            .iter()
            .map(|o| o.label.as_str())
            .collect();
        assert_eq!(labels, ["30m"]);
        assert_eq!(s.api.client_id, "cid-a");
        // A source with none: the environment's callback, key and offsets, its own account.
        let s = effective_settings(&base, &bare, &secrets());
        assert_eq!(
            s.reminders.callback_url.as_deref(),
            Some("https://cb.env.example")
        );
        assert_eq!(s.reminders.signing_key.as_deref(), Some("env-reminder-key"));
        assert_eq!(s.reminders.offsets, base.reminders.offsets);
        assert_eq!(s.api.client_id, "cid-a");
    }

    #[test]
    fn the_sweep_covers_every_account_that_can_deliver_reminders() {
        let mut own = record("src_a", None, true);
        own.spec.reminder_callback_url = Some("https://cb.a.example".into());
        own.spec.reminder_offsets = Some("3d".into());
        let bare = record("src_b", None, true);
        let labels =
            |offsets: &[Offset]| offsets.iter().map(|o| o.label.clone()).collect::<Vec<_>>();
        // No environment callback: only the source with its own counts.
        let base = env(&[("REMINDER_OFFSETS", "2h")]);
        assert_eq!(sweep_reminders(&base, &[]), (false, vec![]));
        let (any, offsets) = sweep_reminders(&base, &[own.clone(), bare.clone()]);
        assert!(any);
        assert_eq!(labels(&offsets), ["3d"]);
        // With one, a source without its own inherits it and the environment's offsets.
        let base = env(&[
            ("REMINDER_CALLBACK_URL", "https://cb.env.example"),
            ("REMINDER_SIGNING_KEY", "k"),
            ("REMINDER_OFFSETS", "2h"),
        ]);
        let (any, offsets) = sweep_reminders(&base, &[own, bare]);
        assert!(any);
        assert_eq!(labels(&offsets), ["2h", "3d", "2h"]);
    }

    #[test]
    fn the_default_source_is_the_environments_account() {
        let base = env(&[
            ("EKA_CLIENT_ID", "env-id"),
            ("EKA_CLIENT_SECRET", "env-secret-value"),
            ("EKA_SIGNING_KEY", "env-key-0123456789"),
            ("DEDUP_WINDOW_HOURS", "10"),
        ]);
        let (spec, secrets) = default_source(&base);
        assert!(spec.enabled);
        assert_eq!(spec.dedup_window_hours, Some(10));
        assert_eq!(spec.business_id, None);
        assert_eq!(secrets.client_id, "env-id");
        assert_eq!(secrets.signing_keys, ["env-key-0123456789"]);
        let shown = crate::sources::store::spec_json("default", &spec, Some(&secrets), true, None);
        assert_eq!(shown["readOnly"], true);
        assert_eq!(shown["webhookPath"], "/hooks/default");
        let text = shown.to_string();
        assert!(!text.contains("env-secret-value") && !text.contains("env-key-0123456789"));
        assert_eq!(shown["secrets"]["signingKeys"][0]["last4"], "6789");
    }
}
