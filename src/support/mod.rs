//! Small shared pieces: the HTTP traits, ids and entropy, sealing, retry timing, and URL
//! reading.

pub mod entropy;
pub mod http;
pub mod request_url;
pub mod retry;
pub mod seal;
