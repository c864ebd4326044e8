-- Partner requests (DOMAIN.md §5) and their item lines. Every row carries its bank; every list
-- index starts with it.
CREATE TABLE request (
    id                    uuid        NOT NULL,
    organization_id       uuid        NOT NULL,
    partner_id            uuid        NOT NULL,
    request_type          text        NOT NULL,
    status                text        NOT NULL DEFAULT 'pending',
    comments              text        NOT NULL DEFAULT '',
    -- The submitting user (a partner user, or the org_admin who entered it) as of submission.
    requester_user_id     uuid        NOT NULL,
    requester_name        text        NOT NULL DEFAULT '',
    requester_email       text        NOT NULL DEFAULT '',
    on_behalf_of_partner  boolean     NOT NULL DEFAULT false,
    total_items           integer     NOT NULL,
    quota                 integer,
    -- The distribution that fulfilled it; cleared when that distribution is reclaimed.
    distribution_id       uuid,
    cancel_reason         text        NOT NULL DEFAULT '',
    cancelled_at          timestamptz,
    started_at            timestamptz,
    fulfilled_at          timestamptz,
    -- The client's idempotency key of the creating call (CreateRequest.request_id).
    idempotency_key       text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT request_pkey PRIMARY KEY (id),
    CONSTRAINT request_type_check CHECK (request_type IN ('quantity', 'individual', 'child')),
    CONSTRAINT request_status_check
        CHECK (status IN ('pending', 'started', 'fulfilled', 'cancelled')),
    CONSTRAINT request_total_items_check CHECK (total_items >= 0),
    CONSTRAINT request_idempotency_key UNIQUE (organization_id, idempotency_key),
    CONSTRAINT request_distribution_key UNIQUE (organization_id, distribution_id)
);

-- The bank's list, newest first, and the partner's own list.
CREATE INDEX request_organization_created_idx ON request (organization_id, created_at DESC, id DESC);
CREATE INDEX request_partner_created_idx
    ON request (organization_id, partner_id, created_at DESC, id DESC);

-- One line per item (duplicate lines were summed on create); the name is a snapshot.
CREATE TABLE request_item (
    request_id      uuid    NOT NULL REFERENCES request (id) ON DELETE CASCADE,
    organization_id uuid    NOT NULL,
    position        integer NOT NULL,
    item_id         uuid    NOT NULL,
    item_name       text    NOT NULL,
    quantity        integer NOT NULL,
    persons         integer NOT NULL DEFAULT 0,
    CONSTRAINT request_item_pkey PRIMARY KEY (request_id, item_id),
    CONSTRAINT request_item_quantity_check CHECK (quantity >= 1),
    CONSTRAINT request_item_persons_check CHECK (persons >= 0)
);

-- "Requests containing this item".
CREATE INDEX request_item_item_idx ON request_item (organization_id, item_id);
