-- fillguard schema, version 2: the database's order-id epoch. Applied in the same transaction
-- as the version bump, like every migration.

-- One row per key.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Eight random lowercase hex characters, created once with the database and never changed.
-- client_oids carry it, so a new database can never reuse an earlier database's ids on the
-- same account.
INSERT INTO meta (key, value) VALUES ('oid_epoch', lower(hex(randomblob(4))));

-- The epoch a trade's client_oids were made with; '' for trades from before epochs, whose
-- client_oids keep the old format.
ALTER TABLE trades ADD COLUMN oid_epoch TEXT NOT NULL DEFAULT '';
