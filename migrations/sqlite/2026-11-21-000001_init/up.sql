-- Times are Unix milliseconds (BIGINT) so one schema serves SQLite and PostgreSQL.
CREATE TABLE settings (
    key TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY NOT NULL,
    slug TEXT NOT NULL UNIQUE,
    title TEXT NOT NULL,
    summary TEXT NOT NULL,
    body_md TEXT NOT NULL,
    content_note TEXT,
    state TEXT NOT NULL,
    closes_at BIGINT,
    closed_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE milestones (
    id INTEGER PRIMARY KEY NOT NULL,
    campaign_id BIGINT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    threshold BIGINT NOT NULL,
    reached_at BIGINT,
    UNIQUE (campaign_id, threshold)
);

CREATE TABLE targets (
    id INTEGER PRIMARY KEY NOT NULL,
    campaign_id BIGINT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    title TEXT NOT NULL,
    salutation TEXT NOT NULL,
    email TEXT NOT NULL,
    position BIGINT NOT NULL,
    UNIQUE (campaign_id, key)
);

CREATE TABLE constituencies (
    ons_code TEXT PRIMARY KEY NOT NULL,
    name TEXT NOT NULL
);

CREATE TABLE members (
    id BIGINT PRIMARY KEY NOT NULL,
    ons_code TEXT REFERENCES constituencies(ons_code),
    name TEXT NOT NULL,
    party TEXT,
    email TEXT,
    updated_at BIGINT NOT NULL
);
CREATE INDEX members_ons_code ON members(ons_code);

CREATE TABLE postcodes (
    postcode TEXT PRIMARY KEY NOT NULL,
    status TEXT NOT NULL,
    ons_code TEXT,
    fetched_at BIGINT NOT NULL
);

CREATE TABLE signatures (
    id INTEGER PRIMARY KEY NOT NULL,
    campaign_id BIGINT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    email TEXT NOT NULL,
    email_key TEXT NOT NULL,
    postcode TEXT NOT NULL,
    ons_code TEXT,
    updates_opt_in BOOLEAN NOT NULL,
    show_name BOOLEAN NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    UNIQUE (campaign_id, email_key)
);
CREATE INDEX signatures_campaign_state ON signatures(campaign_id, state, ons_code);
CREATE INDEX signatures_unplaced ON signatures(postcode) WHERE ons_code IS NULL;

CREATE TABLE tokens (
    id INTEGER PRIMARY KEY NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    purpose TEXT NOT NULL,
    subject_id BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX tokens_subject ON tokens(purpose, subject_id);

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    subject_id BIGINT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    run_at BIGINT NOT NULL,
    lease_until BIGINT,
    last_error TEXT,
    created_at BIGINT NOT NULL,
    sent_at BIGINT
);
CREATE INDEX outbox_due ON outbox(state, run_at);
