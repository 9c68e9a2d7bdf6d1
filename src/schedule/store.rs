//! A `ScheduleStore` over any SQL connection: D1 in the Worker, `mysql2` or `node:sqlite` in
//! Node. The table is created on first use and columns missing from an older layout are
//! added; once that succeeds it is not repeated, and a failure is retried on the next use.

use std::cell::Cell;
use std::rc::Rc;

use serde_json::Value;

use crate::schedule::sql;
use crate::schedule::{ScheduleRow, ScheduleStore, ScheduleWrite, StoreError};
use crate::support::sql::{Dialect, Statement};

/// Runs statements. Rows come back as JSON objects keyed by column name.
#[allow(async_fn_in_trait)]
pub trait SqlExecutor {
    /// Runs one statement; returns its rows (empty for statements without).
    async fn query(&self, statement: &Statement) -> Result<Vec<Value>, StoreError>;

    /// Runs statements that belong together; atomically where the backend can (D1 `batch`).
    async fn batch(&self, statements: &[Statement]) -> Result<(), StoreError> {
        for statement in statements {
            self.query(statement).await?;
        }
        Ok(())
    }
}

/// The schedule table on an SQL executor.
pub struct SqlStore<E> {
    executor: E,
    dialect: Dialect,
    ready: Rc<Cell<bool>>,
}

impl<E: SqlExecutor> SqlStore<E> {
    /// `ready` records that the table was ensured; share one across stores of the same
    /// database (the Worker keeps one per isolate).
    pub fn new(executor: E, dialect: Dialect, ready: Rc<Cell<bool>>) -> Self {
        SqlStore {
            executor,
            dialect,
            ready,
        }
    }

    /// Creates the table if needed and adds missing columns.
    pub async fn ensure_table(&self) -> Result<(), StoreError> {
        if self.ready.get() {
            return Ok(());
        }
        ensure_schedule_table(&self.executor, self.dialect).await?;
        self.ready.set(true);
        Ok(())
    }
}

/// Creates the schedule table on `executor` if needed and adds the columns an older layout
/// lacks.
pub async fn ensure_schedule_table<E: SqlExecutor>(
    executor: &E,
    dialect: Dialect,
) -> Result<(), StoreError> {
    for statement in sql::create_table(dialect) {
        executor.query(&statement).await?;
    }
    let columns: Vec<String> = executor
        .query(&sql::list_columns(dialect))
        .await?
        .iter()
        .filter_map(|row| column_name(row).map(str::to_owned))
        .collect();
    for statement in sql::add_missing_columns(dialect, &columns) {
        executor.query(&statement).await?;
    }
    Ok(())
}

/// `name` (or MySQL's `COLUMN_NAME`, whatever the case the driver reports).
fn column_name(row: &Value) -> Option<&str> {
    row.as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("name") || k.eq_ignore_ascii_case("column_name"))
        .and_then(|(_, v)| v.as_str())
}

impl<E: SqlExecutor> ScheduleStore for SqlStore<E> {
    async fn apply(&self, writes: &[ScheduleWrite]) -> Result<(), StoreError> {
        self.ensure_table().await?;
        let statements: Vec<Statement> =
            writes.iter().map(|w| sql::write(self.dialect, w)).collect();
        self.executor.batch(&statements).await
    }

    async fn find_between(&self, start: i64, end: i64) -> Result<Vec<ScheduleRow>, StoreError> {
        self.ensure_table().await?;
        let rows = self.executor.query(&sql::find_between(start, end)).await?;
        Ok(rows.iter().filter_map(sql::row_from_json).collect())
    }

    async fn mark_reminder_sent(
        &self,
        appointment_id: &str,
        at_secs: i64,
    ) -> Result<bool, StoreError> {
        self.ensure_table().await?;
        self.executor
            .query(&sql::mark_reminder_sent(appointment_id, at_secs))
            .await?;
        let row = self
            .executor
            .query(&sql::select_row(appointment_id))
            .await?;
        Ok(!row.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::executor::block_on;
    use serde_json::json;
    use std::cell::RefCell;

    /// Records statements; lists the given columns; can fail the first N statements.
    struct Recorder {
        seen: RefCell<Vec<String>>,
        columns: Vec<&'static str>,
        failures: Cell<u32>,
    }

    impl SqlExecutor for &Recorder {
        async fn query(&self, statement: &Statement) -> Result<Vec<Value>, StoreError> {
            self.seen.borrow_mut().push(statement.sql.clone());
            if self.failures.get() > 0 {
                self.failures.set(self.failures.get() - 1);
                return Err(StoreError::Backend("down".into()));
            }
            if statement.sql.contains("pragma_table_info")
                || statement.sql.contains("INFORMATION_SCHEMA")
            {
                return Ok(self
                    .columns
                    .iter()
                    .map(|c| json!({ "COLUMN_NAME": c }))
                    .collect());
            }
            Ok(vec![])
        }
    }

    fn recorder(columns: Vec<&'static str>, failures: u32) -> Recorder {
        Recorder {
            seen: RefCell::new(vec![]),
            columns,
            failures: Cell::new(failures),
        }
    }

    #[test]
    fn the_table_is_ensured_once_and_old_layouts_get_their_columns() {
        let rec = recorder(crate::schedule::sql::COLUMNS_0_1_0.to_vec(), 0);
        let store = SqlStore::new(&rec, Dialect::Mysql, Rc::new(Cell::new(false)));
        block_on(store.find_between(0, 1)).unwrap();
        block_on(store.find_between(0, 1)).unwrap();
        let seen = rec.seen.borrow();
        assert_eq!(
            seen.iter()
                .filter(|s| s.starts_with("CREATE TABLE"))
                .count(),
            1
        );
        let added: Vec<&String> = seen
            .iter()
            .filter(|s| s.starts_with("ALTER TABLE"))
            .collect();
        assert_eq!(added.len(), 2);
        assert!(added[0].contains("p_aid") && added[1].contains("reminder_sent_at"));
    }

    #[test]
    fn a_failed_ensure_is_retried_on_the_next_use() {
        let rec = recorder(vec![], 1);
        let ready = Rc::new(Cell::new(false));
        let store = SqlStore::new(&rec, Dialect::Sqlite, Rc::clone(&ready));
        assert!(block_on(store.find_between(0, 1)).is_err());
        assert!(!ready.get());
        assert!(block_on(store.find_between(0, 1)).is_ok());
        assert!(ready.get());
        assert_eq!(
            rec.seen
                .borrow()
                .iter()
                .filter(|s| s.starts_with("CREATE TABLE"))
                .count(),
            2
        );
    }
}
