-- The audit trail: one row per call that changed this part's data (who, which bank, what, when,
-- the request id), written in the change's own transaction, so a change without its row (or a
-- row without its change) cannot commit.
CREATE TABLE audit_event (
    id              uuid        NOT NULL,
    organization_id uuid,
    actor_id        uuid        NOT NULL,
    actor_role      text        NOT NULL,
    service_account boolean     NOT NULL DEFAULT false,
    method          text        NOT NULL,
    request_id      text        NOT NULL DEFAULT '',
    events          text[]      NOT NULL DEFAULT '{}',
    subjects        text[]      NOT NULL DEFAULT '{}',
    at              timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT audit_event_pkey PRIMARY KEY (id)
);
CREATE INDEX audit_event_organization_at_idx ON audit_event (organization_id, at DESC, id DESC);
