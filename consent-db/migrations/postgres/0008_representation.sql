-- SPEC 9.3: who took a consent decision when it was not the person themself
-- (a parent, a guardian, a fullmakt holder), and on which basis. A side
-- table keyed by the event, so an event without a row here was the
-- person's own. The representative's number is never stored: `basis`
-- says what the relation was (e.g. "foreldreansvar", "idporten:fullmakt helse").
CREATE TABLE consent_event_actors (
    consent_id TEXT   NOT NULL,
    seq        BIGINT NOT NULL CHECK (seq >= 0),
    actor      TEXT   NOT NULL CHECK (actor IN ('parent', 'guardian', 'fullmakt')),
    basis      TEXT   NOT NULL,
    PRIMARY KEY (consent_id, seq),
    FOREIGN KEY (consent_id, seq) REFERENCES consent_events (consent_id, seq)
);

-- Evidence: never changed or removed.
CREATE FUNCTION consent_event_actors_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'consent event actors are append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER consent_event_actors_no_change BEFORE UPDATE OR DELETE ON consent_event_actors
FOR EACH ROW EXECUTE FUNCTION consent_event_actors_append_only();
