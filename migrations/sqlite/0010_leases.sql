-- Work one gateway at a time does (a mailbox to poll), for desks shared by several
-- gateway processes: the holder renews its lease while it works; once the lease runs out,
-- another takes the work over.
CREATE TABLE leases (
    name     TEXT    PRIMARY KEY,
    holder   TEXT    NOT NULL,
    until    INTEGER NOT NULL,
    taken_at INTEGER NOT NULL
);
