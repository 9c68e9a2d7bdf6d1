//! Test doubles: an in-memory Eka API (the only fake we allow), a manual clock, an in-memory
//! schedule store and a recording sink.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use eka_webhook_edge::eka::api::{EkaApiConfig, EkaClient};
use eka_webhook_edge::schedule::{
    ScheduleRecord, ScheduleRow, ScheduleStore, ScheduleWrite, StoreError,
};
use eka_webhook_edge::signing::outbound::DeliveryError;
use eka_webhook_edge::signing::signature::{sign, RustMac};
use eka_webhook_edge::support::http::{Clock, HttpClient, HttpError, HttpRequest, HttpResponse};
use eka_webhook_edge::webhook::ledger::{EventLedger, StoreLedger};
use eka_webhook_edge::webhook::pipeline::{EnrichedEvent, EventSink};
use eka_webhook_edge::webhook::pipeline::{Outcome, Pipeline, WebhookConfig};
use futures::executor::block_on;
use serde_json::{json, Value};

pub const BASE: &str = "http://eka.test";
pub const NOW_MS: i64 = 1_730_189_588_000;

pub fn fixture(name: &str) -> Value {
    let path = format!("{}/tests/fixtures/eka/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).expect("fixture present");
    serde_json::from_str(&text).expect("fixture is JSON")
}

/// Returns Pending once, so that concurrent futures interleave as they would over a network.
pub struct YieldNow(bool);

impl Future for YieldNow {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

pub fn yield_now() -> YieldNow {
    YieldNow(false)
}

#[derive(Clone)]
pub struct ManualClock(pub Rc<Cell<i64>>);

impl ManualClock {
    pub fn at(ms: i64) -> Self {
        ManualClock(Rc::new(Cell::new(ms)))
    }
    pub fn advance_secs(&self, secs: i64) {
        self.0.set(self.0.get() + secs * 1000);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.get()
    }
}

/// What the fake answers for one path: status and JSON body.
#[derive(Clone)]
pub struct Canned {
    pub status: u16,
    pub body: Value,
}

/// The Eka API in memory, built from the documented responses.
#[derive(Default)]
pub struct FakeEka {
    pub routes: RefCell<HashMap<String, Canned>>,
    /// Failures to inject for a path before answering normally (status, or 0 for a transport error).
    pub failures: RefCell<HashMap<String, Vec<u16>>>,
    pub requests: RefCell<Vec<HttpRequest>>,
    pub logins: Cell<u32>,
    pub token_lifetime: Cell<u64>,
    /// Tokens the server no longer accepts.
    pub revoked: RefCell<Vec<String>>,
    pub in_flight: Cell<u32>,
    pub max_in_flight: Cell<u32>,
}

impl FakeEka {
    /// Documented responses for appointment `apt-1` (status `BK`, visit type `REG`) and its
    /// patient, doctor and clinic.
    pub fn documented() -> Rc<Self> {
        let api = fixture("api-responses.json");
        let fake = FakeEka::default();
        fake.token_lifetime.set(3600);
        let endpoints = &api["endpoints"];
        let mut appointment = endpoints["/dr/v1/appointment/{appointment_id}"]["200"].clone();
        appointment["appointment_id"] = json!("apt-1");
        appointment["patient_id"] = json!("pat-1");
        appointment["doctor_id"] = json!("doc-1");
        appointment["clinic_id"] = json!("cli-1");
        appointment["status"] = json!("BK");
        appointment["visit_type"] = json!("REG");
        appointment["start_time"] = json!(1_730_200_000);
        appointment["end_time"] = json!(1_730_201_800);
        fake.set("/dr/v1/appointment/apt-1", 200, appointment);
        fake.set(
            "/dr/v1/patient/pat-1",
            200,
            endpoints["/dr/v1/patient/{patient_id}"]["200"].clone(),
        );
        fake.set(
            "/dr/v1/doctor/doc-1",
            200,
            endpoints["/dr/v1/doctor/{doctor_id}"]["200"].clone(),
        );
        fake.set(
            "/dr/v1/business/clinic/cli-1",
            200,
            endpoints["/dr/v1/business/clinic/{clinic_id}"]["200"].clone(),
        );
        Rc::new(fake)
    }

    pub fn set(&self, path: &str, status: u16, body: Value) {
        self.routes
            .borrow_mut()
            .insert(path.to_owned(), Canned { status, body });
    }

    pub fn fail_next(&self, path: &str, statuses: &[u16]) {
        self.failures
            .borrow_mut()
            .insert(path.to_owned(), statuses.to_vec());
    }

    pub fn appointment_mut(&self, id: &str, f: impl FnOnce(&mut Value)) {
        let mut routes = self.routes.borrow_mut();
        let canned = routes
            .get_mut(&format!("/dr/v1/appointment/{id}"))
            .expect("appointment route");
        f(&mut canned.body);
    }

    pub fn paths(&self) -> Vec<String> {
        self.requests
            .borrow()
            .iter()
            .map(|r| r.url.trim_start_matches(BASE).to_owned())
            .collect()
    }

    fn respond(&self, request: &HttpRequest) -> Result<HttpResponse, HttpError> {
        let path = request.url.trim_start_matches(BASE).to_owned();
        if let Some(queue) = self.failures.borrow_mut().get_mut(&path) {
            if !queue.is_empty() {
                let status = queue.remove(0);
                if status == 0 {
                    return Err(HttpError::Network("connection refused".into()));
                }
                return Ok(reply(
                    status,
                    json!({"error":{"code":"SERVER_ERROR","message":"x"}}),
                ));
            }
        }
        if path == "/connect-auth/v1/account/login" {
            let body: Value = serde_json::from_slice(request.body.as_deref().unwrap_or(b"{}"))
                .unwrap_or(Value::Null);
            if body["client_secret"] != json!("secret") {
                return Ok(reply(401, json!({"code":401,"error":"bad credentials"})));
            }
            self.logins.set(self.logins.get() + 1);
            return Ok(reply(
                200,
                json!({"access_token": format!("token-{}", self.logins.get()),
                       "expires_in": self.token_lifetime.get(),
                       "refresh_token":"r","refresh_expires_in":86400}),
            ));
        }
        let auth = request
            .headers
            .iter()
            .find(|(k, _)| k == "Authorization")
            .map(|(_, v)| v.trim_start_matches("Bearer ").to_owned())
            .unwrap_or_default();
        if auth.is_empty() || self.revoked.borrow().contains(&auth) {
            return Ok(reply(401, json!({"code":401,"error":"token expired"})));
        }
        let path_only = path.split('?').next().unwrap_or_default().to_owned();
        match self.routes.borrow().get(&path_only) {
            Some(c) => Ok(reply(c.status, c.body.clone())),
            None => Ok(reply(
                404,
                json!({"error":{"code":"NOT_FOUND","message":"not found"}}),
            )),
        }
    }
}

fn reply(status: u16, body: Value) -> HttpResponse {
    HttpResponse {
        status,
        headers: Vec::new(),
        body: body.to_string().into_bytes(),
    }
}

impl HttpClient for FakeEka {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        self.requests.borrow_mut().push(request.clone());
        self.in_flight.set(self.in_flight.get() + 1);
        self.max_in_flight
            .set(self.max_in_flight.get().max(self.in_flight.get()));
        yield_now().await;
        yield_now().await;
        self.in_flight.set(self.in_flight.get() - 1);
        self.respond(&request)
    }
}

pub type Client = EkaClient<Rc<FakeEka>, ManualClock>;

pub fn client(fake: &Rc<FakeEka>, clock: &ManualClock) -> Client {
    let mut config = EkaApiConfig::new("client-1", "secret");
    config.base_url = BASE.to_owned();
    EkaClient::new(config, Rc::clone(fake), clock.clone())
}

/// A schedule store in memory with the SDK's upsert and update semantics.
#[derive(Default)]
pub struct MemoryStore {
    pub rows: RefCell<BTreeMap<String, ScheduleRow>>,
    pub fail: Cell<bool>,
}

impl ScheduleStore for MemoryStore {
    async fn apply(&self, writes: &[ScheduleWrite]) -> Result<(), StoreError> {
        if self.fail.get() {
            return Err(StoreError::Backend("database unavailable".into()));
        }
        let mut rows = self.rows.borrow_mut();
        for write in writes {
            match write {
                ScheduleWrite::Upsert(r) => {
                    let existing = rows.get(&r.appointment_id).cloned();
                    rows.insert(
                        r.appointment_id.clone(),
                        ScheduleRow {
                            record: ScheduleRecord {
                                created_at: existing
                                    .as_ref()
                                    .map_or(r.created_at, |e| e.record.created_at),
                                p_aid: r
                                    .p_aid
                                    .clone()
                                    .or(existing.as_ref().and_then(|e| e.record.p_aid.clone())),
                                ..r.clone()
                            },
                            reminder_sent_at: existing.and_then(|e| e.reminder_sent_at),
                        },
                    );
                }
                ScheduleWrite::MarkReminderSent { appointment_id, at } => {
                    if let Some(row) = rows.get_mut(appointment_id) {
                        row.reminder_sent_at = Some(*at);
                    }
                }
                ScheduleWrite::UpdateStatus {
                    appointment_id,
                    status,
                    start_time,
                    end_time,
                } => {
                    if let Some(row) = rows.get_mut(appointment_id) {
                        let row = &mut row.record;
                        row.status = status.clone();
                        if let Some(s) = start_time {
                            row.start_time = *s;
                        }
                        if let Some(e) = end_time {
                            row.end_time = *e;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    async fn find_between(&self, start: i64, end: i64) -> Result<Vec<ScheduleRow>, StoreError> {
        Ok(self
            .rows
            .borrow()
            .values()
            .filter(|r| r.record.start_time >= start && r.record.start_time <= end)
            .cloned()
            .collect())
    }

    async fn mark_reminder_sent(&self, id: &str, at: i64) -> Result<bool, StoreError> {
        Ok(self
            .rows
            .borrow_mut()
            .get_mut(id)
            .map(|r| r.reminder_sent_at = Some(at))
            .is_some())
    }
}

/// Records delivered events; can be told to fail.
#[derive(Default)]
pub struct RecordingSink {
    pub events: RefCell<Vec<EnrichedEvent>>,
    pub fail: Cell<bool>,
}

impl EventSink for RecordingSink {
    async fn deliver(&self, event: &EnrichedEvent) -> Result<(), DeliveryError> {
        if self.fail.get() {
            return Err(DeliveryError::Answered {
                receiver: "origin",
                status: 503,
                location: None,
            });
        }
        self.events.borrow_mut().push(event.clone());
        Ok(())
    }
}

/// The signing key of [`World`].
pub const KEY: &str = "whsec-test";

/// A pipeline's surroundings: the fake Eka API, a manual clock, an in-memory store, a
/// recording sink and a config that verifies with [`KEY`].
pub struct World {
    pub fake: Rc<FakeEka>,
    pub clock: ManualClock,
    pub client: Client,
    pub store: MemoryStore,
    pub sink: RecordingSink,
    pub config: WebhookConfig,
}

impl World {
    pub fn new() -> Self {
        Self::with_key(KEY)
    }

    /// Surroundings whose config verifies with `key`.
    pub fn with_key(key: &str) -> Self {
        let fake = FakeEka::documented();
        let clock = ManualClock::at(NOW_MS);
        let client = client(&fake, &clock);
        World {
            fake,
            clock,
            client,
            store: MemoryStore::default(),
            sink: RecordingSink::default(),
            config: WebhookConfig {
                signing_keys: vec![key.into()],
                ..WebhookConfig::default()
            },
        }
    }

    /// The pipeline over these surroundings with `ledger`.
    pub fn pipeline<'a, L: EventLedger>(
        &'a self,
        ledger: &'a L,
    ) -> Pipeline<'a, Rc<FakeEka>, ManualClock, L, RecordingSink, RustMac> {
        Pipeline {
            config: &self.config,
            client: &self.client,
            ledger,
            sink: &self.sink,
            mac: &RustMac,
        }
    }

    /// Sends `body` with `headers` through the in-memory store.
    pub fn send_raw(&self, body: &[u8], headers: &[(String, String)]) -> Outcome {
        block_on(
            self.pipeline(&StoreLedger(&self.store))
                .handle(body, headers),
        )
    }

    /// Signs `body` with KEY at the clock's time and sends it through `ledger`.
    pub fn send_with<L: EventLedger>(&self, ledger: &L, body: &Value) -> Outcome {
        let raw = body.to_string();
        let header = sign(
            raw.as_bytes(),
            KEY.as_bytes(),
            self.clock.now_ms() / 1000,
            &RustMac,
        );
        let headers = [("eka-webhook-signature".to_owned(), header)];
        block_on(self.pipeline(ledger).handle(raw.as_bytes(), &headers))
    }

    /// Signs `body` with KEY at the clock's time and sends it through the in-memory store.
    pub fn send(&self, body: &Value) -> Outcome {
        self.send_with(&StoreLedger(&self.store), body)
    }

    /// The stored status of `id`.
    pub fn row_status(&self, id: &str) -> Option<String> {
        self.store
            .rows
            .borrow()
            .get(id)
            .map(|r| r.record.status.clone())
    }
}

/// `out` answered `status` with `{"error": error}`.
pub fn assert_answered(out: &Outcome, status: u16, error: &str) {
    assert_eq!(out.status, status, "{}", out.body);
    assert_eq!(out.body, json!({ "error": error }));
}
