-- Stock per (product, region). Each region owns and sells its own quota; a row is changed only
-- by single conditional statements, and the CHECKs make a negative count impossible whatever
-- the interleaving.
CREATE TABLE stock (
    product_id uuid NOT NULL,
    region     text NOT NULL,
    available  integer NOT NULL CHECK (available >= 0),
    reserved   integer NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (product_id, region)
);
