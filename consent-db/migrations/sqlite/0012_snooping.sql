-- SPEC 11: snooping findings and the state of their rules, written by the
-- "snoop" follower of the log (consent-db/src/store/snoop.rs) in the same
-- transaction that advances its position.

-- One finding per rule and triggering record (id "{record_index}-{rule}");
-- seq = record_index * 8 + the rule's ordinal orders and pages them.
CREATE TABLE snoop_findings (
    id TEXT PRIMARY KEY,
    seq BIGINT NOT NULL UNIQUE,
    rule TEXT NOT NULL,
    time TEXT NOT NULL,
    found_at TEXT NOT NULL,
    consumer TEXT,
    dataset TEXT,
    record_index BIGINT NOT NULL,
    -- JSON arrays: the indexes and transfer ids of the records behind it.
    records TEXT NOT NULL,
    transfer_ids TEXT NOT NULL,
    summary TEXT NOT NULL
);
CREATE INDEX snoop_findings_time ON snoop_findings (time);

-- subjects_per_hour: per consumer, the hour being counted and its usual count.
CREATE TABLE snoop_consumers (
    consumer TEXT PRIMARY KEY,
    hour BIGINT NOT NULL,
    subjects BIGINT NOT NULL,
    baseline REAL NOT NULL,
    alerted BIGINT NOT NULL
);

-- The distinct subjects of each consumer's current hour (older hours are
-- deleted when the consumer's hour moves on), with the first record of each.
CREATE TABLE snoop_subject_hours (
    consumer TEXT NOT NULL,
    hour BIGINT NOT NULL,
    subject_ref TEXT NOT NULL,
    first_index BIGINT NOT NULL,
    transfer_id TEXT NOT NULL,
    PRIMARY KEY (consumer, hour, subject_ref)
);
