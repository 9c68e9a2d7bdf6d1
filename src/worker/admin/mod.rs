//! The admin API's handlers, by concern: the event log, destinations and their messages,
//! reminders, the stored schedule, the writes D1 has not taken yet, sources.

pub mod destinations;
pub mod events;
pub mod pending;
pub mod reminders;
pub mod schedule;
pub mod sources;
