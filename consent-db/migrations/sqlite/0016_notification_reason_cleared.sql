-- SPEC 10, privacy: a break-glass call's reason is text the caller wrote.
-- Citizens see only what Bru or the policy says, so the reason is no longer
-- copied into notifications (it stays in the audit record, for the security
-- team); this empties the copies written before. The column stays (0011 is
-- never edited) and nothing writes it.
UPDATE notifications SET reason = NULL WHERE reason IS NOT NULL;
