-- A reservation holds stock of one region for a while: all of its items or none. Held units
-- move from `available` to `reserved`; confirming sells them (they leave `reserved`), releasing
-- or expiring returns them to `available`.
CREATE TABLE reservations (
    id          uuid PRIMARY KEY,
    region      text NOT NULL,
    status      text NOT NULL CHECK (status IN ('held', 'confirmed', 'released', 'expired')),
    expires_at  timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reservations_expiring ON reservations (expires_at) WHERE status = 'held';

CREATE TABLE reservation_items (
    reservation_id uuid NOT NULL REFERENCES reservations (id),
    product_id     uuid NOT NULL,
    quantity       integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (reservation_id, product_id)
);
