-- One deadline-reminder run per bank per day, whichever replica claims it first.
CREATE TABLE reminder_run (
    organization_id uuid        NOT NULL REFERENCES organization (id),
    day             date        NOT NULL,
    reminded        integer     NOT NULL DEFAULT 0,
    ran_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reminder_run_pkey PRIMARY KEY (organization_id, day)
);
