//! How an attempt ended, the destination's health after it (the pause rule), the message's
//! next step (the retry schedule), and the fan-out's intake.

use serde::{Deserialize, Serialize};

use super::{DestinationSpec, GONE_REASON, RETRY_AFTER_MAX_MS};
use crate::support::http::{is_redirect, HttpError, HttpResponse};
use crate::support::retry::{clamp_retry_after, jitter, DELIVERY_SCHEDULE_MS};
use crate::webhook::pipeline::header;

/// How one delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// The destination answered (2xx is a success; anything else, 3xx included, a failure).
    Answered {
        /// The status.
        status: u16,
        /// Its `Retry-After`, in seconds from now, when it sent a readable one.
        retry_after_secs: Option<u64>,
    },
    /// No answer within [`DELIVERY_TIMEOUT_MS`](super::DELIVERY_TIMEOUT_MS).
    TimedOut,
    /// No answer: connection refused, DNS, TLS, …
    Unreachable,
}

impl SendOutcome {
    /// Reads an HTTP result, with its `Retry-After` header read by [`parse_retry_after`].
    pub fn from_http(result: &Result<HttpResponse, HttpError>, now_ms: i64) -> SendOutcome {
        match result {
            Ok(response) => SendOutcome::Answered {
                status: response.status,
                retry_after_secs: header(&response.headers, "Retry-After")
                    .and_then(|v| parse_retry_after(v, now_ms)),
            },
            Err(HttpError::Timeout) => SendOutcome::TimedOut,
            Err(HttpError::Network(_)) => SendOutcome::Unreachable,
        }
    }

    /// A 2xx answer.
    pub fn is_success(&self) -> bool {
        matches!(self, SendOutcome::Answered { status, .. } if (200..300).contains(status))
    }

    /// The status, when there was an answer.
    pub fn status(&self) -> Option<u16> {
        match self {
            SendOutcome::Answered { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// A stable code for a failure: `redirect` (a 3xx, never followed), `http_status`,
    /// `timeout` or `network`; none for a 2xx.
    pub fn error_code(&self) -> Option<&'static str> {
        match self {
            _ if self.is_success() => None,
            SendOutcome::Answered { status, .. } if is_redirect(*status) => Some("redirect"),
            SendOutcome::Answered { .. } => Some("http_status"),
            SendOutcome::TimedOut => Some("timeout"),
            SendOutcome::Unreachable => Some("network"),
        }
    }
}

/// `Retry-After` as seconds from `now_ms`: delay-seconds, or an HTTP date (a past date is 0).
/// Anything else is `None`.
pub fn parse_retry_after(value: &str, now_ms: i64) -> Option<u64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for u64 is "a very long time": the clamp caps it anyway.
        return Some(value.parse::<u64>().unwrap_or(u64::MAX));
    }
    // An HTTP date (RFC 9110: IMF-fixdate, and the two obsolete forms) with `httpdate`, a
    // small parser (chrono's general one costs the Worker upload ~7 KB gzip).
    let at = httpdate::parse_http_date(value).ok()?;
    let at_ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| i64::try_from(d.as_millis()).ok())?;
    let delta_ms = at_ms.saturating_sub(now_ms).max(0);
    Some(u64::try_from(delta_ms).unwrap_or(0).div_ceil(1000))
}

/// A destination's delivery health, kept beside its spec. `Default` is a new destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestinationHealth {
    /// Failed attempts since the last success (any message).
    pub consecutive_failures: u32,
    /// The last successful attempt, epoch ms.
    pub last_success_ms: Option<i64>,
    /// The last failed attempt, epoch ms.
    pub last_failure_ms: Option<i64>,
    /// Why deliveries are paused, when they are: `"<n> consecutive failed attempts"` or
    /// [`GONE_REASON`]. Stable text, for the admin API.
    pub paused_reason: Option<String>,
    /// When the pause began, epoch ms.
    pub paused_at_ms: Option<i64>,
}

impl DestinationHealth {
    /// Deliveries are paused (held) until [`DestinationHealth::resume`].
    pub fn is_paused(&self) -> bool {
        self.paused_reason.is_some()
    }

    /// The owner resumes a paused destination: no pause, the failure count back to 0 (the
    /// times are kept). Held messages are then sent again by the adapter.
    pub fn resume(self) -> DestinationHealth {
        DestinationHealth {
            consecutive_failures: 0,
            paused_reason: None,
            paused_at_ms: None,
            ..self
        }
    }
}

/// The pause rule, after one attempt at `now_ms`:
/// - a success sets `last_success_ms` and the failure count to 0 (a pause already in place
///   stays: only the owner resumes);
/// - a failure sets `last_failure_ms` and counts; `410 Gone` pauses at once ([`GONE_REASON`]);
///   otherwise reaching `pause_after` consecutive failures pauses with `"<pause_after>
///   consecutive failed attempts"` (`pause_after` 0: never, except for a 410). A pause in
///   place keeps its first reason and time.
pub fn after_attempt(
    state: DestinationHealth,
    outcome: &SendOutcome,
    pause_after: u32,
    now_ms: i64,
) -> DestinationHealth {
    if outcome.is_success() {
        return DestinationHealth {
            consecutive_failures: 0,
            last_success_ms: Some(now_ms),
            ..state
        };
    }
    let mut next = DestinationHealth {
        consecutive_failures: state.consecutive_failures.saturating_add(1),
        last_failure_ms: Some(now_ms),
        ..state
    };
    if next.is_paused() {
        return next;
    }
    let reason = if outcome.status() == Some(410) {
        Some(GONE_REASON.to_owned())
    } else if pause_after > 0 && next.consecutive_failures >= pause_after {
        Some(format!("{pause_after} consecutive failed attempts"))
    } else {
        None
    };
    if reason.is_some() {
        next.paused_reason = reason;
        next.paused_at_ms = Some(now_ms);
    }
    next
}

