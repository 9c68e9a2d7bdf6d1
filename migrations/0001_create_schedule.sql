-- The schedule table of Eka's SDKs, in SQLite types (epoch seconds).
-- Must equal src/sql.rs create_table(Sqlite); a unit test checks it.
CREATE TABLE IF NOT EXISTS eka_webhook_schedule_appointment (
  appointment_id TEXT NOT NULL PRIMARY KEY,
  start_time INTEGER NOT NULL DEFAULT 0,
  end_time INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT '',
  visit_type TEXT NOT NULL DEFAULT '',
  created_at INTEGER NOT NULL DEFAULT 0,
  p_aid TEXT NULL DEFAULT NULL,
  reminder_sent_at INTEGER NULL DEFAULT NULL
);
CREATE INDEX IF NOT EXISTS idx_start_time ON eka_webhook_schedule_appointment (start_time);
