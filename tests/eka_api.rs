//! The Eka API client against the in-memory API: login, token lifetime, 401 recovery, shared
//! login, retries, path encoding and response unwrapping.

mod common;

use std::rc::Rc;

use common::*;
use eka_webhook_edge::eka::api::{ApiError, EkaApi, Resource};
use eka_webhook_edge::support::http::HttpError;
use futures::executor::block_on;
use serde_json::{json, Value};

fn setup() -> (std::rc::Rc<FakeEka>, ManualClock, Client) {
    let fake = FakeEka::documented();
    let clock = ManualClock::at(NOW_MS);
    let client = client(&fake, &clock);
    (fake, clock, client)
}

fn header<'r>(r: &'r eka_webhook_edge::support::http::HttpRequest, name: &str) -> Option<&'r str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A client of the fake logging in as `client-1` with `secret` (and `api_key`).
fn client_with(fake: &Rc<FakeEka>, secret: &str, api_key: Option<&str>) -> Client {
    let mut config = eka_webhook_edge::eka::api::EkaApiConfig::new("client-1", secret);
    config.base_url = BASE.into();
    config.api_key = api_key.map(str::to_owned);
    eka_webhook_edge::eka::api::EkaClient::new(config, fake.clone(), ManualClock::at(NOW_MS))
}

#[test]
fn login_sends_credentials_and_api_key_only_in_the_body() {
    let fake = FakeEka::documented();
    let client = client_with(&fake, "secret", Some("key-9"));
    block_on(client.appointment("apt-1", false)).unwrap();
    let requests = fake.requests.borrow();
    let login = &requests[0];
    assert_eq!(login.url, format!("{BASE}/connect-auth/v1/account/login"));
    let body: Value = serde_json::from_slice(login.body.as_ref().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"client_id":"client-1","client_secret":"secret","api_key":"key-9"})
    );
    assert_eq!(header(login, "client-id"), Some("client-1"));
    let get = &requests[1];
    assert_eq!(header(get, "Authorization"), Some("Bearer token-1"));
    assert_eq!(header(get, "client-id"), Some("client-1"));
    assert!(get.headers.iter().all(|(_, v)| !v.contains("key-9")));
}

#[test]
fn api_key_is_left_out_of_the_login_body_when_not_configured() {
    let (fake, _clock, client) = setup();
    block_on(client.appointment("apt-1", false)).unwrap();
    let body: Value =
        serde_json::from_slice(fake.requests.borrow()[0].body.as_ref().unwrap()).unwrap();
    assert_eq!(
        body,
        json!({"client_id":"client-1","client_secret":"secret"})
    );
}

/// Logs in, stays on the token until `renew_after - 1` seconds, and logs in again at
/// `renew_after`.
fn assert_renews_after(token_lifetime: Option<u64>, renew_after: i64) {
    let (fake, clock, client) = setup(); // expires_in 3600 unless set
    if let Some(lifetime) = token_lifetime {
        fake.token_lifetime.set(lifetime);
    }
    block_on(client.appointment("apt-1", false)).unwrap();
    clock.advance_secs(renew_after - 1);
    block_on(client.appointment("apt-1", false)).unwrap();
    assert_eq!(fake.logins.get(), 1);
    clock.advance_secs(1);
    block_on(client.appointment("apt-1", false)).unwrap();
    assert_eq!(fake.logins.get(), 2);
}

#[test]
fn token_is_cached_and_renewed_thirty_seconds_before_expiry() {
    assert_renews_after(None, 3570);
}

#[test]
fn missing_expires_in_means_six_hundred_seconds() {
    // The fake then sends expires_in: 0, which is ignored.
    assert_renews_after(Some(0), 570);
}

#[test]
fn a_401_logs_in_again_once_and_retries() {
    let (fake, _clock, client) = setup();
    block_on(client.appointment("apt-1", false)).unwrap();
    fake.revoked.borrow_mut().push("token-1".into());
    let got = block_on(client.appointment("apt-1", false)).unwrap();
    assert_eq!(got["appointment_id"], json!("apt-1"));
    assert_eq!(fake.logins.get(), 2);
}

#[test]
fn a_persistent_401_fails_after_one_relogin_without_looping() {
    let (fake, _clock, client) = setup();
    for t in 1..=5 {
        fake.revoked.borrow_mut().push(format!("token-{t}"));
    }
    let got = block_on(client.appointment("apt-1", false));
    assert_eq!(got, Err(ApiError::Status(401)));
    assert_eq!(fake.logins.get(), 2);
}

#[test]
fn concurrent_callers_share_one_login() {
    let (fake, _clock, client) = setup();
    let (a, b, c) = block_on(async {
        futures::join!(
            client.get(Resource::Patient, "pat-1"),
            client.get(Resource::Doctor, "doc-1"),
            client.get(Resource::Clinic, "cli-1"),
        )
    });
    assert!(a.is_ok() && b.is_ok() && c.is_ok());
    assert_eq!(fake.logins.get(), 1);
}

