-- Whether a product is on sale in a region (`available` > 0) is news for others (search's
-- in-stock filter). The stock table reports it itself, so that every path that moves stock
-- (a reservation, its release or expiry, a return, an admin's count) does: a transition bumps
-- the row's availability_version and writes inventory.availability_changed.v1 to the outbox
-- in the same transaction.
ALTER TABLE stock ADD COLUMN availability_version bigint NOT NULL DEFAULT 0;

-- Rows from before this migration count their current state as the first version.
UPDATE stock SET availability_version = 1;

-- BEFORE: numbers the transition (an INSERT that ends in ON CONFLICT discards its row, and
-- with it the number).
CREATE FUNCTION stock_number_availability() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        NEW.availability_version := 1;
    ELSIF (OLD.available > 0) <> (NEW.available > 0) THEN
        NEW.availability_version := OLD.availability_version + 1;
    ELSE
        NEW.availability_version := OLD.availability_version;
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER stock_number_availability BEFORE INSERT OR UPDATE ON stock
    FOR EACH ROW EXECUTE FUNCTION stock_number_availability();

-- AFTER: only rows really written reach the outbox, as the envelope the relay publishes.
CREATE FUNCTION stock_report_availability() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    event_id uuid := gen_random_uuid();
    event_type text := 'inventory.availability_changed.v1';
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.availability_version = OLD.availability_version THEN
        RETURN NULL;
    END IF;
    EXECUTE format('INSERT INTO %I.outbox (id, event_type, envelope) VALUES ($1, $2, $3)',
                   TG_TABLE_SCHEMA)
    USING event_id, event_type, jsonb_build_object(
        'id', event_id,
        'type', event_type,
        'region', NEW.region,
        'aggregate_id', NEW.product_id,
        'aggregate_version', NEW.availability_version,
        'occurred_at', to_char(clock_timestamp() AT TIME ZONE 'UTC',
                               'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'data', jsonb_build_object(
            'product_id', NEW.product_id,
            'region', NEW.region,
            'in_stock', NEW.available > 0));
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_outbox', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER stock_report_availability AFTER INSERT OR UPDATE ON stock
    FOR EACH ROW EXECUTE FUNCTION stock_report_availability();
