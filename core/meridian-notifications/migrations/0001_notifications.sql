-- The inbox: one row per event (or send request) that calls for a message, keyed by its id, so
-- a redelivered or duplicated event finds its message already sent. A worker holds the row's
-- lock while it sends; a second one skips a locked row and comes back later.
CREATE TABLE deliveries (
    event_id   uuid PRIMARY KEY,
    event_type text NOT NULL,
    channel    text NOT NULL CHECK (channel IN ('email', 'sms', 'push')),
    recipient  text NOT NULL,
    template   text NOT NULL,
    status     text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    -- Sends tried (one per delivery that got the lock).
    attempts   integer NOT NULL DEFAULT 0,
    last_error text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz
);

-- Who placed which order, from OrderPlaced: payment events name only the order.
CREATE TABLE orders (
    order_id     uuid PRIMARY KEY,
    user_id      uuid NOT NULL,
    total_amount bigint NOT NULL,
    currency     text NOT NULL
);
