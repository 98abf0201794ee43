-- Assets (Airflow's datasets): a URI that tasks update. A successful try of a
-- task that declares it records an event, in the same transaction as its
-- success; an operator can post one through the API.
CREATE TABLE assets (
    uri        TEXT    PRIMARY KEY,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE asset_events (
    id          INTEGER PRIMARY KEY,
    uri         TEXT    NOT NULL REFERENCES assets (uri),
    source_dag  TEXT    NOT NULL DEFAULT '',
    source_run  TEXT    NOT NULL DEFAULT '',
    source_task TEXT    NOT NULL DEFAULT '',
    source_try  INTEGER NOT NULL DEFAULT 0,
    source      TEXT    NOT NULL DEFAULT '', -- who posted it (api:<token name>), for external events
    extra       TEXT,                        -- JSON
    created_at  INTEGER NOT NULL
);
CREATE INDEX asset_events_by_uri ON asset_events (uri, id);

-- For each DAG scheduled on assets: the last event of each of its assets that
-- a run of the DAG has consumed. A run is created when every asset (or any,
-- by the DAG's rule) has a newer event, in one transaction with the advance.
CREATE TABLE asset_consumers (
    dag_id        TEXT    NOT NULL,
    uri           TEXT    NOT NULL,
    last_event_id INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (dag_id, uri)
) WITHOUT ROWID;

-- The events that triggered an asset-triggered run.
CREATE TABLE run_asset_events (
    run      INTEGER NOT NULL REFERENCES dag_runs (id) ON DELETE CASCADE,
    event_id INTEGER NOT NULL,
    PRIMARY KEY (run, event_id)
) WITHOUT ROWID;
