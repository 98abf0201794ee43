-- DAG versions: each definition a DAG had (a hash of its structure and
-- settings), stored once; each run records the version it was created with, or
-- last reconciled to.
CREATE TABLE dag_versions (
    dag_id     TEXT COLLATE "C"   NOT NULL,
    version    TEXT COLLATE "C"   NOT NULL,
    definition TEXT COLLATE "C"   NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (dag_id, version)
);
ALTER TABLE dag_runs ADD COLUMN dag_version TEXT COLLATE "C" NOT NULL DEFAULT '';
