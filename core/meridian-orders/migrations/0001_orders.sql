-- An order and the persisted state of its checkout saga. `saga_step` names the next step to
-- run; a step's remote effect is idempotent by a key derived from the order id and the step,
-- and its outcome is written with the move to the next step in one guarded UPDATE, so a crash
-- at any point resumes from the last recorded step without repeating an effect.
CREATE TABLE orders (
    id               uuid PRIMARY KEY,
    user_id          uuid NOT NULL,
    status           text NOT NULL CHECK (status IN ('pending', 'reserved', 'paid', 'confirmed',
                         'shipped', 'delivered', 'payment_failed', 'cancelled', 'refunded')),
    saga_step        text NOT NULL,
    region           text NOT NULL,
    currency         char(3) NOT NULL,
    subtotal         bigint NOT NULL CHECK (subtotal >= 0),
    total            bigint NOT NULL CHECK (total >= 0),
    shipping_address jsonb NOT NULL,
    payment_token    text,               -- kept only while a charge may still be needed
    reservation_id   uuid,
    payment_id       uuid,
    failure_reason   text,
    idempotency_key  text NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_until      timestamptz NOT NULL DEFAULT '-infinity',
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, idempotency_key)
);
CREATE INDEX orders_by_user ON orders (user_id, id);
CREATE INDEX orders_saga_due ON orders (next_attempt_at) WHERE saga_step <> 'done';

CREATE TABLE order_items (
    order_id    uuid NOT NULL REFERENCES orders (id),
    product_id  uuid NOT NULL,
    seller_id   uuid NOT NULL,
    sku         text NOT NULL,
    name        text NOT NULL,
    quantity    integer NOT NULL CHECK (quantity > 0),
    unit_price  bigint NOT NULL CHECK (unit_price >= 0),
    line_total  bigint NOT NULL CHECK (line_total >= 0),
    PRIMARY KEY (order_id, product_id)
);

CREATE TABLE order_status_history (
    order_id uuid NOT NULL REFERENCES orders (id),
    status   text NOT NULL,
    at       timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX order_status_history_by_order ON order_status_history (order_id, at);
