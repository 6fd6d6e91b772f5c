-- SPEC 10: break-glass and delayed disclosure on the records.
-- `break_glass` and `disclosure_delay_days` are record fields (in the leaf
-- only where set); `disclose_at` is derived (time + the delay) so the
-- citizen's views can leave a delayed record out with one comparison.
ALTER TABLE audit_records ADD COLUMN break_glass TEXT;
ALTER TABLE audit_records ADD COLUMN disclosure_delay_days INTEGER;
ALTER TABLE audit_records ADD COLUMN disclose_at TEXT;

-- Followers of the log (consent-db/src/store/followers.rs): how far each
-- piece of derived work (notifications, snooping findings) has read.
CREATE TABLE log_followers (
    name TEXT PRIMARY KEY,
    position BIGINT NOT NULL,
    updated_at TEXT NOT NULL
);
