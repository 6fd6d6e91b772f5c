-- Cosignatures of checkpoints by witnesses (C2SP tlog-cosignature, SPEC
-- section 11). A witness is its verifier key; one line per witness and
-- checkpoint size, kept as the witness sent it (a note signature line).
-- The newest size a witness cosigned is where the next consistency proof
-- starts from.
CREATE TABLE witness_cosignatures (
    witness     TEXT NOT NULL,
    size        INTEGER NOT NULL,
    line        TEXT NOT NULL,
    cosigned_at INTEGER NOT NULL,
    PRIMARY KEY (witness, size)
);
CREATE INDEX witness_cosignatures_size ON witness_cosignatures (size);
