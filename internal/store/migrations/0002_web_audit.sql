-- The audit log of actions taken through the web UI and the REST API: who did
-- what, when, and how it ended. Times are UTC instants in Unix microseconds.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    role    TEXT    NOT NULL DEFAULT '',
    action  TEXT    NOT NULL,
    dag_id  TEXT    NOT NULL DEFAULT '',
    run_id  TEXT    NOT NULL DEFAULT '',
    task_id TEXT    NOT NULL DEFAULT '',
    detail  TEXT    NOT NULL DEFAULT '',
    outcome TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_by_dag ON audit_log (dag_id, id);
CREATE INDEX task_instances_by_state ON task_instances (state);
