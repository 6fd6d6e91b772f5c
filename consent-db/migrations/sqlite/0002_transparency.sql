-- The transparency log (RFC 9162) over audit_records, written in the same
-- transaction as the records it covers.

-- Every perfect subtree of the Merkle tree: node (level, idx) is the hash of
-- leaves idx·2^level .. (idx+1)·2^level − 1. Level 0 holds the leaf hashes
-- SHA-256(0x00 ‖ record's canonical JSON). A node is written once, when its
-- last leaf arrives, and never changes; any tree head or proof is a fold
-- over O(log n) of them.
CREATE TABLE tree_nodes (
    level INTEGER NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx   INTEGER NOT NULL CHECK (idx >= 0),
    hash  BLOB    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
) STRICT, WITHOUT ROWID;

-- The tree head after each committed batch.
CREATE TABLE tree_heads (
    size INTEGER PRIMARY KEY CHECK (size >= 0),
    root BLOB    NOT NULL CHECK (length(root) = 32),
    time TEXT    NOT NULL
) STRICT;

-- Signed checkpoints (C2SP signed notes). The note is the evidence; size and
-- root are copies for queries.
CREATE TABLE checkpoints (
    id   INTEGER PRIMARY KEY,
    size INTEGER NOT NULL CHECK (size >= 0),
    root BLOB    NOT NULL CHECK (length(root) = 32),
    note TEXT    NOT NULL,
    time TEXT    NOT NULL
) STRICT;

CREATE INDEX checkpoints_size ON checkpoints (size, id);

-- Evidence again: append-only.
CREATE TRIGGER tree_nodes_no_update BEFORE UPDATE ON tree_nodes
BEGIN
    SELECT RAISE(ABORT, 'the transparency log is append-only');
END;

CREATE TRIGGER tree_nodes_no_delete BEFORE DELETE ON tree_nodes
BEGIN
    SELECT RAISE(ABORT, 'the transparency log is append-only');
END;

CREATE TRIGGER tree_heads_no_update BEFORE UPDATE ON tree_heads
BEGIN
    SELECT RAISE(ABORT, 'the transparency log is append-only');
END;

CREATE TRIGGER tree_heads_no_delete BEFORE DELETE ON tree_heads
BEGIN
    SELECT RAISE(ABORT, 'the transparency log is append-only');
END;

CREATE TRIGGER checkpoints_no_update BEFORE UPDATE ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'the transparency log is append-only');
END;

CREATE TRIGGER checkpoints_no_delete BEFORE DELETE ON checkpoints
BEGIN
    SELECT RAISE(ABORT, 'the transparency log is append-only');
END;

-- The readiness probe's write: one row, rewritten at most once a second, so
-- /readyz knows the store takes writes even while no records arrive.
CREATE TABLE heartbeat (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at TEXT    NOT NULL
) STRICT;
