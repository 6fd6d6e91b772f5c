-- The citizen portal's sessions, so that every replica agrees and a logout
-- ends a session everywhere. The cookie holds the session id; the table
-- holds only its SHA-256 (reading the table gives no cookie), what the
-- portal sealed under its own key (the person number among it: never in
-- clear here) and the two times the idle and absolute limits count from.
CREATE TABLE portal_sessions (
    id_hash  TEXT PRIMARY KEY NOT NULL,
    sealed   TEXT NOT NULL,
    login_at BIGINT NOT NULL,
    seen_at  BIGINT NOT NULL
);
CREATE INDEX portal_sessions_seen_at ON portal_sessions (seen_at);
CREATE INDEX portal_sessions_login_at ON portal_sessions (login_at);
