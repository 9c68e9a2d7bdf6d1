//! A webhook's way through: the event and its validation, the pipeline that sequences it,
//! the gate's rules, and the ledger port with its claim decision.

pub mod claim_key;
pub mod event;
pub mod gate;
pub mod intake_plan;
pub mod intake_store;
pub mod ledger;
pub mod pipeline;
