-- The health check's write: one row per gateway process that answered /healthz, written
-- through a connection opened for it, so a database made read-only is seen at once.
CREATE TABLE health_probes (
    instance TEXT PRIMARY KEY,
    at INTEGER NOT NULL
);
