//! The owning object's own bookkeeping tables (its SQLite) as `Statement`s: the outbox of writes
//! for D1 and other objects (pending entries, the retry state, entries set aside, the failures of
//! the entry at its head), the owners an index shard lists, its `meta` keys (owner, source,
//! walk), and the reads across tables its alarm makes. The rule they serve is
//! [`super::outbox`]'s; the object runs them as they are.

use crate::support::sql::{SqlValue, Statement};

/// Writes waiting, in order.
pub const OUTBOX_TABLE: &str = "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY \
     AUTOINCREMENT, entry TEXT NOT NULL, enqueued_at INTEGER NOT NULL)";
/// The outbox's retry state (one row).
pub const RETRY_STATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS retry_state (id INTEGER \
     PRIMARY KEY CHECK (id = 1), attempts INTEGER NOT NULL, last_error TEXT, next_at INTEGER)";
/// Keys and values: the owner, the source, a walk, the outbox head, an event's source.
pub const META_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)";
/// The owners an index shard lists.
pub const INDEX_OWNERS_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS index_owners (owner TEXT PRIMARY KEY, since INTEGER NOT NULL)";
/// Entries set aside (see [`super::outbox::ASIDE_AFTER`]).
pub const OUTBOX_ASIDE_TABLE: &str = "CREATE TABLE IF NOT EXISTS outbox_aside (seq INTEGER \
     PRIMARY KEY, entry TEXT NOT NULL, enqueued_at INTEGER NOT NULL, aside_at INTEGER NOT NULL, \
     failures INTEGER NOT NULL, last_error TEXT)";

/// The `meta` key of the outbox head's failures (`<seq>:<failures>`).
const HEAD: &str = "outbox_head";

fn int(n: i64) -> SqlValue {
    SqlValue::Int(n)
}

/// Appends an entry (its JSON) enqueued at `now_ms`; returns its `seq`.
pub fn push_entry(entry: &str, now_ms: i64) -> Statement {
    Statement::new(
        "INSERT INTO outbox (entry, enqueued_at) VALUES (?, ?) RETURNING seq",
        vec![entry.into(), int(now_ms)],
    )
}

/// How many entries wait (`n`).
pub fn pending_count() -> Statement {
    Statement::new("SELECT COUNT(*) AS n FROM outbox", vec![])
}

/// The first `limit` entries, in order (`seq`, `entry`).
pub fn first_entries(limit: i64) -> Statement {
    Statement::new(
        "SELECT seq, entry FROM outbox ORDER BY seq LIMIT ?",
        vec![int(limit)],
    )
}

/// Entry `seq` was taken.
pub fn drop_entry(seq: i64) -> Statement {
    Statement::new("DELETE FROM outbox WHERE seq = ?", vec![int(seq)])
}

/// The retry state (`attempts`, `last_error`, `next_at`; no row: none yet).
pub fn select_retry() -> Statement {
    Statement::new(
        "SELECT attempts, last_error, next_at FROM retry_state WHERE id = 1",
        vec![],
    )
}

/// The retry state after a drain: `attempts` failed in a row, the last error, the next try.
pub fn set_retry(attempts: i64, last_error: Option<&str>, next_at_ms: i64) -> Statement {
    Statement::new(
        "INSERT INTO retry_state (id, attempts, last_error, next_at) VALUES (1, ?, ?, ?) \
         ON CONFLICT(id) DO UPDATE SET attempts = excluded.attempts, \
         last_error = excluded.last_error, next_at = excluded.next_at",
        vec![
            int(attempts),
            last_error.map_or(SqlValue::Null, SqlValue::from),
            int(next_at_ms),
        ],
    )
}

/// The head's failures as kept (`text`; read with [`head_failures`]).
pub fn select_head() -> Statement {
    meta_get(HEAD)
}

/// The failures that counted of entry `seq`, from the kept head (none, or another entry's: 0).
pub fn head_failures(kept: Option<&str>, seq: i64) -> u32 {
    kept.and_then(|v| v.split_once(':'))
        .filter(|(s, _)| s.parse::<i64>().ok() == Some(seq))
        .and_then(|(_, n)| n.parse::<u32>().ok())
        .unwrap_or(0)
}

/// Entry `seq` at the head has failed `failures` times (that counted).
pub fn set_head(seq: i64, failures: u32) -> Statement {
    meta_set(HEAD, &format!("{seq}:{failures}"))
}

/// Moves entry `seq` aside at `now_ms`, with its failures and last error (then
/// [`drop_entry`] and [`forget_head`]).
pub fn move_aside(seq: i64, now_ms: i64, failures: u32, error: &str) -> Statement {
    Statement::new(
        "INSERT OR REPLACE INTO outbox_aside (seq, entry, enqueued_at, aside_at, failures, \
         last_error) SELECT seq, entry, enqueued_at, ?, ?, ? FROM outbox WHERE seq = ?",
        vec![
            int(now_ms),
            int(i64::from(failures)),
            error.into(),
            int(seq),
        ],
    )
}

