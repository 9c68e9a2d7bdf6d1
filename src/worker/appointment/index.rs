//! The index shard role: objects named `index:<n>` (the same `AppointmentLedger` class) list
//! the appointment objects that hold writes D1 refused, so `/admin/pending-writes` can find
//! them without a global object. An appointment object registers in the shard its name hashes
//! to ([`index_shard`]) when its outbox fills and leaves it when the outbox drains.

use worker::{Result, State};

use super::storage::{exec, now_ms, rows, text};
use crate::support::object_store;

/// Objects that currently hold writes D1 refused register in one of this many index shards
/// (named `index:<n>`).
pub const INDEX_SHARDS: u32 = 8;

/// The index shard an owner registers in (FNV-1a of its name).
pub fn index_shard(owner: &str) -> String {
    let hash = owner.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    format!("index:{}", hash % INDEX_SHARDS)
}

/// An index shard's table of owners (`index_owners` in the object's SQLite).
pub(super) struct IndexShard<'a> {
    state: &'a State,
}

impl<'a> IndexShard<'a> {
    /// The shard kept in `state`.
    pub(super) fn of(state: &'a State) -> Self {
        IndexShard { state }
    }

    /// `owner` started (`holding`) or stopped holding pending writes.
    pub(super) fn set(&self, owner: &str, holding: bool) -> Result<()> {
        let statement = if holding {
            object_store::add_owner(owner, now_ms())
        } else {
            object_store::remove_owner(owner)
        };
        exec(&self.state.storage().sql(), &statement)?;
        Ok(())
    }

    /// The owners registered, by name: after `after` when given, at most `limit` (keyset
    /// paging for `/admin/pending-writes`).
    pub(super) fn owners(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let found = rows(exec(
            &self.state.storage().sql(),
            &object_store::owners_after(after.unwrap_or(""), limit),
        )?)?;
        Ok(found.iter().filter_map(|r| text(r, "text")).collect())
    }
}
