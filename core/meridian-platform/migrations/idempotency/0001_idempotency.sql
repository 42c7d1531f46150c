-- Idempotency keys of one service, in that service's schema. A row is claimed before the work
-- and completed with the response in the same transaction as the work's effect, so a replay
-- returns exactly what the first request got, and a crash leaves either both or neither.
CREATE TABLE idempotency_keys (
    scope        text NOT NULL,            -- the caller and route the key belongs to
    key          text NOT NULL,
    fingerprint  bytea NOT NULL,           -- SHA-256 of the canonical request body
    status       smallint,                 -- NULL while in flight
    body         bytea,
    claimed_at   timestamptz NOT NULL DEFAULT now(),
    completed_at timestamptz,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_age ON idempotency_keys (claimed_at);
