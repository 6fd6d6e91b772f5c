-- Tree nodes keyed by the tree size at which they complete (issue 21).
-- Node (level, idx) completes at size (idx + 1) << level. Keyed by
-- (level, idx), a batch appended at the end of every level's region: about
-- one dirty page per level per commit (24 levels at 15M leaves). Keyed by
-- (size, level), the nodes a batch completes all have sizes in
-- (old size, new size]: they are contiguous, one or two pages per commit.
-- idx is not stored: idx = (size >> level) - 1.

CREATE TABLE tree_nodes_by_size (
    size  INTEGER NOT NULL CHECK (size >= 1),
    level INTEGER NOT NULL CHECK (level BETWEEN 0 AND 63),
    hash  BLOB    NOT NULL CHECK (length(hash) = 32),
    -- Only a multiple of 2^level is the size at which a level's node completes.
    CHECK ((size >> level) << level = size),
    PRIMARY KEY (size, level)
) STRICT, WITHOUT ROWID;

INSERT INTO tree_nodes_by_size (size, level, hash)
    SELECT (idx + 1) << level, level, hash FROM tree_nodes ORDER BY (idx + 1) << level, level;

-- Dropping a table fires no DELETE trigger; its triggers go with it.
DROP TABLE tree_nodes;
ALTER TABLE tree_nodes_by_size RENAME TO tree_nodes;

-- Evidence again: append-only, under the names migration 0002 gave them.
CREATE TRIGGER tree_nodes_no_update BEFORE UPDATE ON tree_nodes
BEGIN
    SELECT RAISE(ABORT, 'the transparency log is append-only');
END;

CREATE TRIGGER tree_nodes_no_delete BEFORE DELETE ON tree_nodes
BEGIN
    SELECT RAISE(ABORT, 'the transparency log is append-only');
END;
