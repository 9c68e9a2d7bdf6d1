//! eka-webhook-edge: the portable core of the Eka Care webhook receiver.
//!
//! Pure logic and traits only: the clock and all I/O (HTTP, the schedule store, delivery)
//! are passed in, so the same code runs natively, in a Cloudflare Worker (`worker` feature)
//! and in Node (`node` feature). [`webhook::pipeline::Pipeline::handle`] sequences a webhook.

#![warn(missing_docs)]

pub mod destinations;
pub mod eka;
pub mod event_log;
pub mod reminders;
pub mod schedule;
pub mod settings;
pub mod signing;
pub mod sources;
pub mod support;
pub mod webhook;

#[cfg(feature = "node")]
pub mod node;
#[cfg(feature = "worker")]
pub mod worker;
