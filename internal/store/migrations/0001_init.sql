-- Times are UTC instants in Unix microseconds; NULL means not set.
CREATE TABLE dags (
    dag_id              TEXT PRIMARY KEY,
    paused              INTEGER NOT NULL DEFAULT 0,
    definition          TEXT    NOT NULL DEFAULT '{}',
    last_interval_start INTEGER,
    last_interval_end   INTEGER,
    updated_at          INTEGER NOT NULL
);

CREATE TABLE dag_runs (
    id             INTEGER PRIMARY KEY,
    dag_id         TEXT    NOT NULL,
    run_id         TEXT    NOT NULL,
    run_type       TEXT    NOT NULL,
    state          TEXT    NOT NULL,
    logical_date   INTEGER NOT NULL,
    interval_start INTEGER NOT NULL,
    interval_end   INTEGER NOT NULL,
    conf           TEXT,
    created_at     INTEGER NOT NULL,
    started_at     INTEGER,
    ended_at       INTEGER,
    version        INTEGER NOT NULL DEFAULT 0,
    UNIQUE (dag_id, run_id)
);
CREATE INDEX dag_runs_active ON dag_runs (state) WHERE state IN ('queued', 'running');
CREATE INDEX dag_runs_by_date ON dag_runs (dag_id, logical_date);

CREATE TABLE task_instances (
    run           INTEGER NOT NULL REFERENCES dag_runs (id) ON DELETE CASCADE,
    task_id       TEXT    NOT NULL,
    state         TEXT    NOT NULL,
    try_number    INTEGER NOT NULL DEFAULT 0,
    max_tries     INTEGER NOT NULL,
    started_at    INTEGER,
    ended_at      INTEGER,
    next_retry_at INTEGER,
    exit_code     INTEGER,
    error         TEXT    NOT NULL DEFAULT '',
    executor      TEXT    NOT NULL DEFAULT '',
    host          TEXT    NOT NULL DEFAULT '',
    pod           TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (run, task_id)
) WITHOUT ROWID;

CREATE TABLE task_tries (
    run        INTEGER NOT NULL REFERENCES dag_runs (id) ON DELETE CASCADE,
    task_id    TEXT    NOT NULL,
    try_number INTEGER NOT NULL,
    state      TEXT    NOT NULL,
    queued_at  INTEGER,
    started_at INTEGER,
    ended_at   INTEGER,
    exit_code  INTEGER,
    error      TEXT    NOT NULL DEFAULT '',
    executor   TEXT    NOT NULL DEFAULT '',
    host       TEXT    NOT NULL DEFAULT '',
    pod        TEXT    NOT NULL DEFAULT '',
    PRIMARY KEY (run, task_id, try_number)
) WITHOUT ROWID;

CREATE TABLE xcom (
    run     INTEGER NOT NULL REFERENCES dag_runs (id) ON DELETE CASCADE,
    task_id TEXT    NOT NULL,
    value   BLOB    NOT NULL,
    PRIMARY KEY (run, task_id)
) WITHOUT ROWID;

-- A try's log is its chunks in id order.
CREATE TABLE task_logs (
    id         INTEGER PRIMARY KEY,
    run        INTEGER NOT NULL REFERENCES dag_runs (id) ON DELETE CASCADE,
    task_id    TEXT    NOT NULL,
    try_number INTEGER NOT NULL,
    data       BLOB    NOT NULL
);
CREATE INDEX task_logs_by_try ON task_logs (run, task_id, try_number, id);
