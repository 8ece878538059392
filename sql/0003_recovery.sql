-- fillguard schema, version 3: trades that keep being resolved after a halt.

-- When the trade was halted with a position that may exist unprotected (NULL when it is not
-- recovering); it is retried at a slow cadence until protected or closed.
ALTER TABLE trades ADD COLUMN recovering_since_ms INTEGER;

-- Whether this trade opened its symbol's breaker: the operator's reset then ends its recovery.
ALTER TABLE trades ADD COLUMN breaker_tripped INTEGER NOT NULL DEFAULT 0
    CHECK (breaker_tripped IN (0, 1));
