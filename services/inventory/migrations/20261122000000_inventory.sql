-- The inventory part: catalog, storage locations, stock (balances + append-only ledger), the
-- documents that move stock, and distributions. Every row carries organization_id; every
-- bank-scoped index starts with it. Constraints are named so a violation maps to a clear error.

CREATE TABLE item_category (
    id              uuid        NOT NULL,
    organization_id uuid        NOT NULL,
    name            text        NOT NULL,
    description     text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT item_category_pkey PRIMARY KEY (id),
    CONSTRAINT item_category_org_id_key UNIQUE (organization_id, id),
    CONSTRAINT item_category_description_length CHECK (char_length(description) <= 250)
);
CREATE UNIQUE INDEX item_category_name_key ON item_category (organization_id, lower(name));

CREATE TABLE item (
    id                           uuid        NOT NULL,
    organization_id              uuid        NOT NULL,
    name                         text        NOT NULL,
    item_category_id             uuid,
    reporting_category           text        NOT NULL DEFAULT 'other',
    partner_key                  text        NOT NULL DEFAULT '',
    value_in_cents               bigint      NOT NULL DEFAULT 0,
    package_size                 integer,
    distribution_quantity        integer     NOT NULL DEFAULT 50,
    on_hand_minimum_quantity     integer     NOT NULL DEFAULT 0,
    on_hand_recommended_quantity integer,
    visible_to_partners          boolean     NOT NULL DEFAULT true,
    active                       boolean     NOT NULL DEFAULT true,
    additional_info              text        NOT NULL DEFAULT '',
    created_at                   timestamptz NOT NULL DEFAULT now(),
    updated_at                   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT item_pkey PRIMARY KEY (id),
    CONSTRAINT item_org_id_key UNIQUE (organization_id, id),
    -- An item's category is of the same bank; deleting the category uncategorises its items.
    CONSTRAINT item_category_fkey FOREIGN KEY (organization_id, item_category_id)
        REFERENCES item_category (organization_id, id) ON DELETE SET NULL (item_category_id),
    CONSTRAINT item_value_nonnegative CHECK (value_in_cents >= 0),
    CONSTRAINT item_package_size_nonnegative CHECK (package_size IS NULL OR package_size >= 0),
    CONSTRAINT item_distribution_quantity_positive CHECK (distribution_quantity > 0),
    CONSTRAINT item_minimum_nonnegative CHECK (on_hand_minimum_quantity >= 0),
    CONSTRAINT item_recommended_nonnegative CHECK (on_hand_recommended_quantity IS NULL OR on_hand_recommended_quantity >= 0),
    CONSTRAINT item_additional_info_length CHECK (char_length(additional_info) <= 500),
    CONSTRAINT item_reporting_category_known CHECK (reporting_category IN ('adult_incontinence',
        'cloth_diapers', 'disposable_diapers', 'pads', 'period_liners', 'period_other',
        'period_underwear', 'tampons', 'other'))
);
-- Unique per bank, case-insensitively, inactive items included; also the list order.
CREATE UNIQUE INDEX item_name_key ON item (organization_id, lower(name));

CREATE TABLE storage_location (
    id              uuid        NOT NULL,
    organization_id uuid        NOT NULL,
    name            text        NOT NULL,
    address         text        NOT NULL,
    warehouse_type  text,
    square_footage  integer,
    time_zone       text        NOT NULL DEFAULT 'America/Los_Angeles',
    active          boolean     NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT storage_location_pkey PRIMARY KEY (id),
    CONSTRAINT storage_location_org_id_key UNIQUE (organization_id, id),
    CONSTRAINT storage_location_square_footage_nonnegative CHECK (square_footage IS NULL OR square_footage >= 0),
    CONSTRAINT storage_location_warehouse_type_known CHECK (warehouse_type IS NULL OR warehouse_type IN
        ('residential', 'self_storage', 'commercial', 'donated_space'))
);
CREATE UNIQUE INDEX storage_location_name_key ON storage_location (organization_id, lower(name));

-- How much of an item a location holds now: O(1) reads, never negative.
CREATE TABLE stock_balance (
    organization_id     uuid    NOT NULL,
    storage_location_id uuid    NOT NULL,
    item_id             uuid    NOT NULL,
    quantity            integer NOT NULL,
    CONSTRAINT stock_balance_pkey PRIMARY KEY (organization_id, storage_location_id, item_id),
    CONSTRAINT stock_balance_location_fkey FOREIGN KEY (organization_id, storage_location_id)
        REFERENCES storage_location (organization_id, id),
    CONSTRAINT stock_balance_item_fkey FOREIGN KEY (organization_id, item_id)
        REFERENCES item (organization_id, id),
    CONSTRAINT stock_balance_quantity_nonnegative CHECK (quantity >= 0)
);
CREATE INDEX stock_balance_item_idx ON stock_balance (organization_id, item_id);

