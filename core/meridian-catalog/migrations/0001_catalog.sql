CREATE TABLE categories (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    slug       text NOT NULL,
    parent_id  uuid REFERENCES categories (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX categories_slug_key ON categories (slug);

-- A deleted product keeps its row (deleted_at) so that its version keeps growing and late
-- events about it can be recognised as stale.
CREATE TABLE products (
    id             uuid PRIMARY KEY,
    sku            text NOT NULL,
    name           text NOT NULL,
    description    text NOT NULL DEFAULT '',
    price_amount   bigint NOT NULL CHECK (price_amount >= 0),
    price_currency char(3) NOT NULL,
    category_id    uuid REFERENCES categories (id),
    seller_id      uuid NOT NULL,
    attributes     jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(attributes) = 'object'),
    images         text[] NOT NULL DEFAULT '{}',
    status         text NOT NULL CHECK (status IN ('active', 'draft', 'archived')),
    version        bigint NOT NULL DEFAULT 1,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    deleted_at     timestamptz
);
CREATE UNIQUE INDEX products_sku_key ON products (sku) WHERE deleted_at IS NULL;
CREATE INDEX products_listing ON products (id) WHERE deleted_at IS NULL;
CREATE INDEX products_by_category ON products (category_id, id) WHERE deleted_at IS NULL;
CREATE INDEX products_by_seller ON products (seller_id, id) WHERE deleted_at IS NULL;
