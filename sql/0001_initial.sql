-- fillguard schema, version 1. Money and quantities are decimal TEXT, never REAL.
-- Times are milliseconds since the Unix epoch (INTEGER).

CREATE TABLE signals (
    id            INTEGER PRIMARY KEY,
    symbol        TEXT    NOT NULL,
    side          TEXT    NOT NULL CHECK (side IN ('BUY', 'SELL')),
    quantity      TEXT,
    notional      TEXT,
    source        TEXT    NOT NULL,
    -- Strategy signals carry a key (strategy, symbol, candle) so a restart cannot repeat one.
    dedup_key     TEXT    UNIQUE,
    created_at_ms INTEGER NOT NULL,
    status        TEXT    NOT NULL DEFAULT 'NEW' CHECK (status IN ('NEW', 'TAKEN', 'DROPPED')),
    reason        TEXT,
    trade_id      INTEGER REFERENCES trades (id),
    CHECK ((quantity IS NULL) <> (notional IS NULL))
);
CREATE INDEX signals_new ON signals (status) WHERE status = 'NEW';

CREATE TABLE trades (
    id                INTEGER PRIMARY KEY,
    symbol            TEXT    NOT NULL,
    side              TEXT    NOT NULL CHECK (side IN ('BUY', 'SELL')),
    mode              TEXT    NOT NULL CHECK (mode IN ('oco', 'otoco', 'separate')),
    state             TEXT    NOT NULL,
    signal_id         INTEGER UNIQUE REFERENCES signals (id),
    entry_quantity    TEXT    NOT NULL,
    quantity_tick     TEXT    NOT NULL,
    price_tick        TEXT    NOT NULL,
    stop_loss_pct     TEXT    NOT NULL,
    take_profit_pct   TEXT    NOT NULL,
    filled_quantity   TEXT    NOT NULL,
    avg_price         TEXT    NOT NULL,
    fee               TEXT    NOT NULL,
    fee_currency      TEXT,
    protect_quantity  TEXT,
    stop_loss_price   TEXT,
    take_profit_price TEXT,
    attempts          INTEGER NOT NULL,
    phase_started_ms  INTEGER NOT NULL,
    due_ms            INTEGER,
    generation        INTEGER NOT NULL,
    protect_attempts  INTEGER NOT NULL,
    reprotects        INTEGER NOT NULL,
    entry_seen        INTEGER NOT NULL,
    filled_at_ms      INTEGER,
    protected_at_ms   INTEGER,
    close_reason      TEXT,
    created_ms        INTEGER NOT NULL,
    updated_ms        INTEGER NOT NULL
);
CREATE INDEX trades_active ON trades (symbol) WHERE state NOT IN ('CLOSED', 'HALTED');

CREATE TABLE orders (
    id                  INTEGER PRIMARY KEY,
    trade_id            INTEGER NOT NULL REFERENCES trades (id),
    role                TEXT    NOT NULL CHECK (role IN ('ENTRY', 'STOP_LOSS', 'TAKE_PROFIT', 'EXIT')),
    generation          INTEGER NOT NULL,
    client_oid          TEXT    NOT NULL UNIQUE,
    side                TEXT    NOT NULL CHECK (side IN ('BUY', 'SELL')),
    order_type          TEXT    NOT NULL,
    quantity            TEXT    NOT NULL,
    price               TEXT,
    trigger_price       TEXT,
    status              TEXT    NOT NULL,
    order_id            TEXT,
    list_id             TEXT,
    cumulative_quantity TEXT    NOT NULL,
    avg_price           TEXT    NOT NULL,
    fee                 TEXT    NOT NULL,
    fee_currency        TEXT,
    last_error          TEXT,
    sent_at_ms          INTEGER,
    verified            INTEGER NOT NULL,
    updated_ms          INTEGER NOT NULL
);
CREATE INDEX orders_trade ON orders (trade_id);
-- At most one live stop-loss and one live take-profit per trade (invariant S1).
CREATE UNIQUE INDEX orders_one_live_protection ON orders (trade_id, role)
    WHERE role IN ('STOP_LOSS', 'TAKE_PROFIT')
      AND status IN ('INTENT', 'SENT', 'UNKNOWN', 'NEW', 'PENDING', 'ACTIVE');
-- At most one entry per trade (with signals.trade_id and trades.signal_id: one entry per signal).
CREATE UNIQUE INDEX orders_one_entry ON orders (trade_id) WHERE role = 'ENTRY';

CREATE TABLE breakers (
    symbol        TEXT    PRIMARY KEY,
    open          INTEGER NOT NULL,
    reason        TEXT,
    tripped_at_ms INTEGER,
    trip_count    INTEGER NOT NULL,
    reset_at_ms   INTEGER,
    reset_by      TEXT
);

CREATE TABLE alerts (
    id         INTEGER PRIMARY KEY,
    dedup_key  TEXT    NOT NULL UNIQUE,
    severity   TEXT    NOT NULL CHECK (severity IN ('INFO', 'WARNING', 'CRITICAL')),
    trade_id   INTEGER,
    symbol     TEXT,
    text       TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_at_ms INTEGER NOT NULL,
    sent_at_ms INTEGER,
    last_error TEXT
);
CREATE INDEX alerts_pending ON alerts (next_at_ms) WHERE sent_at_ms IS NULL;

CREATE TABLE events (
    id       INTEGER PRIMARY KEY,
    at_ms    INTEGER NOT NULL,
    trade_id INTEGER,
    symbol   TEXT,
    kind     TEXT    NOT NULL,
    detail   TEXT    NOT NULL
);
CREATE INDEX events_trade ON events (trade_id);

CREATE TABLE instruments (
    symbol         TEXT    PRIMARY KEY,
    base           TEXT    NOT NULL,
    quote          TEXT    NOT NULL,
    price_tick     TEXT    NOT NULL,
    quantity_tick  TEXT    NOT NULL,
    min_quantity   TEXT    NOT NULL,
    min_notional   TEXT    NOT NULL,
    taker_fee_rate TEXT    NOT NULL,
    updated_ms     INTEGER NOT NULL
);
