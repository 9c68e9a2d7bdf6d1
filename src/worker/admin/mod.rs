//! The admin API's handlers: the event log, destinations and their messages, reminders,
//! sources, the writes objects hold for D1.

pub mod destinations;
pub mod events;
pub mod pending;
pub mod reminders;
pub mod sources;
