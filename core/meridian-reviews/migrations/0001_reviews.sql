-- One review per user and product. A hidden review (an admin's decision) is kept, but neither
-- listed nor counted in the product's rating.
CREATE TABLE reviews (
    id         uuid PRIMARY KEY,
    product_id uuid NOT NULL,
    user_id    uuid NOT NULL,
    rating     smallint NOT NULL CHECK (rating BETWEEN 1 AND 5),
    title      text NOT NULL,
    body       text NOT NULL,
    hidden     boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX reviews_one_per_user ON reviews (product_id, user_id);

-- The rating of each product over its visible reviews, kept in step by every statement that
-- adds, changes, hides or removes one (in the same transaction).
CREATE TABLE ratings (
    product_id uuid PRIMARY KEY,
    count      bigint NOT NULL CHECK (count >= 0),
    total      bigint NOT NULL CHECK (total >= 0 AND total <= 5 * count)
);

-- Who bought what, projected from the orders stream: the lines of every confirmed order that
-- was not cancelled. A cancellation is remembered, so a confirmation delivered after it (or
-- again) adds nothing.
CREATE TABLE purchases (
    order_id   uuid NOT NULL,
    product_id uuid NOT NULL,
    user_id    uuid NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
CREATE INDEX purchases_by_buyer ON purchases (user_id, product_id);
CREATE TABLE cancelled_orders (
    order_id uuid PRIMARY KEY
);
