-- SPEC 9.3: who took a consent decision when it was not the person themself
-- (a parent, a guardian, a fullmakt holder), and on which basis. A side
-- table keyed by the event, so an event without a row here was the
-- person's own. The representative's number is never stored: `basis`
-- says what the relation was (e.g. "foreldreansvar", "idporten:fullmakt helse").
CREATE TABLE consent_event_actors (
    consent_id TEXT    NOT NULL,
    seq        INTEGER NOT NULL CHECK (seq >= 0),
    actor      TEXT    NOT NULL CHECK (actor IN ('parent', 'guardian', 'fullmakt')),
    basis      TEXT    NOT NULL,
    PRIMARY KEY (consent_id, seq),
    FOREIGN KEY (consent_id, seq) REFERENCES consent_events (consent_id, seq)
) STRICT;

-- Evidence: never changed or removed.
CREATE TRIGGER consent_event_actors_no_update BEFORE UPDATE ON consent_event_actors
BEGIN
    SELECT RAISE(ABORT, 'consent event actors are append-only');
END;

CREATE TRIGGER consent_event_actors_no_delete BEFORE DELETE ON consent_event_actors
BEGIN
    SELECT RAISE(ABORT, 'consent event actors are append-only');
END;
