-- Issue 9: updates to signers, the "did your MP reply?" questionnaire, and digests for MPs' offices.

-- Staff turn the weekly digest to MPs' offices on per campaign; it starts off.
ALTER TABLE campaigns ADD COLUMN mp_digest BOOLEAN NOT NULL DEFAULT 0;

-- The questionnaire: when the writer was asked and reminded, and what they answered.
ALTER TABLE letters ADD COLUMN survey_asked_at BIGINT;
ALTER TABLE letters ADD COLUMN survey_reminded_at BIGINT;
ALTER TABLE letters ADD COLUMN reply TEXT;
ALTER TABLE letters ADD COLUMN replied_at BIGINT;
CREATE INDEX letters_delivered ON letters(state, sent_at);

-- An update staff write to a campaign's signers. `last_signature_id` is how far the sender has
-- queued, so a restart carries on from there.
CREATE TABLE updates (
    id INTEGER PRIMARY KEY NOT NULL,
    campaign_id BIGINT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    subject TEXT NOT NULL,
    body_md TEXT NOT NULL,
    state TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    recipients BIGINT NOT NULL DEFAULT 0,
    queued BIGINT NOT NULL DEFAULT 0,
    last_signature_id BIGINT NOT NULL DEFAULT 0,
    -- Shown on the campaign page once sent, as well as emailed.
    public BOOLEAN NOT NULL DEFAULT 1
);
CREATE INDEX updates_campaign ON updates(campaign_id, state);

-- One row per signer an update was queued for: the unique key is what makes "once" hold
-- across restarts and several instances.
CREATE TABLE update_deliveries (
    id INTEGER PRIMARY KEY NOT NULL,
    update_id BIGINT NOT NULL REFERENCES updates(id) ON DELETE CASCADE,
    signature_id BIGINT NOT NULL,
    UNIQUE (update_id, signature_id)
);

-- One digest per campaign, constituency and week.
CREATE TABLE mp_digests (
    id INTEGER PRIMARY KEY NOT NULL,
    campaign_id BIGINT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    ons_code TEXT NOT NULL,
    week BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (campaign_id, ons_code, week)
);

-- MPs' offices that asked for no more digests about a campaign.
CREATE TABLE mp_digest_optouts (
    id INTEGER PRIMARY KEY NOT NULL,
    campaign_id BIGINT NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    ons_code TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (campaign_id, ons_code)
);
