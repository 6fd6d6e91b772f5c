-- SPEC 10: on PostgreSQL 0013 widens `disclosure_delay_days` to BIGINT; a
-- SQLite INTEGER already holds 64 bits, so nothing changes here (the file
-- keeps both backends' migration numbers in step).
SELECT 1;
