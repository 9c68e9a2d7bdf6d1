-- Destinations (0.3.0): where accepted events are delivered, each with its own events, secret
-- (sealed with EVENT_ENCRYPTION_KEY, never shown after create/rotate) and delivery health, one
-- row per message (an event for a destination), owned by the appointment's object, which
-- delivers it on its alarm, one row per attempt. src/delivery_log.rs reads this file to create
-- the same tables.
CREATE TABLE IF NOT EXISTS eka_webhook_destination (
  id TEXT NOT NULL PRIMARY KEY,
  source TEXT NOT NULL,
  url TEXT NOT NULL,
  events TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  format TEXT NOT NULL,
  description TEXT NULL,
  secrets TEXT NULL,
  consecutive_failures INTEGER NOT NULL DEFAULT 0,
  last_success_at INTEGER NULL,
  last_failure_at INTEGER NULL,
  paused_reason TEXT NULL,
  paused_at INTEGER NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS eka_webhook_delivery (
  id TEXT NOT NULL PRIMARY KEY,
  event_id TEXT NOT NULL,
  destination_id TEXT NOT NULL,
  event TEXT NOT NULL,
  owner TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER NULL,
  last_error TEXT NULL,
  last_status INTEGER NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_delivery_destination ON eka_webhook_delivery (destination_id, status);
CREATE INDEX IF NOT EXISTS idx_delivery_event ON eka_webhook_delivery (event_id);
CREATE TABLE IF NOT EXISTS eka_webhook_delivery_attempt (
  id TEXT NOT NULL PRIMARY KEY,
  delivery_id TEXT NULL,
  event_id TEXT NOT NULL,
  destination_id TEXT NOT NULL,
  attempt INTEGER NOT NULL,
  status INTEGER NULL,
  ok INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  error TEXT NULL,
  response_body TEXT NULL,
  at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS idx_attempt_destination ON eka_webhook_delivery_attempt (destination_id, id);
CREATE INDEX IF NOT EXISTS idx_attempt_event ON eka_webhook_delivery_attempt (event_id);
CREATE INDEX IF NOT EXISTS idx_attempt_delivery ON eka_webhook_delivery_attempt (delivery_id);
