-- The two stock moves of every checkout, each one statement (one round trip, committed on its
-- own when the caller has no transaction open). The rules are those of reservations.rs: every
-- decrement is one conditional UPDATE, taken in product-id order; a reservation leaves a
-- state exactly once.

-- Holds p_quantities[i] units of p_products[i] (sorted by product id: the lock order) in
-- p_region under reservation p_reservation, with its StockReserved event (p_event_id,
-- p_event_type, p_envelope) in the outbox; or, when any product is short, holds nothing and
-- returns the short products. When p_key is given, the answer p_body is recorded under it in
-- the same transaction; a key recorded before raises unique_violation, and the caller reads
-- the record. No NOTIFY: the caller wakes its relay once this committed.
CREATE FUNCTION reserve_stock(
    p_region text,
    p_products uuid[],
    p_quantities integer[],
    p_reservation uuid,
    p_expires_at timestamptz,
    p_event_id uuid,
    p_event_type text,
    p_envelope jsonb,
    p_scope text,
    p_key text,
    p_fingerprint bytea,
    p_body bytea
) RETURNS uuid[] LANGUAGE plpgsql AS $$
DECLARE
    short uuid[] := '{}';
    taken integer := 0;
BEGIN
    FOR i IN 1 .. cardinality(p_products) LOOP
        UPDATE stock SET available = available - p_quantities[i],
            reserved = reserved + p_quantities[i], updated_at = now()
        WHERE product_id = p_products[i] AND region = p_region
            AND available >= p_quantities[i];
        IF FOUND THEN
            taken := i;
        ELSE
            short := short || p_products[i];
        END IF;
    END LOOP;
    IF cardinality(short) > 0 THEN
        -- Give back what was taken; the rows stay locked by this transaction, so nobody saw
        -- the units gone.
        FOR i IN 1 .. taken LOOP
            IF NOT p_products[i] = ANY (short) THEN
                UPDATE stock SET available = available + p_quantities[i],
                    reserved = reserved - p_quantities[i]
                WHERE product_id = p_products[i] AND region = p_region;
            END IF;
        END LOOP;
        RETURN short;
    END IF;
    INSERT INTO reservations (id, region, status, expires_at)
        VALUES (p_reservation, p_region, 'held', p_expires_at);
    INSERT INTO reservation_items (reservation_id, product_id, quantity)
        SELECT p_reservation, * FROM unnest(p_products, p_quantities);
    INSERT INTO outbox (id, event_type, envelope) VALUES (p_event_id, p_event_type, p_envelope);
    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (scope, key, fingerprint, status, body, completed_at)
            VALUES (p_scope, p_key, p_fingerprint, 200, p_body, now());
    END IF;
    RETURN short;
END $$;

-- Moves reservation p_id from p_from to p_to and settles its units: held → confirmed sells
-- them (out of `reserved`), held → released|expired returns them to `available`, confirmed →
-- returned puts sold units back on sale. Returns what happened ('done', or 'already_left' with
-- the status it is in, or 'not_found') and, when done, the region and the items, for the
-- caller's event.
CREATE FUNCTION move_reservation(p_id uuid, p_from text, p_to text)
RETURNS TABLE (transition text, status text, region text, products uuid[], quantities integer[])
LANGUAGE plpgsql AS $$
DECLARE
    moved_region text;
    item record;
BEGIN
    UPDATE reservations r SET status = p_to, updated_at = now()
        WHERE r.id = p_id AND r.status = p_from RETURNING r.region INTO moved_region;
    IF NOT FOUND THEN
        SELECT 'already_left', r.status INTO transition, status FROM reservations r
            WHERE r.id = p_id;
        IF NOT FOUND THEN
            transition := 'not_found';
            status := '';
        END IF;
        RETURN NEXT;
        RETURN;
    END IF;
    products := '{}';
    quantities := '{}';
    -- One row at a time, in product-id order: the lock order of reserve_stock.
    FOR item IN SELECT i.product_id, i.quantity FROM reservation_items i
            WHERE i.reservation_id = p_id ORDER BY i.product_id LOOP
        IF p_to = 'confirmed' THEN
            UPDATE stock s SET reserved = s.reserved - item.quantity, updated_at = now()
                WHERE s.product_id = item.product_id AND s.region = moved_region;
        ELSIF p_to = 'returned' THEN
            UPDATE stock s SET available = s.available + item.quantity, updated_at = now()
                WHERE s.product_id = item.product_id AND s.region = moved_region;
        ELSE
            UPDATE stock s SET reserved = s.reserved - item.quantity,
                available = s.available + item.quantity, updated_at = now()
                WHERE s.product_id = item.product_id AND s.region = moved_region;
        END IF;
        products := products || item.product_id;
        quantities := quantities || item.quantity;
    END LOOP;
    transition := 'done';
    status := p_to;
    region := moved_region;
    RETURN NEXT;
END $$;
