-- The same rules as migrations/sqlite/0009_citizen_protections.sql: a
-- granted consent may be paused by its citizen and resumed (SPEC 10).
--   pending -> granted | rejected | expired;
--   granted -> paused | revoked | expired;  paused -> granted | revoked | expired;
-- everything else of migration 0003 stays as it was.

-- At most frequency_max uses per rolling period; both or neither; fixed
-- like the rest of the terms.
ALTER TABLE consents
    ADD COLUMN frequency_max BIGINT CHECK (frequency_max IS NULL OR frequency_max >= 1),
    ADD COLUMN frequency_per TEXT CHECK (frequency_per IS NULL OR frequency_per IN ('day', 'week', 'month')),
    ADD CONSTRAINT consents_frequency_both CHECK ((frequency_max IS NULL) = (frequency_per IS NULL));

ALTER TABLE consents DROP CONSTRAINT consents_status_check;
ALTER TABLE consents ADD CONSTRAINT consents_status_check
    CHECK (status IN ('pending', 'granted', 'paused', 'rejected', 'revoked', 'expired'));
ALTER TABLE consent_events DROP CONSTRAINT consent_events_type_check;
ALTER TABLE consent_events ADD CONSTRAINT consent_events_type_check
    CHECK (type IN ('created', 'accepted', 'rejected', 'revoked', 'expired', 'used', 'paused', 'resumed'));

CREATE OR REPLACE FUNCTION consents_lifecycle() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'pending' OR NEW.uses <> 0
           OR (NEW.max_uses IS NOT NULL AND NEW.max_uses < 1) THEN
            RAISE EXCEPTION 'a consent starts as a pending request with no uses and max_uses >= 1';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.status <> OLD.status AND NOT (
           (OLD.status = 'pending' AND NEW.status IN ('granted', 'rejected', 'expired'))
        OR (OLD.status = 'granted' AND NEW.status IN ('paused', 'revoked', 'expired'))
        OR (OLD.status = 'paused' AND NEW.status IN ('granted', 'revoked', 'expired'))
    ) THEN
        RAISE EXCEPTION 'this consent status transition is not allowed';
    END IF;
    IF NEW.uses <> OLD.uses AND (
           NEW.uses <> OLD.uses + 1
        OR OLD.status <> 'granted'
        OR NEW.status <> 'granted'
        OR (OLD.max_uses IS NOT NULL AND NEW.uses > OLD.max_uses)
    ) THEN
        RAISE EXCEPTION 'a consent use counts one at a time, while granted, up to max_uses';
    END IF;
    IF NEW.id IS DISTINCT FROM OLD.id
       OR NEW.requester IS DISTINCT FROM OLD.requester
       OR NEW.supplier IS DISTINCT FROM OLD.supplier
       OR NEW.datasets IS DISTINCT FROM OLD.datasets
       OR NEW.purpose IS DISTINCT FROM OLD.purpose
       OR NEW.valid_to IS DISTINCT FROM OLD.valid_to
       OR NEW.max_uses IS DISTINCT FROM OLD.max_uses
       OR NEW.frequency_max IS DISTINCT FROM OLD.frequency_max
       OR NEW.frequency_per IS DISTINCT FROM OLD.frequency_per
       OR NEW.redirect_url IS DISTINCT FROM OLD.redirect_url
       OR NEW.message IS DISTINCT FROM OLD.message
       OR NEW.created_at IS DISTINCT FROM OLD.created_at
       OR (OLD.subject IS NOT NULL AND NEW.subject IS DISTINCT FROM OLD.subject) THEN
        RAISE EXCEPTION 'the terms of a consent cannot be changed';
    END IF;
    RETURN NEW;
END;
$$;

CREATE OR REPLACE FUNCTION consent_events_lifecycle() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    current_status TEXT;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        RAISE EXCEPTION 'consent events are append-only';
    END IF;
    SELECT status INTO current_status FROM consents WHERE id = NEW.consent_id;
    IF current_status IS DISTINCT FROM (CASE NEW.type
            WHEN 'created' THEN 'pending'
            WHEN 'accepted' THEN 'granted'
            WHEN 'used' THEN 'granted'
            WHEN 'resumed' THEN 'granted'
            ELSE NEW.type
        END) THEN
        RAISE EXCEPTION 'a consent event must match the consent''s state';
    END IF;
    RETURN NEW;
END;
$$;

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
