-- Events a consumer has handled, written in the handler's own transaction: delivery is
-- at-least-once, effects happen exactly once.
CREATE TABLE processed_event (
    consumer     text        NOT NULL,
    event_id     uuid        NOT NULL,
    processed_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT processed_event_pkey PRIMARY KEY (consumer, event_id)
);