/// The head's count goes (its entry left the head).
pub fn forget_head() -> Statement {
    meta_delete(HEAD)
}

/// How many entries are aside (`n`).
pub fn aside_count() -> Statement {
    Statement::new("SELECT COUNT(*) AS n FROM outbox_aside", vec![])
}

/// Entry `seq` set aside (`entry`).
pub fn select_aside(seq: i64) -> Statement {
    Statement::new(
        "SELECT entry FROM outbox_aside WHERE seq = ?",
        vec![int(seq)],
    )
}

/// Entry `seq`, tried again by an operator, failed again with `error`: it stays aside.
pub fn aside_failed_again(seq: i64, error: &str) -> Statement {
    Statement::new(
        "UPDATE outbox_aside SET failures = failures + 1, last_error = ? WHERE seq = ?",
        vec![error.into(), int(seq)],
    )
}

/// Entry `seq` leaves the aside list (applied or dropped).
pub fn drop_aside(seq: i64) -> Statement {
    Statement::new("DELETE FROM outbox_aside WHERE seq = ?", vec![int(seq)])
}

/// The entries aside as the admin sees them: `seq`, `enqueuedAt`, `asideAt`, `failures`,
/// `lastError`, `kind` (`d1` or `relay`) and `target` (the relay's object), read from the entry.
pub fn list_aside() -> Statement {
    Statement::new(
        "SELECT seq, enqueued_at AS enqueuedAt, aside_at AS asideAt, failures, \
         last_error AS lastError, \
         CASE WHEN json_extract(entry, '$.relay') IS NULL THEN 'd1' ELSE 'relay' END AS kind, \
         json_extract(entry, '$.relay.owner') AS target FROM outbox_aside ORDER BY seq",
        vec![],
    )
}

/// An index shard lists `owner` (from `now_ms`; a listed owner keeps its first time).
pub fn add_owner(owner: &str, now_ms: i64) -> Statement {
    Statement::new(
        "INSERT OR IGNORE INTO index_owners (owner, since) VALUES (?, ?)",
        vec![owner.into(), int(now_ms)],
    )
}

/// An index shard no longer lists `owner`.
pub fn remove_owner(owner: &str) -> Statement {
    Statement::new(
        "DELETE FROM index_owners WHERE owner = ?",
        vec![owner.into()],
    )
}

/// The owners listed after `after` (`""`: from the first), by name, at most `limit` (`text`).
pub fn owners_after(after: &str, limit: i64) -> Statement {
    Statement::new(
        "SELECT owner AS text FROM index_owners WHERE owner > ? ORDER BY owner LIMIT ?",
        vec![after.into(), int(limit)],
    )
}

/// The value of `key` (`text`).
pub fn meta_get(key: &str) -> Statement {
    Statement::new(
        "SELECT value AS text FROM meta WHERE key = ?",
        vec![key.into()],
    )
}

/// `key` is `value` (written only when it changes).
pub fn meta_set(key: &str, value: &str) -> Statement {
    Statement::new(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE \
         SET value = excluded.value WHERE value <> excluded.value",
        vec![key.into(), value.into()],
    )
}

/// `key` goes.
pub fn meta_delete(key: &str) -> Statement {
    Statement::new("DELETE FROM meta WHERE key = ?", vec![key.into()])
}

/// How many of the object's own tables exist (`n`; none: a new object, which makes only the
/// tables its intake and commit use).
pub fn stored_tables() -> Statement {
    Statement::new(
        "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name IN ('claims', \
         'outbox', 'retry_state', 'meta', 'intake', 'outgoing', 'reminders', 'index_owners', \
         'outbox_aside', 'messages')",
        vec![],
    )
}

/// Rows the object keeps but for its deliveries (`n`; 0 and no delivery rows: its storage can
/// go). `walk` counts: a walk in progress keeps the object. `later`: the tables a new object
/// makes on first need exist (else they hold nothing and are not read: [`wake_reads`]).
pub fn kept_rows(later: bool) -> Statement {
    Statement::new(
        if later {
            "SELECT (SELECT COUNT(*) FROM reminders) + (SELECT COUNT(*) FROM claims) + \
             (SELECT COUNT(*) FROM outbox) + (SELECT COUNT(*) FROM outbox_aside) + \
             (SELECT COUNT(*) FROM index_owners) + (SELECT COUNT(*) FROM intake) + \
             (SELECT COUNT(*) FROM meta WHERE key = 'walk') AS n"
        } else {
            "SELECT (SELECT COUNT(*) FROM claims) + (SELECT COUNT(*) FROM outbox) + \
             (SELECT COUNT(*) FROM intake) + (SELECT COUNT(*) FROM meta WHERE key = 'walk') AS n"
        },
        vec![],
    )
}

