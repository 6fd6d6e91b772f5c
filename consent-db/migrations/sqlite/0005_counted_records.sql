-- Counted records: one record stands for this many refused calls that cost
-- nothing to send (no token, over a rate limit), from one source, code and
-- dataset in one interval. NULL on every record of a single call, whose leaf
-- bytes therefore stay as they were.
ALTER TABLE audit_records ADD COLUMN count INTEGER CHECK (count >= 1);
