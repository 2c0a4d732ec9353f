-- When Rally last asked the Members API about a constituency's MP (NULL: never). A checked
-- constituency with no member row is vacant.
ALTER TABLE constituencies ADD COLUMN mp_checked_at BIGINT;

CREATE TABLE letter_templates (
    id BIGSERIAL PRIMARY KEY,
    campaign_id BIGINT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    target_key TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    version BIGINT NOT NULL,
    created_by TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (campaign_id, target_key, version)
);

CREATE TABLE letters (
    id BIGSERIAL PRIMARY KEY,
    campaign_id BIGINT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    target_key TEXT NOT NULL,
    target_name TEXT NOT NULL,
    target_email TEXT NOT NULL,
    ons_code TEXT,
    writer_name TEXT NOT NULL,
    writer_email TEXT NOT NULL,
    writer_email_key TEXT NOT NULL,
    address_line1 TEXT NOT NULL,
    address_line2 TEXT,
    town TEXT NOT NULL,
    postcode TEXT NOT NULL,
    personal_edit TEXT,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    confirmed_at BIGINT,
    sent_at BIGINT,
    UNIQUE (campaign_id, target_key, writer_email_key)
);
CREATE INDEX letters_target_sent ON letters(target_email, sent_at);
CREATE INDEX letters_campaign_state ON letters(campaign_id, state);
