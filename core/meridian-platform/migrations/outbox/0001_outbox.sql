-- The transactional outbox of one service, created in that service's schema.
-- A row is written in the same transaction as the change it describes and is marked
-- published only after JetStream acknowledged it.
CREATE TABLE outbox (
    id           uuid PRIMARY KEY,              -- the event id, published as Nats-Msg-Id
    seq          bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    event_type   text NOT NULL,
    envelope     jsonb NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);

CREATE INDEX outbox_unpublished ON outbox (seq) WHERE published_at IS NULL;
