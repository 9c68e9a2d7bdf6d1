//! Small shared pieces: the HTTP traits, ids and entropy, sealing, retry timing, URL
//! reading, and the SQL statement type every store runs.

pub mod entropy;
pub mod http;
pub mod request_url;
pub mod retry;
pub mod seal;
pub mod sql;
