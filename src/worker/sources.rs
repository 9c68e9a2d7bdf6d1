//! The sources an isolate knows, by the core's [`cache_use`]: read from D1 once, then used
//! while read again in the background (`waitUntil`, started after the webhook's answer:
//! [`refresh_after_answer`]) once
//! [`CACHE_REFRESH_AFTER_MS`](crate::sources::routing::CACHE_REFRESH_AFTER_MS) old, and never
//! used once [`CACHE_MAX_AGE_MS`](crate::sources::routing::CACHE_MAX_AGE_MS) old. A warm
//! isolate (one that read them within that bound) finds a source's configuration without
//! awaiting D1; a change made through another isolate takes effect within the bound (the admin
//! API's own isolate drops its copy at once).

use std::cell::RefCell;
use std::rc::Rc;

use worker::{Context, Env, Result};

use crate::settings::Settings;
use crate::sources::routing::{
    body_business_id, cache_use, effective_settings, intake_at, route_by_business_id, CacheUse,
    Intake,
};
use crate::sources::store::{list_sources, open_secrets, SourceRecord};
use crate::sources::DEFAULT_SOURCE_ID;
use crate::support::http::Clock;
use crate::worker::runtime::d1::{query, ready};
use crate::worker::runtime::fetch_client::WorkerClock;
use crate::worker::runtime::log;

/// An isolate's copy of the sources.
struct Cached {
    loaded_at: i64,
    records: Rc<Vec<SourceRecord>>,
    /// When a background read started (none: none in flight).
    refreshing_since: Option<i64>,
}

thread_local! {
    static CACHE: RefCell<Option<Cached>> = const { RefCell::new(None) };
    /// Bumped when the copy is dropped: a background read begun before that does not land.
    static GENERATION: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
    /// A background read is due (when it was asked for): started after the answer.
    static DUE: std::cell::Cell<Option<i64>> = const { std::cell::Cell::new(None) };
}

async fn load(env: &Env) -> Result<Rc<Vec<SourceRecord>>> {
    let rows = query(&ready(env).await?, &list_sources()).await?;
    Ok(Rc::new(
        rows.iter().filter_map(SourceRecord::from_row).collect(),
    ))
}

fn keep(records: &Rc<Vec<SourceRecord>>, loaded_at: i64) {
    CACHE.with(|cell| {
        *cell.borrow_mut() = Some(Cached {
            loaded_at,
            records: Rc::clone(records),
            refreshing_since: None,
        });
    });
}

/// Every source row (without the `default` source, which has none). `stale_ok` (a webhook,
/// whose handler calls [`refresh_after_answer`]): a stale copy answers, and is read again
/// after the answer; else (an object, an admin route) a stale copy is read again first.
pub async fn all(env: &Env, stale_ok: bool) -> Result<Rc<Vec<SourceRecord>>> {
    let now = WorkerClock.now_ms();
    let cached = CACHE.with(|cell| {
        cell.borrow().as_ref().map(|c| {
            let used = cache_use(c.loaded_at, now, c.refreshing_since);
            (used, Rc::clone(&c.records))
        })
    });
    match cached {
        Some((CacheUse::Fresh, records)) => return Ok(records),
        Some((CacheUse::Refresh, records)) if stale_ok => {
            CACHE.with(|cell| {
                if let Some(c) = cell.borrow_mut().as_mut() {
                    c.refreshing_since = Some(now);
                }
            });
            DUE.with(|due| due.set(Some(now)));
            return Ok(records);
        }
        _ => {}
    }
    let generation = GENERATION.with(std::cell::Cell::get);
    let records = load(env).await?;
    if GENERATION.with(std::cell::Cell::get) == generation {
        keep(&records, now);
    }
    Ok(records)
}

/// Starts the background read a webhook found due (call it once the answer is made: the
/// read then never delays it); a failure keeps the copy (until its hard bound).
pub fn refresh_after_answer(env: &Env, ctx: &Context) {
    let Some(now) = DUE.with(std::cell::Cell::take) else {
        return;
    };
    let generation = GENERATION.with(std::cell::Cell::get);
    let env = env.clone();
    ctx.wait_until(async move {
        // A failed read keeps the copy until its bound; the request after that reads D1
        // itself and answers (and logs) its error.
        if let Ok(records) = load(&env).await {
            if GENERATION.with(std::cell::Cell::get) == generation {
                keep(&records, now);
            }
        }
    });
}

/// Forgets this isolate's copy (after a change through the admin API).
pub fn invalidate() {
    GENERATION.with(|g| g.set(g.get().wrapping_add(1)));
    CACHE.with(|cell| *cell.borrow_mut() = None);
}

