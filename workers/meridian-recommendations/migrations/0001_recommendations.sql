-- One embedding per product, from the catalog's events (the newest version wins).
CREATE TABLE embeddings (
    product_id  uuid PRIMARY KEY,
    version     bigint NOT NULL,
    -- The model that computed `vector`; another model's vectors are recomputed.
    model       text NOT NULL,
    category_id uuid,
    -- For sale (active); drafts, archived and deleted products are never recommended.
    active      boolean NOT NULL,
    vector      real[] NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- Confirmed orders already counted: each adds to the statistics below once.
CREATE TABLE counted_orders (
    order_id   uuid PRIMARY KEY,
    counted_at timestamptz NOT NULL DEFAULT now()
);

-- How many orders held both products (both directions are stored).
CREATE TABLE co_purchases (
    product_id uuid NOT NULL,
    other_id   uuid NOT NULL,
    orders     integer NOT NULL,
    PRIMARY KEY (product_id, other_id)
);

-- What each user bought, and when last.
CREATE TABLE purchases (
    user_id    uuid NOT NULL,
    product_id uuid NOT NULL,
    units      integer NOT NULL,
    last_at    timestamptz NOT NULL,
    PRIMARY KEY (user_id, product_id)
);
CREATE INDEX purchases_recent ON purchases (user_id, last_at DESC);

-- Units sold per region: the fallback for users without a history.
CREATE TABLE sales (
    region     text NOT NULL,
    product_id uuid NOT NULL,
    units      bigint NOT NULL,
    PRIMARY KEY (region, product_id)
);
CREATE INDEX sales_top ON sales (region, units DESC);
