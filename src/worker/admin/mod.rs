//! The admin API's handlers: the event log, destinations and their messages, reminders.

pub mod destinations;
pub mod events;
pub mod reminders;
