-- SPEC 10: `disclosure_delay_days` as BIGINT, like every other integer of a
-- record (status, bytes, duration_ms, count): the store reads them all as
-- 64-bit, and an INTEGER (INT4) column could not be read back (0010 made it
-- INTEGER, so any record with a delay broke the audit API on PostgreSQL).
ALTER TABLE audit_records ALTER COLUMN disclosure_delay_days TYPE BIGINT;
ALTER TABLE audit_records ADD CONSTRAINT audit_records_disclosure_delay_days_positive
    CHECK (disclosure_delay_days IS NULL OR disclosure_delay_days >= 1);
