-- Pool sizes set at run time (pools set, the API), without a rebuild. They
-- override runner.Config.Pools for the pools they name.
CREATE TABLE pools (
    name       TEXT COLLATE "C"   PRIMARY KEY,
    slots      BIGINT NOT NULL CHECK (slots >= 0),
    updated_at BIGINT NOT NULL
);
