-- Citizen protections (SPEC 10). A consent may carry a frequency limit,
-- fixed like the rest of its terms. A granted consent may be paused by its
-- citizen and resumed. `paused` joins the consent lifecycle of migration
-- 0003, enforced by the database as well as by the store:
--   pending -> granted | rejected | expired;
--   granted -> paused | revoked | expired;  paused -> granted | revoked | expired;
--   `uses` only grows by one while granted and never past `max_uses`;
--   what the citizen agreed to never changes after creation;
--   every event matches the state it records, and events are never changed.
--
-- SQLite cannot change a CHECK constraint, so both tables are rebuilt with
-- the new names (the child first, so no foreign key is ever left dangling)
-- and the triggers of 0003 recreated with the new transitions.

CREATE TABLE consents_new (
    id           TEXT    PRIMARY KEY,
    requester    TEXT    NOT NULL,
    supplier     TEXT,
    subject      TEXT,
    datasets     TEXT    NOT NULL, -- JSON array of "provider/dataset"
    purpose      TEXT    NOT NULL,
    status       TEXT    NOT NULL CHECK (status IN ('pending', 'granted', 'paused', 'rejected', 'revoked', 'expired')),
    valid_to     TEXT    NOT NULL,
    max_uses     INTEGER CHECK (max_uses IS NULL OR max_uses >= 0),
    uses         INTEGER NOT NULL DEFAULT 0 CHECK (uses >= 0),
    redirect_url TEXT,
    message      TEXT,
    created_at   TEXT    NOT NULL,
    updated_at   TEXT    NOT NULL,
    -- At most frequency_max uses per rolling period (SPEC 10); both or neither.
    frequency_max INTEGER CHECK (frequency_max IS NULL OR frequency_max >= 1),
    frequency_per TEXT    CHECK (frequency_per IS NULL OR frequency_per IN ('day', 'week', 'month')),
    CHECK ((frequency_max IS NULL) = (frequency_per IS NULL))
) STRICT;

INSERT INTO consents_new (id, requester, supplier, subject, datasets, purpose, status, valid_to,
                          max_uses, uses, redirect_url, message, created_at, updated_at)
SELECT id, requester, supplier, subject, datasets, purpose, status, valid_to,
       max_uses, uses, redirect_url, message, created_at, updated_at
FROM consents;

CREATE TABLE consent_events_new (
    consent_id TEXT    NOT NULL REFERENCES consents_new (id),
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    type       TEXT    NOT NULL CHECK (type IN ('created', 'accepted', 'rejected', 'revoked', 'expired', 'used', 'paused', 'resumed')),
    at         TEXT    NOT NULL,
    PRIMARY KEY (consent_id, seq)
) STRICT;

INSERT INTO consent_events_new (consent_id, seq, type, at)
SELECT consent_id, seq, type, at FROM consent_events;

-- consent_event_actors (0008) refers to consent_events: its rows are moved
-- aside and back, so dropping the old events table orphans nothing.
CREATE TABLE consent_event_actors_old AS SELECT * FROM consent_event_actors;
DROP TABLE consent_event_actors;

-- Dropping a table drops its triggers and indexes too.
DROP TABLE consent_events;
DROP TABLE consents;
-- Renaming rewrites consent_events_new's reference to the new name.
ALTER TABLE consents_new RENAME TO consents;
ALTER TABLE consent_events_new RENAME TO consent_events;

CREATE INDEX consents_subject ON consents (subject);
CREATE INDEX consents_requester ON consents (requester);

-- A new consent is a pending request that has not been used.
CREATE TRIGGER consents_insert_pending BEFORE INSERT ON consents
WHEN NEW.status <> 'pending' OR NEW.uses <> 0 OR (NEW.max_uses IS NOT NULL AND NEW.max_uses < 1)
BEGIN
    SELECT RAISE(ABORT, 'a consent starts as a pending request with no uses and max_uses >= 1');
END;

CREATE TRIGGER consents_status_transition BEFORE UPDATE OF status ON consents
WHEN NEW.status <> OLD.status AND NOT (
       (OLD.status = 'pending' AND NEW.status IN ('granted', 'rejected', 'expired'))
    OR (OLD.status = 'granted' AND NEW.status IN ('paused', 'revoked', 'expired'))
    OR (OLD.status = 'paused' AND NEW.status IN ('granted', 'revoked', 'expired'))
)
BEGIN
    SELECT RAISE(ABORT, 'this consent status transition is not allowed');
