-- A cancelled order stops counting: what it added is taken back. The counted order keeps what it
-- added (cancellations name only the order), and a cancellation that arrives first is recorded,
-- so the confirmation then adds nothing.
ALTER TABLE counted_orders
    ADD COLUMN user_id    uuid,
    ADD COLUMN region     text,
    ADD COLUMN products   uuid[],
    ADD COLUMN units      integer[],
    ADD COLUMN cancelled  boolean NOT NULL DEFAULT false;
