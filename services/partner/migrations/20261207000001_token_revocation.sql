-- Revocation: a user's tokens carry the user's token version (`ver`); removing the user,
-- taking a role away, deactivating its partner or resetting its password bumps the version and
-- logs it here, and every part and the gateway poll this log and refuse older tokens. Only the
-- last token lifetime of the log matters (older tokens have expired anyway).
ALTER TABLE app_user ADD COLUMN token_version integer NOT NULL DEFAULT 0;

CREATE TABLE token_revocation (
    id            bigint      GENERATED ALWAYS AS IDENTITY,
    subject_id    uuid        NOT NULL,
    token_version integer     NOT NULL,
    reason        text        NOT NULL,
    revoked_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT token_revocation_pkey PRIMARY KEY (id)
);
CREATE INDEX token_revocation_revoked_at_idx ON token_revocation (revoked_at);