END;

CREATE TRIGGER consents_uses_count BEFORE UPDATE OF uses ON consents
WHEN NEW.uses <> OLD.uses AND (
       NEW.uses <> OLD.uses + 1
    OR OLD.status <> 'granted'
    OR NEW.status <> 'granted'
    OR (OLD.max_uses IS NOT NULL AND NEW.uses > OLD.max_uses)
)
BEGIN
    SELECT RAISE(ABORT, 'a consent use counts one at a time, while granted, up to max_uses');
END;

-- The subject may be set once (by the citizen who answers a request made
-- without one); everything else the citizen agreed to is fixed.
CREATE TRIGGER consents_terms_fixed BEFORE UPDATE ON consents
WHEN NEW.id IS NOT OLD.id
  OR NEW.requester IS NOT OLD.requester
  OR NEW.supplier IS NOT OLD.supplier
  OR NEW.datasets IS NOT OLD.datasets
  OR NEW.purpose IS NOT OLD.purpose
  OR NEW.valid_to IS NOT OLD.valid_to
  OR NEW.max_uses IS NOT OLD.max_uses
  OR NEW.frequency_max IS NOT OLD.frequency_max
  OR NEW.frequency_per IS NOT OLD.frequency_per
  OR NEW.redirect_url IS NOT OLD.redirect_url
  OR NEW.message IS NOT OLD.message
  OR NEW.created_at IS NOT OLD.created_at
  OR (OLD.subject IS NOT NULL AND NEW.subject IS NOT OLD.subject)
BEGIN
    SELECT RAISE(ABORT, 'the terms of a consent cannot be changed');
END;

-- An event is written after the change it records, in the same transaction.
CREATE TRIGGER consent_events_match_state BEFORE INSERT ON consent_events
WHEN (SELECT status FROM consents WHERE id = NEW.consent_id) IS NOT
     CASE NEW.type
         WHEN 'created' THEN 'pending'
         WHEN 'accepted' THEN 'granted'
         WHEN 'used' THEN 'granted'
         WHEN 'resumed' THEN 'granted'
         ELSE NEW.type
     END
BEGIN
    SELECT RAISE(ABORT, 'a consent event must match the consent''s state');
END;

CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events
BEGIN
    SELECT RAISE(ABORT, 'consent events are append-only');
END;

-- A person's blocks (SPEC 10): of one consumer (`0192:N`) or one dataset
-- (`provider/dataset`). Kept under the person's keyed pseudonym, as the
-- audit records are: never the person number.
CREATE TABLE subject_blocks (
    id          TEXT PRIMARY KEY,
    subject_ref TEXT NOT NULL,
    consumer    TEXT,
    dataset     TEXT,
    created_at  TEXT NOT NULL,
    CHECK ((consumer IS NULL) <> (dataset IS NULL))
);

CREATE INDEX subject_blocks_subject ON subject_blocks (subject_ref);

-- consent_event_actors as 0008 made it, over the rebuilt events.
CREATE TABLE consent_event_actors (
    consent_id TEXT    NOT NULL,
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    actor      TEXT    NOT NULL CHECK (actor IN ('parent', 'guardian', 'fullmakt')),
    basis      TEXT    NOT NULL,
    PRIMARY KEY (consent_id, seq),
    FOREIGN KEY (consent_id, seq) REFERENCES consent_events (consent_id, seq)
) STRICT;
INSERT INTO consent_event_actors (consent_id, seq, actor, basis)
SELECT consent_id, seq, actor, basis FROM consent_event_actors_old;
DROP TABLE consent_event_actors_old;

CREATE TRIGGER consent_event_actors_no_update BEFORE UPDATE ON consent_event_actors
BEGIN
    SELECT RAISE(ABORT, 'consent event actors are append-only');
END;

CREATE TRIGGER consent_event_actors_no_delete BEFORE DELETE ON consent_event_actors
BEGIN
    SELECT RAISE(ABORT, 'consent event actors are append-only');
END;
