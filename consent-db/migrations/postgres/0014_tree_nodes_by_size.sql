-- The same as migrations/sqlite/0014_tree_nodes_by_size.sql, in PostgreSQL's
-- types: tree nodes keyed by (size, level), the tree size at which a node
-- completes, so the primary key's inserts of one batch are contiguous (the
-- rightmost leaf page) instead of one insertion point per level.

CREATE TABLE tree_nodes_by_size (
    size  BIGINT NOT NULL CHECK (size >= 1),
    level BIGINT NOT NULL CHECK (level BETWEEN 0 AND 63),
    hash  BYTEA  NOT NULL CHECK (length(hash) = 32),
    -- Only a multiple of 2^level is the size at which a level's node completes.
    CHECK ((size >> level::int) << level::int = size),
    PRIMARY KEY (size, level)
);

INSERT INTO tree_nodes_by_size (size, level, hash)
    SELECT (idx + 1) * (1::bigint << level::int), level, hash FROM tree_nodes
    ORDER BY (idx + 1) * (1::bigint << level::int), level;

-- Dropping a table fires no trigger; its triggers go with it.
DROP TABLE tree_nodes;
ALTER TABLE tree_nodes_by_size RENAME TO tree_nodes;
ALTER INDEX tree_nodes_by_size_pkey RENAME TO tree_nodes_pkey;

-- Evidence again: append-only (the function is migration 0002's).
CREATE TRIGGER tree_nodes_append_only BEFORE UPDATE OR DELETE ON tree_nodes
    FOR EACH ROW EXECUTE FUNCTION transparency_append_only();
CREATE TRIGGER tree_nodes_no_truncate BEFORE TRUNCATE ON tree_nodes
    FOR EACH STATEMENT EXECUTE FUNCTION transparency_append_only();
