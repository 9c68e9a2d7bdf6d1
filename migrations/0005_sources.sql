-- Sources (issue 21): one Eka account each, kept in D1. Every secret of a source (client id
-- and secret, API key, signing keys, reminder signing key) is in `secrets`, sealed with
-- EVENT_ENCRYPTION_KEY (the source id as associated data); the other columns hold none.
-- The account of the environment variables is the source `default` and has no row.
-- src/sources/store.rs reads this file to create the same tables (and adds the columns).
CREATE TABLE IF NOT EXISTS eka_webhook_source (
  id TEXT NOT NULL PRIMARY KEY,
  name TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  business_id TEXT NULL,
  api_base_url TEXT NULL,
  allowed_events TEXT NULL,
  origin_url TEXT NULL,
  reminder_callback_url TEXT NULL,
  reminder_offsets TEXT NULL,
  dedup_window_hours INTEGER NULL,
  secrets TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS idx_source_business ON eka_webhook_source (business_id);
-- Which source an appointment belongs to, beside the SDK's schedule table (whose layout the
-- Node and Python SDKs share, so it stays as it is). No row: the default source.
CREATE TABLE IF NOT EXISTS eka_webhook_appointment_source (
  appointment_id TEXT NOT NULL PRIMARY KEY,
  source TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_appointment_source ON eka_webhook_appointment_source (source);
-- Refusals of a source's path, per hour, source and reason (the default source's stay in
-- eka_webhook_refusal, whose key has no source).
CREATE TABLE IF NOT EXISTS eka_webhook_source_refusal (
  hour INTEGER NOT NULL,
  source TEXT NOT NULL,
  reason TEXT NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (hour, source, reason)
);
-- The source of an event (NULL: the default source), and the sources a destination
-- subscribes to (a JSON list; NULL: ["*"], every source).
ALTER TABLE eka_webhook_event ADD COLUMN source TEXT NULL;
ALTER TABLE eka_webhook_destination ADD COLUMN sources TEXT NULL;
CREATE INDEX IF NOT EXISTS idx_event_source ON eka_webhook_event (source, received_at);