/// What happens to a message after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// A 2xx: done.
    Delivered,
    /// Try again at this time, epoch ms.
    RetryAt(i64),
    /// The schedule is used up ([`MAX_ATTEMPTS`](super::MAX_ATTEMPTS)): dead letter (replayable by hand).
    Failed,
    /// The destination is paused: keep the message, send it when the destination resumes.
    Held,
}

/// The message's next step after attempt `attempt` (1 = the first) ended with `outcome`;
/// `health`: the destination's health after that attempt ([`after_attempt`]). In order:
/// a 2xx is [`Next::Delivered`]; after the schedule's attempts ([`MAX_ATTEMPTS`](super::MAX_ATTEMPTS)
/// with Svix's) [`Next::Failed`]; a paused destination [`Next::Held`]; otherwise
/// [`Next::RetryAt`] the schedule's next delay (Svix's: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) with ±20 % jitter from `random01` (uniform in
/// `[0, 1)`), or later when the destination's `Retry-After` asks for it (honoured up to
/// [`RETRY_AFTER_MAX_MS`]; it never brings an attempt forward).
///
/// `schedule[n]` is the delay before attempt n + 1 (0-based; its length is the number of
/// attempts): Svix's [`DELIVERY_SCHEDULE_MS`], or `DELIVERY_RETRY_SCHEDULE_MS` for tests and
/// development.
pub fn next_step_on(
    schedule: &[u64],
    attempt: u32,
    outcome: &SendOutcome,
    health: &DestinationHealth,
    now_ms: i64,
    random01: f64,
) -> Next {
    if outcome.is_success() {
        return Next::Delivered;
    }
    // `schedule[n]` is the delay before attempt n + 1 (0-based n): after attempt `attempt`
    // (1-based) the next one is index `attempt`.
    let Some(scheduled) = usize::try_from(attempt.max(1))
        .ok()
        .and_then(|i| schedule.get(i))
        .map(|delay| jitter(*delay, random01))
    else {
        return Next::Failed;
    };
    if health.is_paused() {
        return Next::Held;
    }
    let asked = match outcome {
        SendOutcome::Answered {
            retry_after_secs: Some(secs),
            ..
        } => i64::try_from(clamp_retry_after(*secs, 0, RETRY_AFTER_MAX_MS)).unwrap_or(0),
        _ => 0,
    };
    Next::RetryAt(now_ms.saturating_add(scheduled.max(asked)))
}

/// [`after_attempt`] then [`next_step_on`] Svix's schedule: the destination's new health and the message's fate.
pub fn settle(
    attempt: u32,
    outcome: &SendOutcome,
    health: DestinationHealth,
    pause_after: u32,
    now_ms: i64,
    random01: f64,
) -> (DestinationHealth, Next) {
    let health = after_attempt(health, outcome, pause_after, now_ms);
    let next = next_step_on(
        &DELIVERY_SCHEDULE_MS,
        attempt,
        outcome,
        &health,
        now_ms,
        random01,
    );
    (health, next)
}

/// What the fan-out does with a new event for one destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intake {
    /// Disabled by its owner, or not subscribed to the event: no message.
    Skip,
    /// Queue a message, first attempt at once.
    Send,
    /// Keep a message, held until the destination resumes (nothing is lost while paused).
    Hold,
}

/// [`Intake`] for `event_type` from `source` (`default`: the environment's account) at a
/// destination with this spec and health: it must subscribe to both.
pub fn intake(
    spec: &DestinationSpec,
    health: &DestinationHealth,
    event_type: &str,
    source: &str,
) -> Intake {
    if !spec.enabled || !spec.matches(event_type) || !spec.subscribes_to(source) {
        Intake::Skip
    } else if health.is_paused() {
        Intake::Hold
    } else {
        Intake::Send
    }
}

/// How long an isolate trusts the destinations it read before it must read them again to
/// skip a fan-out: a destination created, enabled or re-subscribed through another isolate
/// gets the events accepted from at most this long after the change (the admin API's own
/// isolate forgets its copy at once).
pub const KNOWN_DESTINATIONS_TTL_MS: i64 = 5_000;

/// Whether destinations read at `read_at_ms` still count at `now_ms` (a clock that went back
/// does not count).
pub fn known_fresh(read_at_ms: i64, now_ms: i64) -> bool {
    now_ms >= read_at_ms && now_ms - read_at_ms < KNOWN_DESTINATIONS_TTL_MS
}

/// Whether a new event needs the fan-out (a message kept for some destination, and the alarm
/// that makes it): true unless the destinations are known, read at `read_at_ms` within
/// [`KNOWN_DESTINATIONS_TTL_MS`] of `now_ms`, and none of them takes `event_type` from
/// `source` ([`intake`] skips it at every one). Unknown or stale: the fan-out decides, as
/// always.
pub fn needs_fan_out(
    known: Option<(i64, &[(DestinationSpec, DestinationHealth)])>,
    now_ms: i64,
    event_type: &str,
    source: &str,
) -> bool {
    let Some((read_at_ms, destinations)) = known else {
        return true;
    };
    !known_fresh(read_at_ms, now_ms)
        || destinations
            .iter()
            .any(|(spec, health)| intake(spec, health, event_type, source) != Intake::Skip)
}
