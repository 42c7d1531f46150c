-- Payments. A row is inserted `pending` before the provider is called: its unique
-- `idempotency_key` (our key at the provider) is the claim, so any number of concurrent
-- requests with one key charge once. It settles to `succeeded` or `failed` exactly once
-- (`UPDATE ... WHERE status = 'pending'`). A provider outage leaves it `pending`: the outcome is
-- unknown until the provider is asked again under the same key, never marked failed.
CREATE TABLE payments (
    id                  uuid PRIMARY KEY,
    order_id            uuid NOT NULL,
    -- Who paid over HTTP (may read it); NULL for internal callers such as the order saga.
    user_id             uuid,
    amount              bigint NOT NULL CHECK (amount > 0),
    currency            text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    provider            text NOT NULL,
    status              text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    failure_reason      text,
    provider_ref        text,
    idempotency_key     text NOT NULL UNIQUE,
    -- SHA-256 of the charge (order, amount, currency, token): another charge under the key is refused.
    request_fingerprint bytea NOT NULL,
    -- Includes refunds still waiting for the provider, so concurrent refunds can never exceed it.
    refunded_amount     bigint NOT NULL DEFAULT 0
                        CHECK (refunded_amount >= 0 AND refunded_amount <= amount),
    -- 0 while pending, 1 once settled, +1 per refund: the events' aggregate version.
    version             bigint NOT NULL DEFAULT 0,
    -- A charge attempt holds a pending row until then; a dead attempt's row is taken over.
    attempt_expires_at  timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'failed') = (failure_reason IS NOT NULL)),
    CHECK (refunded_amount = 0 OR status = 'succeeded')
);
CREATE INDEX payments_order ON payments (order_id);

-- Refunds of a succeeded payment. The amount is added to `payments.refunded_amount` in the
-- transaction that inserts the `pending` refund, before the provider is called; a refusal gives
-- it back, an outage keeps it (the refund may have happened) until a retry settles it.
CREATE TABLE refunds (
    id                  uuid PRIMARY KEY,
    payment_id          uuid NOT NULL REFERENCES payments (id),
    amount              bigint NOT NULL CHECK (amount > 0),
    currency            text NOT NULL,            -- the payment's
    status              text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed')),
    failure_reason      text,
    provider_ref        text,
    idempotency_key     text NOT NULL UNIQUE,
    -- SHA-256 of the refund request (payment, amount asked for).
    request_fingerprint bytea NOT NULL,
    attempt_expires_at  timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'failed') = (failure_reason IS NOT NULL))
);
CREATE INDEX refunds_payment ON refunds (payment_id);
