-- The same schema as migrations/sqlite/0001_init.sql, in PostgreSQL's types.
-- Times are TEXT as in SQLite (RFC 3339 UTC with fixed millisecond
-- precision, which sorts as it compares), so a record's leaf bytes are the
-- same bytes on both backends and `since`/`until` compare the same way.

CREATE TABLE audit_records (
    idx         BIGINT      PRIMARY KEY CHECK (idx >= 0),
    time        TEXT COLLATE "C" NOT NULL,
    transfer_id TEXT        NOT NULL,
    kind        TEXT        NOT NULL CHECK (kind IN ('decision', 'outcome', 'audit_read')),
    consumer    TEXT,
    supplier    TEXT,
    client_id   TEXT,
    provider    TEXT,
    dataset     TEXT,
    method      TEXT        NOT NULL,
    path        TEXT        NOT NULL,
    purpose     TEXT,
    basis       TEXT        CHECK (basis IN ('consent', 'statutory')),
    legal_ref   TEXT,
    consent_id  TEXT,
    subject_ref TEXT,
    decision    TEXT        CHECK (decision IN ('allow', 'deny')),
    code        TEXT,
    status      BIGINT      CHECK (status BETWEEN 100 AND 999),
    bytes       BIGINT      CHECK (bytes >= 0),
    duration_ms BIGINT      CHECK (duration_ms >= 0)
);

-- Unlike SQLite, PostgreSQL does not append the key to secondary indexes, so
-- `idx` is named to serve "… ORDER BY idx" for the audit API's filters.
CREATE INDEX audit_records_time ON audit_records (time);
CREATE INDEX audit_records_transfer ON audit_records (transfer_id, idx);
CREATE INDEX audit_records_subject ON audit_records (subject_ref, idx);
CREATE INDEX audit_records_consumer ON audit_records (consumer, idx);
CREATE INDEX audit_records_dataset ON audit_records (provider, dataset, idx);

-- The log is evidence: records are never changed or removed.
CREATE FUNCTION audit_records_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit records are append-only';
END;
$$;

CREATE TRIGGER audit_records_no_update BEFORE UPDATE OR DELETE ON audit_records
    FOR EACH ROW EXECUTE FUNCTION audit_records_append_only();

CREATE TRIGGER audit_records_no_truncate BEFORE TRUNCATE ON audit_records
    FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only();

-- Consents (section 4). `subject` is the person number in clear: the citizen
-- must be shown their consents, and this is the one place it is kept.
CREATE TABLE consents (
    id           TEXT        PRIMARY KEY,
    requester    TEXT        NOT NULL,
    supplier     TEXT,
    subject      TEXT,
    datasets     TEXT        NOT NULL, -- array of "provider/dataset"
    purpose      TEXT        NOT NULL,
    status       TEXT        NOT NULL CHECK (status IN ('pending', 'granted', 'rejected', 'revoked', 'expired')),
    valid_to     TEXT COLLATE "C" NOT NULL,
    max_uses     BIGINT      CHECK (max_uses IS NULL OR max_uses >= 0),
    uses         BIGINT      NOT NULL DEFAULT 0 CHECK (uses >= 0),
    redirect_url TEXT,
    message      TEXT,
    created_at   TEXT COLLATE "C" NOT NULL,
    updated_at   TEXT COLLATE "C" NOT NULL
);

CREATE INDEX consents_subject ON consents (subject);
CREATE INDEX consents_requester ON consents (requester);

-- Every state change of a consent, written in the same transaction as the change.
CREATE TABLE consent_events (
    consent_id TEXT        NOT NULL REFERENCES consents (id),
    seq        BIGINT      NOT NULL CHECK (seq >= 0),
    type       TEXT        NOT NULL CHECK (type IN ('created', 'accepted', 'rejected', 'revoked', 'expired', 'used')),
    at         TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (consent_id, seq)
);
