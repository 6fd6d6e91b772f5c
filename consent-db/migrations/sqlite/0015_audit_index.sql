-- The log is the hot path's only write (issue #21): a batch of records
-- inserts into `audit_records` with its primary key only. The columns the
-- audit API and the citizen's views filter on are copied into `audit_index`
-- by the indexer (consent-db/src/store/indexer.rs), a follower of the log
-- that runs behind it; readers catch it up to the log's end before they
-- query, so they still see their own writes. `audit_index` is derived: it
-- can be rebuilt from `audit_records` at any time.
CREATE TABLE audit_index (
    idx         INTEGER PRIMARY KEY CHECK (idx >= 0),
    time        TEXT    NOT NULL,
    transfer_id TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    consumer    TEXT,
    provider    TEXT,
    dataset     TEXT,
    subject_ref TEXT,
    decision    TEXT,
    disclose_at TEXT
) STRICT;

INSERT INTO audit_index (idx, time, transfer_id, kind, consumer, provider, dataset,
                         subject_ref, decision, disclose_at)
SELECT idx, time, transfer_id, kind, consumer, provider, dataset,
       subject_ref, decision, disclose_at
FROM audit_records ORDER BY idx;

-- Built after the fill (one sort each instead of random inserts). Every
-- secondary index in SQLite ends with the rowid (`idx`), so these also serve
-- "… ORDER BY idx" for the filters and the cursor.
CREATE INDEX audit_index_time ON audit_index (time);
CREATE INDEX audit_index_transfer ON audit_index (transfer_id);
CREATE INDEX audit_index_subject ON audit_index (subject_ref);
CREATE INDEX audit_index_consumer ON audit_index (consumer);
CREATE INDEX audit_index_dataset ON audit_index (provider, dataset);

-- Off the hot path: `audit_records` keeps its primary key only.
DROP INDEX audit_records_time;
DROP INDEX audit_records_transfer;
DROP INDEX audit_records_subject;
DROP INDEX audit_records_consumer;
DROP INDEX audit_records_dataset;

-- The indexer has done every record there is.
INSERT INTO log_followers (name, position, updated_at)
SELECT 'indexer', COALESCE(MAX(idx) + 1, 0), '1970-01-01T00:00:00.000Z' FROM audit_records WHERE true
ON CONFLICT (name) DO UPDATE SET position = excluded.position;
