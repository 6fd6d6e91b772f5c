-- Audit records: the leaves of the transparency log, in commit order.
-- `idx` is the leaf index: dense from 0, assigned by the writer inside the
-- transaction that inserts the record. `time` is the canonical RFC 3339 UTC
-- string with milliseconds (fixed width, so text order is time order).
CREATE TABLE audit_records (
    idx         INTEGER PRIMARY KEY CHECK (idx >= 0),
    time        TEXT    NOT NULL,
    transfer_id TEXT    NOT NULL,
    kind        TEXT    NOT NULL CHECK (kind IN ('decision', 'outcome', 'audit_read')),
    consumer    TEXT,
    supplier    TEXT,
    client_id   TEXT,
    provider    TEXT,
    dataset     TEXT,
    method      TEXT    NOT NULL,
    path        TEXT    NOT NULL,
    purpose     TEXT,
    basis       TEXT    CHECK (basis IN ('consent', 'statutory')),
    legal_ref   TEXT,
    consent_id  TEXT,
    subject_ref TEXT,
    decision    TEXT    CHECK (decision IN ('allow', 'deny')),
    code        TEXT,
    status      INTEGER CHECK (status BETWEEN 100 AND 999),
    bytes       INTEGER CHECK (bytes >= 0),
    duration_ms INTEGER CHECK (duration_ms >= 0)
) STRICT;

-- Every secondary index in SQLite ends with the rowid (`idx`), so these also
-- serve "… ORDER BY idx" for the audit API's filters and cursor.
CREATE INDEX audit_records_time ON audit_records (time);
CREATE INDEX audit_records_transfer ON audit_records (transfer_id);
CREATE INDEX audit_records_subject ON audit_records (subject_ref);
CREATE INDEX audit_records_consumer ON audit_records (consumer);
CREATE INDEX audit_records_dataset ON audit_records (provider, dataset);

-- The log is evidence: records are never changed or removed.
CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;

CREATE TRIGGER audit_records_no_delete BEFORE DELETE ON audit_records
BEGIN
    SELECT RAISE(ABORT, 'audit records are append-only');
END;

-- Consents (section 4). `subject` is the person number in clear: the citizen
-- must be shown their consents, and this is the one place it is kept.
CREATE TABLE consents (
    id           TEXT    PRIMARY KEY,
    requester    TEXT    NOT NULL,
    supplier     TEXT,
    subject      TEXT,
    datasets     TEXT    NOT NULL, -- JSON array of "provider/dataset"
    purpose      TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'granted', 'rejected', 'revoked', 'expired')),
    valid_to     TEXT    NOT NULL,
    max_uses     INTEGER CHECK (max_uses IS NULL OR max_uses >= 0),
    uses         INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0),
    redirect_url TEXT,
    message      TEXT,
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL
) STRICT;

CREATE INDEX consents_subject ON consents (subject);
CREATE INDEX consents_requester ON consents (requester);

-- Every state change of a consent, written in the same transaction as the change.
CREATE TABLE consent_events (
    consent_id TEXT    NOT NULL REFERENCES consents (id),
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    type       TEXT    NOT NULL CHECK (type IN ('created', 'accepted', 'rejected', 'revoked', 'expired', 'used')),
    at         TEXT    NOT NULL,
    PRIMARY KEY (consent_id, seq)
) STRICT;
