//! Test-only seams (tests/worker/intake.test.mjs), off unless `EKA_TEST_PROBE` is set:
//!
//! - a count of what a webhook waits for: the object calls and D1 statements started while it
//!   is handled, in the `X-Eka-Probe` header (`1` or `drop`). Work started after the answer
//!   (`waitUntil`) is not counted: the header is written before it runs;
//! - `X-Eka-Probe-Fanouts`: how many kept events this isolate's objects have fanned out so
//!   far (so that a test sees that an event no destination takes is not kept for one);
//! - `X-Eka-Probe-Totals` on the health route: the isolate's counts so far, so that a test can wait
//!   until earlier requests' after-work is done (the totals hold still) before it measures;
//! - `drop`: nothing is sent after the answer (no commit, no origin status), as if the isolate
//!   stopped there, so that a test sees the object finish the webhook on its own.

use std::cell::Cell;

use worker::{Env, Response};

thread_local! {
    static OBJECT_CALLS: Cell<u32> = const { Cell::new(0) };
    static D1_CALLS: Cell<u32> = const { Cell::new(0) };
    static FAN_OUTS: Cell<u32> = const { Cell::new(0) };
}

/// `n` more events fanned out by an object of this isolate (each one a kept event the
/// fan-out had to read the destinations for).
pub fn fanned_out(n: usize) {
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    FAN_OUTS.with(|c| c.set(c.get().wrapping_add(n)));
}

/// One more Durable Object call.
pub fn object_call() {
    OBJECT_CALLS.with(|n| n.set(n.get().wrapping_add(1)));
}

/// One more D1 statement or batch.
pub fn d1_call() {
    D1_CALLS.with(|n| n.set(n.get().wrapping_add(1)));
}

fn counts() -> (u32, u32) {
    (OBJECT_CALLS.with(Cell::get), D1_CALLS.with(Cell::get))
}

fn setting(env: &Env) -> Option<String> {
    env.var("EKA_TEST_PROBE")
        .ok()
        .map(|v| v.to_string())
        .filter(|v| v == "1" || v == "drop")
}

/// `EKA_TEST_PROBE=drop`: send nothing after the answer.
pub fn drops_after_answer(env: &Env) -> bool {
    setting(env).is_some_and(|v| v == "drop")
}

/// Adds the isolate's totals so far, `X-Eka-Probe-Totals: objects=<n>; d1=<n>`, to an answer
/// that itself starts no I/O (the health route), when probing is on: a test waits until they hold
/// still (earlier requests' after-work done) before it measures a webhook.
pub fn totals(env: &Env, response: worker::Result<Response>) -> worker::Result<Response> {
    if setting(env).is_none() {
        return response;
    }
    let mut response = response?;
    let (o, d) = counts();
    response
        .headers_mut()
        .set("X-Eka-Probe-Totals", &format!("objects={o}; d1={d}"))?;
    Ok(response)
}

/// The counts when a request started, when probing is on.
pub struct Probe(Option<(u32, u32)>);

impl Probe {
    /// Starts counting for one request (nothing unless `EKA_TEST_PROBE` is `1`).
    pub fn start(env: &Env) -> Self {
        Probe(setting(env).is_some().then(counts))
    }

    /// Adds `X-Eka-Probe: objects=<n>; d1=<n>` to the answer.
    pub fn finish(self, response: worker::Result<Response>) -> worker::Result<Response> {
        let Some((objects, d1)) = self.0 else {
            return response;
        };
        let mut response = response?;
        let (o, d) = counts();
        let value = format!(
            "objects={}; d1={}",
            o.wrapping_sub(objects),
            d.wrapping_sub(d1)
        );
        response.headers_mut().set("X-Eka-Probe", &value)?;
        // The isolate's total so far (objects run in the same isolate in workerd).
        let fan_outs = FAN_OUTS.with(Cell::get).to_string();
        response
            .headers_mut()
            .set("X-Eka-Probe-Fanouts", &fan_outs)?;
        Ok(response)
    }
}
