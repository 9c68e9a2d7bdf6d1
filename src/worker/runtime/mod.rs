//! What the Worker runs on: its settings from the environment, logging, JSON answers, request
//! bodies under a limit, the `fetch` HTTP client, and D1.

pub mod body;
pub mod d1;
pub mod env;
pub mod error;
pub mod fetch_client;
pub mod log;
pub mod probe;
pub mod respond;
