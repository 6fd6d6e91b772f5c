-- SPEC 10: notifications. One table is both the citizen's inbox and the
-- durable outbox towards the operator's notification service: a consent
-- event's row is written in the event's own transaction (store/consents.rs),
-- a transfer's by the `notify` follower of the log in the transaction that
-- advances its position (store/notifications.rs). Never a person number:
-- transfers carry the record's keyed pseudonym, consent rows the consent id
-- (whose subject is read when the row is shown or sent).
CREATE TABLE notifications (
    -- Stable per notification: the CloudEvents `id`, so receivers dedupe.
    id              TEXT PRIMARY KEY,
    kind            TEXT NOT NULL CHECK (kind IN ('transfer', 'break_glass', 'consent_event', 'consent_expiring')),
    subject_ref     TEXT,
    consent_id      TEXT,
    event           TEXT,
    record_index    BIGINT,
    consumer        TEXT,
    datasets        TEXT,
    decision        TEXT,
    code            TEXT,
    reason          TEXT,
    at              TEXT NOT NULL,
    -- Neither shown nor sent before this (a transfer's `disclose_at`).
    visible_at      TEXT NOT NULL,
    delivery        TEXT NOT NULL DEFAULT 'pending' CHECK (delivery IN ('pending', 'delivered', 'skipped')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_owner     TEXT,
    lease_until     TEXT,
    last_error      TEXT,
    delivered_at    TEXT,
    CHECK ((subject_ref IS NULL) <> (consent_id IS NULL))
);
CREATE INDEX notifications_due ON notifications (delivery, next_attempt_at);
CREATE INDEX notifications_subject ON notifications (subject_ref, at);
CREATE INDEX notifications_consent ON notifications (consent_id);

-- A citizen's choices, under the same keyed pseudonym as the records.
CREATE TABLE notification_settings (
    subject_ref    TEXT PRIMARY KEY,
    transfers      TEXT NOT NULL CHECK (transfers IN ('all', 'denied', 'none')),
    consent_events INTEGER NOT NULL CHECK (consent_events IN (0, 1)),
    updated_at     TEXT NOT NULL
);

-- The follower starts at the end of the log as it is now: an upgraded
-- deployment does not notify its whole history.
INSERT INTO log_followers (name, position, updated_at)
SELECT 'notify', COUNT(*), '1970-01-01T00:00:00.000Z' FROM audit_records WHERE true
ON CONFLICT (name) DO NOTHING;

-- 0010 made `disclosure_delay_days` INTEGER (int4), which the store reads as
-- int8 (as SQLite's INTEGER is): a delayed record could not be read back on
-- PostgreSQL (found by the notify follower's test). BIGINT, as every other
-- count column of audit_records.
ALTER TABLE audit_records ALTER COLUMN disclosure_delay_days TYPE BIGINT;