#[test]
fn concurrent_401s_share_one_relogin() {
    let (fake, _clock, client) = setup();
    block_on(client.appointment("apt-1", false)).unwrap();
    fake.revoked.borrow_mut().push("token-1".into());
    let (a, b) = block_on(async {
        futures::join!(
            client.get(Resource::Patient, "pat-1"),
            client.get(Resource::Doctor, "doc-1")
        )
    });
    assert!(a.is_ok() && b.is_ok());
    assert_eq!(fake.logins.get(), 2);
}

#[test]
fn one_retry_on_5xx_and_on_transport_errors() {
    let (fake, _clock, client) = setup();
    block_on(client.appointment("apt-1", false)).unwrap();
    fake.fail_next("/dr/v1/appointment/apt-1", &[503]);
    assert!(block_on(client.appointment("apt-1", false)).is_ok());
    fake.fail_next("/dr/v1/appointment/apt-1", &[0]);
    assert!(block_on(client.appointment("apt-1", false)).is_ok());
    fake.fail_next("/dr/v1/appointment/apt-1", &[500, 502]);
    assert_eq!(
        block_on(client.appointment("apt-1", false)),
        Err(ApiError::Status(502))
    );
    fake.fail_next("/dr/v1/appointment/apt-1", &[0, 0]);
    assert_eq!(
        block_on(client.appointment("apt-1", false)),
        Err(ApiError::Transport(HttpError::Network(
            "connection refused".into()
        )))
    );
}

#[test]
fn a_4xx_is_not_retried() {
    let (fake, _clock, client) = setup();
    assert_eq!(
        block_on(client.appointment("missing", false)),
        Err(ApiError::Status(404))
    );
    let gets = fake
        .paths()
        .iter()
        .filter(|p| p.contains("missing"))
        .count();
    assert_eq!(gets, 1);
}

#[test]
fn every_call_carries_the_configured_timeout() {
    let (fake, _clock, client) = setup();
    block_on(client.appointment("apt-1", false)).unwrap();
    assert!(fake
        .requests
        .borrow()
        .iter()
        .all(|r| r.timeout_ms == 10_000));
}

/// The path the client requested for appointment `id`, and whether the fetch succeeded.
fn appointment_path(id: &str, partner_id: bool) -> (String, bool) {
    let (fake, _clock, client) = setup();
    let ok = block_on(client.appointment(id, partner_id)).is_ok();
    (fake.paths().last().cloned().unwrap_or_default(), ok)
}

#[test]
fn ids_are_percent_encoded_as_one_path_segment() {
    assert_eq!(
        appointment_path("a/../b?x=1#f é", false).0,
        "/dr/v1/appointment/a%2F..%2Fb%3Fx%3D1%23f%20%C3%A9"
    );
}

#[test]
fn dot_segment_and_empty_ids_are_refused_without_a_request() {
    let (fake, _clock, client) = setup();
    for id in ["", ".", "..", "%2E%2e"] {
        assert_eq!(
            block_on(client.get(Resource::Patient, id)),
            Err(ApiError::InvalidId),
            "{id:?}"
        );
    }
    assert!(fake.requests.borrow().is_empty());
}

#[test]
fn partner_id_adds_the_query() {
    assert_eq!(
        appointment_path("apt-1", true),
        ("/dr/v1/appointment/apt-1?partner_id=1".to_owned(), true)
    );
}

#[test]
fn responses_are_unwrapped_as_the_sdk_does_plus_the_clinic_envelope() {
    let (fake, _clock, client) = setup();
    fake.set(
        "/dr/v1/appointment/w",
        200,
        json!({"data":{"appointment_id":"w"},"success":true}),
    );
    fake.set(
        "/dr/v1/doctor/d",
        200,
        json!({"doctor":{"id":"d"},"other":1}),
    );
    fake.set(
        "/dr/v1/business/clinic/c2",
        200,
        json!({"clinic":{"clinic_id":"c2"}}),
    );
    fake.set("/dr/v1/patient/p", 200, json!({"data":{"x":1}}));
    assert_eq!(
        block_on(client.appointment("w", false)).unwrap()["appointment_id"],
        json!("w")
    );
    assert_eq!(
        block_on(client.get(Resource::Doctor, "d")).unwrap(),
        json!({"id":"d"})
    );
    assert_eq!(
        block_on(client.get(Resource::Clinic, "cli-1")).unwrap()["clinic_id"],
        json!("62e7929ab123a6001e80e833")
    );
    assert_eq!(
        block_on(client.get(Resource::Clinic, "c2")).unwrap(),
        json!({"clinic_id":"c2"})
    );
    assert_eq!(
        block_on(client.get(Resource::Patient, "p")).unwrap(),
        json!({"data":{"x":1}})
    );
}

