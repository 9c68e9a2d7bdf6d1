//! Small shared pieces: the HTTP traits, ids and entropy, sealing, retry timing, URL
//! reading, keyset paging, and the SQL statement type every store runs.

pub mod entropy;
pub mod http;
pub mod page;
pub mod request_url;
pub mod retry;
pub mod seal;
pub mod sql;
