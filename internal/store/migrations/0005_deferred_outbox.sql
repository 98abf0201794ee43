-- Sensors: how many pokes the current try of a deferred sensor has made (for
-- exponential poke backoff); its next poke time is next_retry_at.
ALTER TABLE task_instances ADD COLUMN pokes INTEGER NOT NULL DEFAULT 0;

-- The outbox: side effects of committed changes (callbacks, notifications,
-- deadline alerts), written in the same transaction as the change that causes
-- them and delivered after the commit, at least once.
CREATE TABLE outbox (
    id           INTEGER PRIMARY KEY,
    key          TEXT    NOT NULL UNIQUE, -- idempotency key: one row per event
    dag_id       TEXT    NOT NULL,
    run          INTEGER,                 -- dag_runs.id; NULL once the run is deleted
    kind         TEXT    NOT NULL,
    event        TEXT    NOT NULL,        -- the event, JSON
    created_at   INTEGER NOT NULL,
    next_at      INTEGER NOT NULL,        -- when to try (again)
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT    NOT NULL DEFAULT '',
    delivered_at INTEGER                  -- NULL until delivered (or given up: see attempts)
);
CREATE INDEX outbox_due ON outbox (next_at) WHERE delivered_at IS NULL;
