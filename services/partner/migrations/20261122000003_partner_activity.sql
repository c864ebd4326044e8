-- Requests and distributions the other parts made for a partner, counted from their events, so
-- that a partner with history is never deleted.
CREATE TABLE partner_activity (
    partner_id      uuid    NOT NULL REFERENCES partner (id) ON DELETE CASCADE,
    organization_id uuid    NOT NULL,
    requests        integer NOT NULL DEFAULT 0,
    distributions   integer NOT NULL DEFAULT 0,
    CONSTRAINT partner_activity_pkey PRIMARY KEY (partner_id)
);
