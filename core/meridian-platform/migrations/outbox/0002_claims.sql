-- A relay claims rows for a while before publishing them (so replicas never publish the same
-- rows at once), and marks them published in its next round trip; a claim that outlives its
-- relay expires and the rows are published again, deduplicated by JetStream.
ALTER TABLE outbox ADD COLUMN claimed_until timestamptz NOT NULL DEFAULT '-infinity';
