//! eka-webhook-edge: the portable core of the Eka Care webhook receiver.
//!
//! Pure logic and traits only: the clock and all I/O (HTTP, the schedule store, delivery)
//! are passed in, so the same code runs natively, in a Cloudflare Worker (`worker` feature)
//! and in Node (`node` feature). [`pipeline::Pipeline::handle`] sequences a webhook.

#![warn(missing_docs)]

pub mod canonical;
pub mod cron_time;
pub mod delivery_log;
pub mod destination;
pub mod eka_api;
pub mod enrich;
pub mod entropy;
pub mod event;
pub mod event_log;
pub mod find;
pub mod gate;
pub mod http;
pub mod ledger;
pub mod outbound;
pub mod pipeline;
pub mod reminder;
pub mod request_url;
pub mod retry;
pub mod schedule;
pub mod seal;
pub mod settings;
pub mod signature;
pub mod sql;
pub mod sql_store;
pub mod standard_webhooks;

#[cfg(feature = "node")]
pub mod node;
#[cfg(feature = "worker")]
pub mod worker;
