//! Signatures: Eka's HMAC scheme, the JavaScript canonicalisation it signs, Standard
//! Webhooks, and the signed requests this service sends.

pub mod canonical;
pub mod outbound;
pub mod signature;
pub mod standard_webhooks;
