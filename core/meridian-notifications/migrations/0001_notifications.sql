-- The inbox: one row per event (or send request) that calls for a message, keyed by its id, so
-- a redelivered or duplicated event finds its message already sent. `sending` is a claim: a
-- second worker waits for it to end (or to go stale) rather than send the same message.
CREATE TABLE deliveries (
    event_id   uuid PRIMARY KEY,
    event_type text NOT NULL,
    channel    text NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    recipient  text NOT NULL,
    template   text NOT NULL,
    status     text NOT NULL CHECK (status IN ('sending', 'sent', 'failed')),
    attempts   integer NOT NULL DEFAULT 1,
    last_error text,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);

-- Who placed which order, from OrderPlaced: payment events name only the order.
CREATE TABLE orders (
    order_id     uuid PRIMARY KEY,
    user_id      uuid NOT NULL,
    total_amount bigint NOT NULL,
    currency     text NOT NULL
);
