-- The consent lifecycle (SPEC section 4), enforced by the database as well as
-- by the store's code, so that no other writer can bend it:
--   pending -> granted | rejected | expired;  granted -> revoked | expired;
--   `uses` only grows by one while granted and never past `max_uses`;
--   what the citizen agreed to never changes after creation;
--   every event matches the state it records, and events are never changed.

-- A new consent is a pending request that has not been used.
CREATE TRIGGER consents_insert_pending BEFORE INSERT ON consents
WHEN NEW.status <> 'pending' OR NEW.uses <> 0 OR (NEW.max_uses IS NOT NULL AND NEW.max_uses < 1)
BEGIN
    SELECT RAISE(ABORT, 'a consent starts as a pending request with no uses and max_uses >= 1');
END;

CREATE TRIGGER consents_status_transition BEFORE UPDATE OF status ON consents
WHEN NEW.status <> OLD.status AND NOT (
       (OLD.status = 'pending' AND NEW.status IN ('granted', 'rejected', 'expired'))
    OR (OLD.status = 'granted' AND NEW.status IN ('revoked', 'expired'))
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
         ELSE NEW.type
     END
BEGIN
    SELECT RAISE(ABORT, 'a consent event must match the consent''s state');
END;

CREATE TRIGGER consent_events_no_update BEFORE UPDATE ON consent_events
BEGIN
    SELECT RAISE(ABORT, 'consent events are append-only');
END;
