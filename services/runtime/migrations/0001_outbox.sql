-- The transactional outbox: a part writes its events here in the same transaction as the change
-- they describe; the relay publishes them to RabbitMQ and marks them published.
CREATE TABLE outbox (
    id              uuid        NOT NULL,
    seq             bigserial   NOT NULL,
    event_type      text        NOT NULL,
    organization_id uuid,
    -- An encoded essentials.events.v1.EventEnvelope.
    envelope        bytea       NOT NULL,
    -- W3C trace context of the transaction that wrote the event.
    traceparent     text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    CONSTRAINT outbox_pkey PRIMARY KEY (id)
);

-- The relay claims the oldest unpublished rows; this index holds only those.
CREATE INDEX outbox_unpublished_idx ON outbox (seq) WHERE published_at IS NULL;
-- Retention deletes old published rows.
CREATE INDEX outbox_published_at_idx ON outbox (published_at) WHERE published_at IS NOT NULL;
