//! The admin API's handlers: the event log, destinations and their messages, reminders,
//! sources.

pub mod destinations;
pub mod events;
pub mod reminders;
pub mod sources;
