-- The same schema as migrations/sqlite/0002_transparency.sql, in PostgreSQL's types.

CREATE TABLE tree_nodes (
    level BIGINT   NOT NULL CHECK (level BETWEEN 0 AND 63),
    idx   BIGINT   NOT NULL CHECK (idx >= 0),
    hash  BYTEA    NOT NULL CHECK (length(hash) = 32),
    PRIMARY KEY (level, idx)
);

CREATE TABLE tree_heads (
    size BIGINT      PRIMARY KEY CHECK (size >= 0),
    root BYTEA       NOT NULL CHECK (length(root) = 32),
    time TEXT COLLATE "C" NOT NULL
);

CREATE TABLE checkpoints (
    id   BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    size BIGINT      NOT NULL CHECK (size >= 0),
    root BYTEA       NOT NULL CHECK (length(root) = 32),
    note TEXT        NOT NULL,
    time TEXT COLLATE "C" NOT NULL
);

CREATE INDEX checkpoints_size ON checkpoints (size, id);

CREATE FUNCTION transparency_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the transparency log is append-only';
END;
$$;

CREATE TRIGGER tree_nodes_append_only BEFORE UPDATE OR DELETE ON tree_nodes
    FOR EACH ROW EXECUTE FUNCTION transparency_append_only();
CREATE TRIGGER tree_nodes_no_truncate BEFORE TRUNCATE ON tree_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION transparency_append_only();
CREATE TRIGGER tree_heads_append_only BEFORE UPDATE OR DELETE ON tree_heads
    FOR EACH ROW EXECUTE FUNCTION transparency_append_only();
CREATE TRIGGER tree_heads_no_truncate BEFORE TRUNCATE ON tree_heads
    FOR EACH STATEMENT EXECUTE FUNCTION transparency_append_only();
CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON checkpoints
    FOR EACH ROW EXECUTE FUNCTION transparency_append_only();
CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION transparency_append_only();

CREATE TABLE heartbeat (
    id BIGINT      PRIMARY KEY CHECK (id = 1),
    at TEXT COLLATE "C" NOT NULL
);
