-- fillguard schema, version 4: alerts whose delivery the channel did not confirm.

-- Attempts whose request went out but whose answer never came (a timeout after sending): the
-- message may have been delivered. Re-sends after such attempts are capped.
ALTER TABLE alerts ADD COLUMN unconfirmed INTEGER NOT NULL DEFAULT 0;

-- When the outbox stopped retrying the alert after too many unconfirmed attempts (NULL while
-- it is still queued or once sent); last_error says why.
ALTER TABLE alerts ADD COLUMN given_up_at_ms INTEGER;
