-- The notification part: the e-mail log (one row per e-mail, keyed by what caused it), the bank
-- dashboard projection fed by events, and the claims that make the daily reminder run once per
-- bank and day however many replicas run it.

-- Every e-mail, written in the consuming transaction before any send, then marked sent or failed.
-- dedupe_key is "<event id>/<template>" for event e-mails and "<kind>/<subject id>/<day>" for
-- reminders, so a redelivered event or a second reminder run writes nothing new.
CREATE TABLE email (
    id               uuid        NOT NULL,
    organization_id  uuid        NOT NULL,
    dedupe_key       text        NOT NULL,
    event_id         uuid,
    event_type       text        NOT NULL,
    template         text        NOT NULL,
    to_address       text        NOT NULL,
    cc_addresses     text[]      NOT NULL DEFAULT '{}',
    subject          text        NOT NULL,
    text_body        text        NOT NULL,
    html_body        text        NOT NULL,
    attachment_name  text,
    attachment_type  text,
    attachment       bytea,
    status           text        NOT NULL DEFAULT 'pending',
    attempts         integer     NOT NULL DEFAULT 0,
    -- Pending rows are due at this time; a claimed row's lease ends here (a sender that died
    -- mid-send leaves the row to be taken again after it).
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    sent_at          timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT email_pkey PRIMARY KEY (id),
    CONSTRAINT email_dedupe_key_unique UNIQUE (organization_id, dedupe_key),
    CONSTRAINT email_status_check CHECK (status IN ('pending', 'sent', 'failed')),
    CONSTRAINT email_attempts_check CHECK (attempts >= 0)
);

-- The bank's log, newest first (keyset on created_at, id).
CREATE INDEX email_organization_created_idx ON email (organization_id, created_at DESC, id DESC);
-- The sender's queue.
CREATE INDEX email_due_idx ON email (next_attempt_at) WHERE status = 'pending';

-- Dashboard: requests. status_rank orders pending (0) < started (1) < fulfilled/cancelled (2), so
-- events handled out of order never move a request backwards.
CREATE TABLE dashboard_request (
    organization_id  uuid        NOT NULL,
    request_id       uuid        NOT NULL,
    partner_id       uuid,
    partner_name     text        NOT NULL DEFAULT '',
    requester_name   text        NOT NULL DEFAULT '',
    requester_email  text        NOT NULL DEFAULT '',
    comments         text        NOT NULL DEFAULT '',
    -- Unknown until request.created arrives (a later event may come first).
    created_at       timestamptz,
    status           text        NOT NULL,
    status_rank      smallint    NOT NULL,
    CONSTRAINT dashboard_request_pkey PRIMARY KEY (organization_id, request_id),
    CONSTRAINT dashboard_request_status_check
        CHECK (status IN ('pending', 'started', 'fulfilled', 'cancelled'))
);
CREATE INDEX dashboard_request_outstanding_idx
    ON dashboard_request (organization_id, created_at, request_id) WHERE status_rank < 2;

-- Dashboard: partners, with their latest review state (as of status_at, the event's time).
CREATE TABLE dashboard_partner (
    organization_id        uuid        NOT NULL,
    partner_id             uuid        NOT NULL,
    name                   text        NOT NULL DEFAULT '',
    primary_contact_name   text        NOT NULL DEFAULT '',
    primary_contact_email  text        NOT NULL DEFAULT '',
    awaiting_review        boolean     NOT NULL DEFAULT false,
    review_requested_at    timestamptz,
    status_at              timestamptz NOT NULL,
    CONSTRAINT dashboard_partner_pkey PRIMARY KEY (organization_id, partner_id)
);
CREATE INDEX dashboard_partner_awaiting_idx
    ON dashboard_partner (organization_id, review_requested_at) WHERE awaiting_review;

-- Dashboard: items below a bank-wide threshold (as of as_of, the event's time); rows of items back
-- above their thresholds are kept with low = false so an older event cannot bring them back.
CREATE TABLE dashboard_stock (
    organization_id  uuid        NOT NULL,
    item_id          uuid        NOT NULL,
    name             text        NOT NULL,
    quantity         integer     NOT NULL,
    minimum          integer     NOT NULL,
    recommended      integer     NOT NULL,
    as_of            timestamptz NOT NULL,
    CONSTRAINT dashboard_stock_pkey PRIMARY KEY (organization_id, item_id)
);

-- Distributions (for the dashboard's count and the distribution reminders): the latest snapshot.
CREATE TABLE distribution (
    organization_id  uuid        NOT NULL,
    distribution_id  uuid        NOT NULL,
    issued_at        timestamptz NOT NULL,
    -- scheduled, complete or reclaimed.
    state            text        NOT NULL,
    -- The encoded events.v1.DistributionSnapshot.
    snapshot         bytea       NOT NULL,
    as_of            timestamptz NOT NULL,
    CONSTRAINT distribution_pkey PRIMARY KEY (organization_id, distribution_id),
    CONSTRAINT distribution_state_check CHECK (state IN ('scheduled', 'complete', 'reclaimed'))
);
CREATE INDEX distribution_issued_idx ON distribution (organization_id, issued_at) WHERE state = 'scheduled';
CREATE INDEX distribution_due_idx ON distribution (issued_at) WHERE state = 'scheduled';

-- The dashboard's version per bank: bumped in every transaction that changes it (watchers are
-- woken by NOTIFY essentials_dashboard with the bank id).
CREATE TABLE dashboard_version (
    organization_id  uuid        NOT NULL,
    version          bigint      NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dashboard_version_pkey PRIMARY KEY (organization_id)
);

-- One reminder run per (bank, day, kind): the replica that inserts the row sends.
CREATE TABLE reminder_run (
    organization_id  uuid        NOT NULL,
    day              date        NOT NULL,
    kind             text        NOT NULL,
    claimed_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reminder_run_pkey PRIMARY KEY (organization_id, day, kind)
);
