-- Altinn consent tokens (SPEC 9.1). Bru keeps no copy of an Altinn
-- consent: the token carries it. It keeps what the token cannot say.

-- Consents Bru has learnt ended, from Altinn's consent events feed
-- (`revoked`, `deleted`); a token for one is refused at every replica.
CREATE TABLE altinn_consent_ended (
    consent_id TEXT PRIMARY KEY,          -- the consent request's UUID, lower case
    event TEXT NOT NULL CHECK (event IN ('revoked', 'deleted')),
    changed_at TEXT NOT NULL,             -- the feed's changedDate, RFC 3339
    learnt_at TEXT NOT NULL               -- when Bru read it, RFC 3339
);

-- One-time consents used: the primary key lets exactly one transfer take the
-- use, whichever replica asks first.
CREATE TABLE altinn_consent_uses (
    consent_id TEXT PRIMARY KEY,
    transfer_id TEXT NOT NULL,
    used_at TEXT NOT NULL
);

-- Where the events feed was read up to (the URL of its next page), so a
-- restarted Bru goes on from there.
CREATE TABLE altinn_feed_cursor (
    feed TEXT PRIMARY KEY,
    next_url TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

-- The Altinn system user a call was made as (SPEC 9.2); NULL otherwise, and
-- then absent from the record's leaf, so older leaves keep their bytes.
ALTER TABLE audit_records ADD COLUMN system_user TEXT;