#[test]
fn a_non_object_appointment_or_non_json_body_is_an_invalid_response() {
    let (fake, _clock, client) = setup();
    fake.set("/dr/v1/appointment/s", 200, json!("just a string"));
    assert_eq!(
        block_on(client.appointment("s", false)),
        Err(ApiError::InvalidResponse)
    );
}

#[test]
fn bad_credentials_fail_login_and_errors_carry_no_upstream_text() {
    let client = client_with(&FakeEka::documented(), "wrong", None);
    let err = block_on(client.appointment("apt-1", false)).unwrap_err();
    assert_eq!(err, ApiError::Login(Box::new(ApiError::Status(401))));
    assert_eq!(err.to_string(), "login failed: HTTP 401");
}

#[test]
fn clients_sharing_a_token_cache_log_in_once_and_see_each_others_refresh() {
    use eka_webhook_edge::eka::api::{EkaApiConfig, EkaClient, TokenCache};
    let fake = FakeEka::documented();
    let clock = ManualClock::at(NOW_MS);
    let mut config = EkaApiConfig::new("client-1", "secret");
    config.base_url = BASE.into();
    let tokens = TokenCache::default();
    let a = EkaClient::with_tokens(config.clone(), fake.clone(), clock.clone(), tokens.clone());
    let b = EkaClient::with_tokens(config.clone(), fake.clone(), clock.clone(), tokens.clone());
    block_on(a.appointment("apt-1", false)).unwrap();
    block_on(b.appointment("apt-1", false)).unwrap();
    assert_eq!(fake.logins.get(), 1);
    fake.revoked.borrow_mut().push("token-1".into());
    block_on(a.appointment("apt-1", false)).unwrap(); // a renews
    block_on(b.appointment("apt-1", false)).unwrap(); // b uses a's new token
    assert_eq!(fake.logins.get(), 2);
    let c = EkaClient::new(config, fake.clone(), clock); // its own cache
    block_on(c.appointment("apt-1", false)).unwrap();
    assert_eq!(fake.logins.get(), 3);
}

#[test]
fn the_credential_check_logs_in_now_and_names_only_the_status() {
    let fake = FakeEka::documented();
    let good = client_with(&fake, "secret", None);
    block_on(good.check_login()).unwrap();
    // Logs in again even with a token cached: the check is of the credentials, now.
    block_on(good.check_login()).unwrap();
    assert_eq!(fake.logins.get(), 2);
    let bad = client_with(&fake, "wrong-secret-value", None);
    let e = block_on(bad.check_login()).unwrap_err();
    assert_eq!(e, ApiError::Login(Box::new(ApiError::Status(401))));
    assert!(!e.to_string().contains("wrong-secret-value"));
    assert!(!e.to_string().contains("bad credentials"));
}

#[test]
fn an_isolate_keeps_the_tokens_of_1024_accounts_and_forgets_the_least_recently_used() {
    use eka_webhook_edge::eka::api::{EkaApiConfig, EkaClient, TokenSlots};
    let fake = FakeEka::documented();
    let clock = ManualClock::at(NOW_MS);
    let account = |i: usize| {
        let mut config = EkaApiConfig::new(format!("client-{i}"), "secret");
        config.base_url = BASE.into();
        config
    };
    let mut slots = TokenSlots::default();
    let fetch = |slots: &mut TokenSlots, i: usize| {
        let config = account(i);
        let tokens = slots.for_account(&config);
        let client = EkaClient::with_tokens(config, fake.clone(), clock.clone(), tokens);
        block_on(client.appointment("apt-1", false)).unwrap();
    };
    assert_eq!(TokenSlots::BOUND, 1024);
    for i in 0..TokenSlots::BOUND {
        fetch(&mut slots, i);
    }
    assert_eq!(
        fake.logins.get() as usize,
        TokenSlots::BOUND,
        "one login per account"
    );
    // All of them are kept: the first one's next webhook uses its token (and it is now the
    // most recently used).
    fetch(&mut slots, 0);
    assert_eq!(fake.logins.get() as usize, TokenSlots::BOUND);
    // One more account: the least recently used (account 1, not 0) is forgotten.
    fetch(&mut slots, TokenSlots::BOUND);
    assert_eq!(slots.len(), TokenSlots::BOUND);
    assert_eq!(fake.logins.get() as usize, TokenSlots::BOUND + 1);
    fetch(&mut slots, 0);
    assert_eq!(
        fake.logins.get() as usize,
        TokenSlots::BOUND + 1,
        "account 0 kept its token"
    );
    fetch(&mut slots, 1);
    assert_eq!(
        fake.logins.get() as usize,
        TokenSlots::BOUND + 2,
        "account 1 logs in again"
    );
}