thread_local! {
    /// Each source's effective settings, by id, `updated_at` and sealed secrets: every write
    /// that changes a setting seals the secrets anew (a fresh nonce), so two writes in one
    /// millisecond (which leave `updated_at` as it was) are told apart, and a removed key
    /// does not keep verifying here.
    static SETTINGS: RefCell<Vec<Built>> = const { RefCell::new(Vec::new()) };
}

/// A source's settings and the row version they were built from.
struct Built {
    id: String,
    updated_at: i64,
    sealed: String,
    settings: Rc<Settings>,
}

/// What a webhook is for, once its source is known.
pub enum Resolved {
    /// The environment's account: the isolate's settings.
    Default,
    /// A source, enabled: the settings it runs with.
    Source(Rc<Settings>),
    /// A source whose intake is paused: 503 with `Retry-After`.
    Disabled,
    /// A paused source a default-path body was routed to by its unverified `business_id`:
    /// verified with these settings first (a forgery is refused as anywhere else), and only
    /// then 503, so the pause is told to the account's own sender only.
    PausedRouted(Rc<Settings>),
    /// No such source: 404.
    Unknown,
    /// Its secrets do not open with `EVENT_ENCRYPTION_KEY` (or the key is unset): 500.
    Unreadable,
}

/// The settings `record` runs with, cached per row (the secrets are opened once).
pub fn settings_for(base: &Settings, record: &SourceRecord) -> Option<Rc<Settings>> {
    let cached = SETTINGS.with(|cell| {
        cell.borrow()
            .iter()
            .find(|b| {
                b.id == record.id
                    && b.updated_at == record.updated_at
                    && b.sealed == record.sealed_secrets
            })
            .map(|b| Rc::clone(&b.settings))
    });
    if cached.is_some() {
        return cached;
    }
    let keys = base.events.keys.as_ref()?;
    let secrets = open_secrets(keys, &record.id, &record.sealed_secrets).ok()?;
    let settings = Rc::new(effective_settings(base, record, &secrets));
    SETTINGS.with(|cell| {
        let mut all = cell.borrow_mut();
        all.retain(|b| b.id != record.id);
        all.push(Built {
            id: record.id.clone(),
            updated_at: record.updated_at,
            sealed: record.sealed_secrets.clone(),
            settings: Rc::clone(&settings),
        });
    });
    Some(settings)
}

fn resolved(base: &Settings, intake: Intake<'_>) -> Resolved {
    match intake {
        Intake::Default => Resolved::Default,
        Intake::Disabled => Resolved::Disabled,
        Intake::Unknown => Resolved::Unknown,
        Intake::Source(record) => {
            settings_for(base, record).map_or(Resolved::Unreadable, Resolved::Source)
        }
    }
}

/// The source of `/hooks/{id}` (`default` without reading D1).
pub async fn at_path(env: &Env, base: &Settings, id: &str) -> Result<Resolved> {
    if id == DEFAULT_SOURCE_ID {
        return Ok(Resolved::Default);
    }
    let records = all(env, true).await?;
    Ok(resolved(base, intake_at(id, &records)))
}

/// The source a body at the default path is routed to by its `business_id` (exactly one
/// source has it), verified later with that source's keys only. When the sources cannot be
/// read the environment's account takes it, as before sources existed.
pub async fn by_business_id(env: &Env, base: &Settings, body: &[u8]) -> Resolved {
    let records = match all(env, true).await {
        Ok(records) => records,
        Err(e) => {
            log::failed(base.debug, "sources not read", &e);
            return Resolved::Default;
        }
    };
    if records.iter().all(|r| r.spec.business_id.is_none()) {
        return Resolved::Default;
    }
    let business_id = body_business_id(body);
    match route_by_business_id(business_id.as_deref(), &records) {
        None => Resolved::Default,
        Some(record) if !record.spec.enabled => {
            settings_for(base, record).map_or(Resolved::Unreadable, Resolved::PausedRouted)
        }
        Some(record) => resolved(base, intake_at(&record.id, &records)),
    }
}

/// The settings of source `id` for an admin route (a paused source's too): none for
/// `default`; a 404 answer for an unknown source, a 409 one when its secrets do not open.
pub async fn settings_at(
    env: &Env,
    base: &Settings,
    id: &str,
) -> Result<std::result::Result<Option<Rc<Settings>>, Result<worker::Response>>> {
    use crate::worker::runtime::respond::error;
    if id == DEFAULT_SOURCE_ID {
        return Ok(Ok(None));
    }
    let records = all(env, false).await?;
    let Some(record) = records.iter().find(|r| r.id == id) else {
        return Ok(Err(error(404, "Source not found")));
    };
    Ok(match settings_for(base, record) {
        Some(own) => Ok(Some(own)),
        None => Err(error(
            409,
            "This source's secrets do not open with EVENT_ENCRYPTION_KEY",
        )),
    })
}
