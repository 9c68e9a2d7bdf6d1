-- The event log (0.2.0): one row per distinct delivery that passed the signature check (ids
-- only, no patient data), bodies sealed with EVENT_ENCRYPTION_KEY for replay, and refusals
-- counted per hour and reason. src/event_log.rs reads this file to create the same tables.
CREATE TABLE IF NOT EXISTS eka_webhook_event (
  id TEXT NOT NULL PRIMARY KEY,
  dedup_key TEXT NULL,
  event TEXT NOT NULL,
  transaction_id TEXT NULL,
  appointment_id TEXT NULL,
  business_id TEXT NULL,
  received_at INTEGER NOT NULL,
  status TEXT NOT NULL,
  http_status INTEGER NULL,
  error TEXT NULL,
  deliveries INTEGER NOT NULL DEFAULT 1,
  replays INTEGER NOT NULL DEFAULT 0,
  last_seen_at INTEGER NOT NULL,
  owner TEXT NULL
);
CREATE INDEX IF NOT EXISTS idx_event_received ON eka_webhook_event (received_at);
CREATE INDEX IF NOT EXISTS idx_event_status ON eka_webhook_event (status, received_at);
CREATE INDEX IF NOT EXISTS idx_event_appointment ON eka_webhook_event (appointment_id);
CREATE INDEX IF NOT EXISTS idx_event_dedup ON eka_webhook_event (dedup_key);
CREATE TABLE IF NOT EXISTS eka_webhook_event_body (
  event_id TEXT NOT NULL PRIMARY KEY,
  sealed TEXT NOT NULL,
  stored_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_event_body_stored ON eka_webhook_event_body (stored_at);
CREATE TABLE IF NOT EXISTS eka_webhook_refusal (
  hour INTEGER NOT NULL,
  reason TEXT NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (hour, reason)
);
