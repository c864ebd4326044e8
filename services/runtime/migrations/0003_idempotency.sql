-- Idempotency keys of creating calls: the first answer is stored in the transaction that made
-- the change, and a retry with the same key gets that answer back.
CREATE TABLE idempotency_record (
    scope        text        NOT NULL,
    method       text        NOT NULL,
    key          text        NOT NULL,
    request_hash bytea       NOT NULL,
    response     bytea,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_record_pkey PRIMARY KEY (scope, method, key)
);
CREATE INDEX idempotency_record_created_at_idx ON idempotency_record (created_at);
