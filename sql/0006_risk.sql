-- fillguard schema, version 6: what the risk limits read (`core::risk`).

-- When a trade ended (first reached CLOSED or HALTED): the cooldown after a symbol's trade and
-- the day's realized loss count from it. Trades that ended before this version get their last
-- update time.
ALTER TABLE trades ADD COLUMN ended_ms INTEGER;
UPDATE trades SET ended_ms = updated_ms WHERE state IN ('CLOSED', 'HALTED');

-- The ended trade's net realized result (decimal TEXT, negative is a loss) and the asset it is
-- counted in (the instrument's quote asset). NULL when nothing filled or it could not be
-- computed; trades that ended before this version are not counted.
ALTER TABLE trades ADD COLUMN realized_result TEXT;
ALTER TABLE trades ADD COLUMN result_asset TEXT;

CREATE INDEX trades_ended ON trades (ended_ms) WHERE ended_ms IS NOT NULL;
CREATE INDEX trades_symbol_ended ON trades (symbol, ended_ms) WHERE ended_ms IS NOT NULL;
-- Entries per hour.
CREATE INDEX trades_created ON trades (created_ms);