-- Every change of a balance, append-only: what happened, and stock as of any moment.
CREATE TABLE stock_ledger (
    id                  uuid        NOT NULL,
    organization_id     uuid        NOT NULL,
    storage_location_id uuid        NOT NULL,
    item_id             uuid        NOT NULL,
    quantity_change     integer     NOT NULL,
    quantity_after      integer     NOT NULL,
    source_type         text        NOT NULL,
    source_id           uuid        NOT NULL,
    effective_at        timestamptz NOT NULL,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    user_id             uuid,
    CONSTRAINT stock_ledger_pkey PRIMARY KEY (id),
    CONSTRAINT stock_ledger_location_fkey FOREIGN KEY (organization_id, storage_location_id)
        REFERENCES storage_location (organization_id, id),
    CONSTRAINT stock_ledger_item_fkey FOREIGN KEY (organization_id, item_id)
        REFERENCES item (organization_id, id),
    CONSTRAINT stock_ledger_quantity_after_nonnegative CHECK (quantity_after >= 0)
);
-- Newest first (ids are UUID v7, so id order is recording order).
CREATE INDEX stock_ledger_org_id_idx ON stock_ledger (organization_id, id DESC);
CREATE INDEX stock_ledger_location_item_idx ON stock_ledger (organization_id, storage_location_id, item_id, effective_at);
CREATE INDEX stock_ledger_item_idx ON stock_ledger (organization_id, item_id, effective_at);
CREATE INDEX stock_ledger_source_idx ON stock_ledger (organization_id, source_id);

-- Idempotency keys of creating calls: a retry with the same key returns the first answer.
CREATE TABLE idempotency_key (
    organization_id uuid        NOT NULL,
    operation       text        NOT NULL,
    key             text        NOT NULL,
    resource_id     uuid        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT idempotency_key_pkey PRIMARY KEY (organization_id, operation, key)
);

-- The stock documents. Their lines are in document_line.
CREATE TABLE donation (
    id                    uuid        NOT NULL,
    organization_id       uuid        NOT NULL,
    storage_location_id   uuid        NOT NULL,
    issued_at             timestamptz NOT NULL,
    source                text        NOT NULL,
    source_name           text        NOT NULL DEFAULT '',
    money_raised_in_cents bigint      NOT NULL DEFAULT 0,
    comment               text        NOT NULL DEFAULT '',
    user_id               uuid,
    created_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT donation_pkey PRIMARY KEY (id),
    CONSTRAINT donation_location_fkey FOREIGN KEY (organization_id, storage_location_id)
        REFERENCES storage_location (organization_id, id),
    CONSTRAINT donation_money_nonnegative CHECK (money_raised_in_cents >= 0),
    CONSTRAINT donation_source_known CHECK (source IN ('product_drive', 'manufacturer', 'donation_site', 'misc'))
);
CREATE INDEX donation_org_issued_idx ON donation (organization_id, issued_at DESC, id DESC);

CREATE TABLE purchase (
    id                                          uuid        NOT NULL,
    organization_id                             uuid        NOT NULL,
    storage_location_id                         uuid        NOT NULL,
    issued_at                                   timestamptz NOT NULL,
    vendor                                      text        NOT NULL DEFAULT '',
    amount_spent_in_cents                       bigint      NOT NULL,
    amount_spent_on_diapers_in_cents            bigint      NOT NULL DEFAULT 0,
    amount_spent_on_adult_incontinence_in_cents bigint      NOT NULL DEFAULT 0,
    amount_spent_on_period_supplies_in_cents    bigint      NOT NULL DEFAULT 0,
    amount_spent_on_other_in_cents              bigint      NOT NULL DEFAULT 0,
    comment                                     text        NOT NULL DEFAULT '',
    user_id                                     uuid,
    created_at                                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT purchase_pkey PRIMARY KEY (id),
    CONSTRAINT purchase_location_fkey FOREIGN KEY (organization_id, storage_location_id)
        REFERENCES storage_location (organization_id, id),
    CONSTRAINT purchase_amount_positive CHECK (amount_spent_in_cents > 0)
);
CREATE INDEX purchase_org_issued_idx ON purchase (organization_id, issued_at DESC, id DESC);

