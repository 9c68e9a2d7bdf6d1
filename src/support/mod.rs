//! Small shared pieces: the HTTP traits, ids and entropy, sealing, retry timing, the outbox's
//! rule, URL reading, keyset paging, the SQL statement type every store runs, and the admin API's
//! bearer token.

pub mod bearer;
pub mod capped_body;
pub mod entropy;
pub mod from_json;
pub mod http;
pub mod join;
pub mod json_body;
pub mod object_store;
pub mod outbox;
pub mod page;
pub mod request_url;
pub mod retry;
pub mod seal;
pub mod sql;
