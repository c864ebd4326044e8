-- Banks, users and their role grants, invitations, partners, profiles, groups, imports.

CREATE TABLE organization (
    id                             uuid        NOT NULL,
    name                           text        NOT NULL,
    email                          text        NOT NULL DEFAULT '',
    url                            text        NOT NULL DEFAULT '',
    street                         text        NOT NULL DEFAULT '',
    city                           text        NOT NULL DEFAULT '',
    state                          text        NOT NULL DEFAULT '',
    zip_code                       text        NOT NULL DEFAULT '',
    one_step_partner_invite        boolean     NOT NULL DEFAULT false,
    deadline_day                   integer,
    reminder_day                   integer,
    reminder_email_text            text        NOT NULL DEFAULT '',
    default_email_text             text        NOT NULL DEFAULT '',
    invitation_text                text        NOT NULL DEFAULT '',
    default_storage_location_id    uuid,
    receive_email_on_requests      boolean     NOT NULL DEFAULT false,
    enable_quantity_based_requests boolean     NOT NULL DEFAULT true,
    enable_individual_requests     boolean     NOT NULL DEFAULT true,
    enable_child_based_requests    boolean     NOT NULL DEFAULT true,
    created_at                     timestamptz NOT NULL DEFAULT now(),
    updated_at                     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT organization_pkey PRIMARY KEY (id),
    CONSTRAINT organization_name_key UNIQUE (name),
    CONSTRAINT organization_deadline_day_range CHECK (deadline_day BETWEEN 1 AND 28),
    CONSTRAINT organization_reminder_day_range CHECK (reminder_day BETWEEN 1 AND 28),
    CONSTRAINT organization_some_request_type CHECK (
        enable_quantity_based_requests OR enable_individual_requests OR enable_child_based_requests)
);

-- E-mail is stored lower-cased; one account per e-mail across all banks.
CREATE TABLE app_user (
    id                     uuid        NOT NULL,
    email                  text        NOT NULL,
    name                   text,
    password_hash          text,
    invitation_accepted_at timestamptz,
    last_sign_in_at        timestamptz,
    last_role_id           uuid,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT app_user_pkey PRIMARY KEY (id),
    CONSTRAINT app_user_email_key UNIQUE (email),
    CONSTRAINT app_user_email_lower CHECK (email = lower(email))
);

CREATE TABLE partner_group (
    id              uuid        NOT NULL,
    organization_id uuid        NOT NULL REFERENCES organization (id),
    name            text        NOT NULL,
    send_reminders  boolean     NOT NULL DEFAULT false,
    deadline_day    integer,
    reminder_day    integer,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT partner_group_pkey PRIMARY KEY (id),
    CONSTRAINT partner_group_name_key UNIQUE (organization_id, name),
    CONSTRAINT partner_group_deadline_day_range CHECK (deadline_day BETWEEN 1 AND 28),
    CONSTRAINT partner_group_reminder_day_range CHECK (reminder_day BETWEEN 1 AND 28),
    CONSTRAINT partner_group_reminders_need_deadline CHECK (NOT send_reminders OR deadline_day IS NOT NULL)
);

-- Which item categories (owned by the inventory part) a group's partners may request.
CREATE TABLE partner_group_item_category (
    partner_group_id uuid NOT NULL REFERENCES partner_group (id) ON DELETE CASCADE,
    item_category_id uuid NOT NULL,
    organization_id  uuid NOT NULL,
    CONSTRAINT partner_group_item_category_pkey PRIMARY KEY (partner_group_id, item_category_id)
);

CREATE TABLE partner (
    id                          uuid        NOT NULL,
    organization_id             uuid        NOT NULL REFERENCES organization (id),
    name                        text        NOT NULL,
    email                       text        NOT NULL,
    status                      text        NOT NULL DEFAULT 'uninvited',
    send_reminders              boolean     NOT NULL DEFAULT false,
    quota                       integer,
    notes                       text        NOT NULL DEFAULT '',
    info_for_partner            text        NOT NULL DEFAULT '',
    partner_group_id            uuid        REFERENCES partner_group (id),
    default_storage_location_id uuid,
    review_requested_at         timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT partner_pkey PRIMARY KEY (id),
    -- A name repeats across banks but not within one.
    CONSTRAINT partner_name_key UNIQUE (organization_id, name),
    -- An e-mail belongs to one partner across every bank.
    CONSTRAINT partner_email_key UNIQUE (email),
    CONSTRAINT partner_email_lower CHECK (email = lower(email)),
    CONSTRAINT partner_status_known CHECK (status IN (
        'uninvited', 'invited', 'awaiting_review', 'approved', 'recertification_required', 'deactivated')),
    CONSTRAINT partner_quota_not_negative CHECK (quota >= 0),
    CONSTRAINT partner_info_for_partner_length CHECK (length(info_for_partner) <= 500)
);
CREATE INDEX partner_organization_name_idx ON partner (organization_id, name, id);
CREATE INDEX partner_organization_status_idx ON partner (organization_id, status);
CREATE INDEX partner_group_idx ON partner (partner_group_id) WHERE partner_group_id IS NOT NULL;

-- The profile is one validated document per partner: an encoded essentials.partner.v1.PartnerProfile.
CREATE TABLE partner_profile (
    partner_id      uuid        NOT NULL REFERENCES partner (id) ON DELETE CASCADE,
    organization_id uuid        NOT NULL,
    profile         bytea       NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT partner_profile_pkey PRIMARY KEY (partner_id)
);

-- A user's roles: super_admin (no bank), org_admin / org_user (a bank), partner (a partner of a bank).
CREATE TABLE role_grant (
    id              uuid        NOT NULL,
    user_id         uuid        NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    kind            text        NOT NULL,
    organization_id uuid        REFERENCES organization (id),
    partner_id      uuid        REFERENCES partner (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT role_grant_pkey PRIMARY KEY (id),
    CONSTRAINT role_grant_unique UNIQUE NULLS NOT DISTINCT (user_id, kind, organization_id, partner_id),
    CONSTRAINT role_grant_kind_known CHECK (kind IN ('super_admin', 'org_admin', 'org_user', 'partner')),
    CONSTRAINT role_grant_scope CHECK (
        (kind = 'super_admin' AND organization_id IS NULL AND partner_id IS NULL)
        OR (kind IN ('org_admin', 'org_user') AND organization_id IS NOT NULL AND partner_id IS NULL)
        OR (kind = 'partner' AND organization_id IS NOT NULL AND partner_id IS NOT NULL))
);
CREATE INDEX role_grant_user_idx ON role_grant (user_id);
CREATE INDEX role_grant_organization_idx ON role_grant (organization_id, kind);
CREATE INDEX role_grant_partner_idx ON role_grant (partner_id) WHERE partner_id IS NOT NULL;

-- Single-use, expiring invitation tokens; only a SHA-256 of the token is kept.
CREATE TABLE invitation (
    token_hash      bytea       NOT NULL,
    user_id         uuid        NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    organization_id uuid,
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT invitation_pkey PRIMARY KEY (token_hash)
);
CREATE INDEX invitation_user_idx ON invitation (user_id);

-- A bank imports partners once.
CREATE TABLE partner_import (
    organization_id uuid        NOT NULL REFERENCES organization (id),
    imported_count  integer     NOT NULL,
    skipped_count   integer     NOT NULL,
    imported_by     uuid        NOT NULL,
    imported_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT partner_import_pkey PRIMARY KEY (organization_id)
);