CREATE TABLE adjustment (
    id                  uuid        NOT NULL,
    organization_id     uuid        NOT NULL,
    storage_location_id uuid        NOT NULL,
    comment             text        NOT NULL,
    user_id             uuid,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT adjustment_pkey PRIMARY KEY (id),
    CONSTRAINT adjustment_location_fkey FOREIGN KEY (organization_id, storage_location_id)
        REFERENCES storage_location (organization_id, id)
);
CREATE INDEX adjustment_org_id_idx ON adjustment (organization_id, id DESC);

CREATE TABLE transfer (
    id                       uuid        NOT NULL,
    organization_id          uuid        NOT NULL,
    from_storage_location_id uuid        NOT NULL,
    to_storage_location_id   uuid        NOT NULL,
    comment                  text        NOT NULL DEFAULT '',
    user_id                  uuid,
    created_at               timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT transfer_pkey PRIMARY KEY (id),
    CONSTRAINT transfer_from_fkey FOREIGN KEY (organization_id, from_storage_location_id)
        REFERENCES storage_location (organization_id, id),
    CONSTRAINT transfer_to_fkey FOREIGN KEY (organization_id, to_storage_location_id)
        REFERENCES storage_location (organization_id, id),
    CONSTRAINT transfer_distinct_locations CHECK (from_storage_location_id <> to_storage_location_id)
);
CREATE INDEX transfer_org_id_idx ON transfer (organization_id, id DESC);

CREATE TABLE audit (
    id                  uuid        NOT NULL,
    organization_id     uuid        NOT NULL,
    storage_location_id uuid        NOT NULL,
    status              text        NOT NULL DEFAULT 'in_progress',
    user_id             uuid,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    finalized_at        timestamptz,
    CONSTRAINT audit_pkey PRIMARY KEY (id),
    CONSTRAINT audit_location_fkey FOREIGN KEY (organization_id, storage_location_id)
        REFERENCES storage_location (organization_id, id),
    CONSTRAINT audit_status_known CHECK (status IN ('in_progress', 'confirmed', 'finalized')),
    CONSTRAINT audit_finalized_at_set CHECK ((status = 'finalized') = (finalized_at IS NOT NULL))
);
CREATE INDEX audit_org_id_idx ON audit (organization_id, id DESC);

CREATE TABLE distribution (
    id                     uuid        NOT NULL,
    organization_id        uuid        NOT NULL,
    partner_id             uuid        NOT NULL,
    storage_location_id    uuid        NOT NULL,
    issued_at              timestamptz NOT NULL,
    delivery_method        text        NOT NULL,
    shipping_cost_in_cents bigint      NOT NULL DEFAULT 0,
    comment                text        NOT NULL DEFAULT '',
    agency_rep             text        NOT NULL DEFAULT '',
    request_id             uuid,
    -- Who submitted the request (the distribution e-mail goes to them), as of the distribution.
    requester_user_id      uuid,
    requester_name         text        NOT NULL DEFAULT '',
    requester_email        text        NOT NULL DEFAULT '',
    state                  text        NOT NULL DEFAULT 'scheduled',
    reminder_email_enabled boolean     NOT NULL DEFAULT false,
    user_id                uuid,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT distribution_pkey PRIMARY KEY (id),
    CONSTRAINT distribution_location_fkey FOREIGN KEY (organization_id, storage_location_id)
        REFERENCES storage_location (organization_id, id),
    -- A request is fulfilled by at most one distribution, even under concurrent saves.
    CONSTRAINT distribution_request_key UNIQUE (organization_id, request_id),
    CONSTRAINT distribution_delivery_method_known CHECK (delivery_method IN ('pick_up', 'delivery', 'shipped')),
    CONSTRAINT distribution_state_known CHECK (state IN ('scheduled', 'complete')),
    CONSTRAINT distribution_shipping_cost_only_when_shipped CHECK (
        shipping_cost_in_cents >= 0 AND (delivery_method = 'shipped' OR shipping_cost_in_cents = 0))
);
CREATE INDEX distribution_org_issued_idx ON distribution (organization_id, issued_at DESC, id DESC);
CREATE INDEX distribution_partner_issued_idx ON distribution (organization_id, partner_id, issued_at DESC, id DESC);

-- Lines of every document (donation, purchase, adjustment, transfer, audit, distribution): one
-- row per item (lines of the same item are combined before they are stored).
CREATE TABLE document_line (
    organization_id uuid    NOT NULL,
    document_id     uuid    NOT NULL,
    item_id         uuid    NOT NULL,
    quantity        integer NOT NULL,
    CONSTRAINT document_line_pkey PRIMARY KEY (organization_id, document_id, item_id),
    CONSTRAINT document_line_item_fkey FOREIGN KEY (organization_id, item_id)
        REFERENCES item (organization_id, id)
);
CREATE INDEX document_line_item_idx ON document_line (organization_id, item_id);
