-- fillguard schema, version 5: indexes that keep the per-turn reads and the events' retention
-- independent of how many trades and events the database has kept.

-- The open trades by id: the loop lists them every turn (and `status` and the gauges read
-- them). Without it the planner walks every trade ever stored to honour ORDER BY id, since
-- trades_active is ordered by symbol.
CREATE INDEX trades_open ON trades (id) WHERE state NOT IN ('CLOSED', 'HALTED');

-- Events by age, for `store.events_retention_days`: each pass reads only the events old
-- enough to go, not the whole audit trail.
CREATE INDEX events_at ON events (at_ms);
