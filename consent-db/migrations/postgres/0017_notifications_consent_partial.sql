-- Issue 21: a transfer's notification has no consent (the table's CHECK: a
-- subject or a consent), yet each one put a NULL entry in
-- `notifications_consent`, one index write more per call about a person.
-- The index now holds only the consent notices it is looked up for (the
-- inbox's consent branch joins on `n.consent_id = c.id`, which implies
-- `consent_id IS NOT NULL`, so the planner still uses it).
DROP INDEX notifications_consent;
CREATE INDEX notifications_consent ON notifications (consent_id) WHERE consent_id IS NOT NULL;
