-- Issue 21: the delivery task looks for granted consents about to expire
-- once a minute on every replica (`queue_expiring_consents`, the sweep
-- form of `expiring_filter`). Without an index on `valid_to` that read every
-- consent there is, a cost that grew with the table. The index holds only
-- the consents the sweep can find (granted, with a subject: the sweep's own
-- WHERE repeats both, so both planners use it), in expiry order; a sweep
-- now reads the consents expiring in the next week.
CREATE INDEX consents_expiring ON consents (valid_to) WHERE status = 'granted' AND subject IS NOT NULL;
