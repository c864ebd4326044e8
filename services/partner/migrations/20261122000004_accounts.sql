-- Password resets reuse the single-use token table; `purpose` keeps the two kinds apart.
ALTER TABLE invitation ADD COLUMN purpose text NOT NULL DEFAULT 'invitation';
ALTER TABLE invitation ADD CONSTRAINT invitation_purpose_known CHECK (purpose IN ('invitation', 'password_reset'));

-- Service accounts: other teams' systems sign in with client credentials. One bound to a bank
-- acts as that bank's administrator; one without a bank is an operator's (super admin).
CREATE TABLE service_account (
    id              uuid        NOT NULL,
    name            text        NOT NULL,
    client_id       text        NOT NULL,
    secret_hash     text        NOT NULL,
    organization_id uuid        REFERENCES organization (id),
    created_by      uuid        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT service_account_pkey PRIMARY KEY (id),
    CONSTRAINT service_account_client_id_key UNIQUE (client_id)
);
CREATE INDEX service_account_organization_idx ON service_account (organization_id);
