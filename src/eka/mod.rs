//! Eka's API: the client (token, fetches), enrichment of a webhook, and the range query.

pub mod api;
pub mod enrich;
pub mod find;
