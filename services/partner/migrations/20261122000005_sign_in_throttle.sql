-- Failed sign-ins per e-mail and per client address in a fixed window, shared by every replica.
CREATE TABLE sign_in_throttle (
    key          text        NOT NULL,
    window_start timestamptz NOT NULL,
    failures     integer     NOT NULL,
    CONSTRAINT sign_in_throttle_pkey PRIMARY KEY (key)
);
