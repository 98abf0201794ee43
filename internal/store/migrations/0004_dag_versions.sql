-- DAG versions: each definition a DAG had (a hash of its structure and
-- settings), stored once; each run records the version it was created with, or
-- last reconciled to.
CREATE TABLE dag_versions (
    dag_id     TEXT    NOT NULL,
    version    TEXT    NOT NULL,
    definition TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (dag_id, version)
) WITHOUT ROWID;
ALTER TABLE dag_runs ADD COLUMN dag_version TEXT NOT NULL DEFAULT '';