/// What an object's alarm reads. `later`: the tables a new object makes on first need
/// (reminders, messages, entries set aside, index owners) exist. Until they do they hold
/// nothing, and neither does `outgoing` (an event is kept for the fan-out only once they are
/// made): the wake skips those parts rather than making four tables to find them empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WakeReads {
    /// Due reminders, and finished ones past their retention.
    pub reminders: bool,
    /// The fan-out, messages due, held messages and bodies past the retention.
    pub deliveries: bool,
    /// Entries set aside (whether the object may leave its index shard).
    pub aside: bool,
}

/// See [`WakeReads`].
pub fn wake_reads(later: bool) -> WakeReads {
    WakeReads {
        reminders: later,
        deliveries: later,
        aside: later,
    }
}

/// The earliest pending reminder's attempt (`reminder`, only with `reminders`: a new object's
/// table may not exist yet) and the oldest claim (`claim`), for the alarm.
pub fn next_due(reminders: bool) -> Statement {
    Statement::new(
        if reminders {
            "SELECT (SELECT MIN(next_attempt_at) FROM reminders WHERE state = 'pending') \
             AS reminder, (SELECT MIN(claimed_at) FROM claims) AS claim"
        } else {
            "SELECT MIN(claimed_at) AS claim FROM claims"
        },
        vec![],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<Statement> {
        vec![
            push_entry("{}", 1),
            pending_count(),
            first_entries(50),
            drop_entry(1),
            select_retry(),
            set_retry(1, Some("e"), 2),
            set_retry(0, None, 2),
            select_head(),
            set_head(3, 2),
            move_aside(3, 4, 5, "e"),
            forget_head(),
            aside_count(),
            select_aside(3),
            aside_failed_again(3, "e"),
            drop_aside(3),
            list_aside(),
            add_owner("o", 1),
            remove_owner("o"),
            owners_after("", 10),
            meta_get("k"),
            meta_set("k", "v"),
            meta_delete("k"),
            kept_rows(true),
            kept_rows(false),
            stored_tables(),
            next_due(true),
            next_due(false),
        ]
    }

    #[test]
    fn every_statement_binds_each_placeholder() {
        for s in all() {
            assert_eq!(s.sql.matches('?').count(), s.params.len(), "{}", s.sql);
        }
    }

    #[test]
    fn the_head_counts_only_for_its_own_entry() {
        let kept = set_head(7, 3);
        assert_eq!(kept.params[1], SqlValue::Text("7:3".into()));
        assert_eq!(head_failures(Some("7:3"), 7), 3);
        assert_eq!(head_failures(Some("7:3"), 8), 0, "another entry's count");
        assert_eq!(
            head_failures(Some("17:3"), 7),
            0,
            "a prefix is not the entry"
        );
        assert_eq!(head_failures(None, 7), 0);
        assert_eq!(head_failures(Some("garbage"), 7), 0);
    }

    #[test]
    fn a_retry_without_an_error_binds_null() {
        assert_eq!(set_retry(0, None, 2).params[1], SqlValue::Null);
        assert_eq!(
            set_retry(1, Some("e"), 2).params[1],
            SqlValue::Text("e".into())
        );
    }

    #[test]
    fn moving_aside_copies_the_entry_with_its_failures_and_error() {
        let moved = move_aside(3, 4, 5, "D1 refused");
        assert!(moved.sql.contains("FROM outbox WHERE seq = ?"));
        assert_eq!(
            moved.params,
            vec![int(4), int(5), "D1 refused".into(), int(3)]
        );
    }

    #[test]
    fn an_index_owner_keeps_its_first_time_and_owners_page_by_name() {
        assert!(add_owner("o", 1).sql.contains("INSERT OR IGNORE"));
        let page = owners_after("b", 10);
        assert!(page.sql.contains("owner > ? ORDER BY owner LIMIT ?"));
        assert_eq!(page.params, vec!["b".into(), int(10)]);
    }

    #[test]
    fn a_walk_keeps_the_object_and_a_new_object_reads_no_reminders() {
        assert!(kept_rows(true).sql.contains("key = 'walk'"));
        assert!(!next_due(false).sql.contains("reminders"));
        assert!(next_due(true).sql.contains("state = 'pending'"));
    }

    #[test]
    fn a_wake_without_the_later_tables_reads_none_of_them() {
        let later = ["reminders", "outbox_aside", "index_owners", "messages"];
        let hot = kept_rows(false).sql;
        assert!(later.iter().all(|t| !hot.contains(t)), "{hot}");
        // Every hot table that keeps the object is still counted.
        for t in ["claims", "outbox", "intake", "key = 'walk'"] {
            assert!(hot.contains(t) && kept_rows(true).sql.contains(t), "{t}");
        }
        assert!(later[..3].iter().all(|t| kept_rows(true).sql.contains(t)));
        assert_eq!(
            wake_reads(false),
            WakeReads {
                reminders: false,
                deliveries: false,
                aside: false
            }
        );
        assert_eq!(
            wake_reads(true),
            WakeReads {
                reminders: true,
                deliveries: true,
                aside: true
            }
        );
    }
}
