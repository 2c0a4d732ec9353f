// Written by hand to match migrations/{sqlite,postgres}; one schema for both backends.
diesel::table! {
    settings (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    campaigns (id) {
        id -> BigInt,
        slug -> Text,
        title -> Text,
        summary -> Text,
        body_md -> Text,
        content_note -> Nullable<Text>,
        state -> Text,
        closes_at -> Nullable<BigInt>,
        closed_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
        mp_digest -> Bool,
    }
}

diesel::table! {
    milestones (id) {
        id -> BigInt,
        campaign_id -> BigInt,
        threshold -> BigInt,
        reached_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    targets (id) {
        id -> BigInt,
        campaign_id -> BigInt,
        key -> Text,
        name -> Text,
        title -> Text,
        salutation -> Text,
        email -> Text,
        position -> BigInt,
    }
}

diesel::table! {
    constituencies (ons_code) {
        ons_code -> Text,
        name -> Text,
        mp_checked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    members (id) {
        id -> BigInt,
        ons_code -> Nullable<Text>,
        name -> Text,
        party -> Nullable<Text>,
        email -> Nullable<Text>,
        updated_at -> BigInt,
    }
}

diesel::table! {
    postcodes (postcode) {
        postcode -> Text,
        status -> Text,
        ons_code -> Nullable<Text>,
        fetched_at -> BigInt,
    }
}

diesel::table! {
    signatures (id) {
        id -> BigInt,
        campaign_id -> BigInt,
        name -> Text,
        email -> Text,
        email_key -> Text,
        postcode -> Text,
        ons_code -> Nullable<Text>,
        updates_opt_in -> Bool,
        show_name -> Bool,
        state -> Text,
        created_at -> BigInt,
        confirmed_at -> Nullable<BigInt>,
        invalidated_reason -> Nullable<Text>,
        invalidated_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    staff (id) {
        id -> BigInt,
        email -> Text,
        name -> Text,
        password_hash -> Text,
        role -> Text,
        created_at -> BigInt,
        disabled_at -> Nullable<BigInt>,
        sessions_valid_after -> BigInt,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        staff_id -> Nullable<BigInt>,
        staff_name -> Text,
        action -> Text,
        detail -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    tokens (id) {
        id -> BigInt,
        token_hash -> Text,
        purpose -> Text,
        subject_id -> BigInt,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    outbox (id) {
        id -> BigInt,
        kind -> Text,
        subject_id -> BigInt,
        state -> Text,
        attempts -> BigInt,
        run_at -> BigInt,
        lease_until -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        sent_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    letter_templates (id) {
        id -> BigInt,
        campaign_id -> BigInt,
        target_key -> Text,
        subject -> Text,
        body -> Text,
        version -> BigInt,
        created_by -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    letters (id) {
        id -> BigInt,
        campaign_id -> BigInt,
        target_key -> Text,
        target_name -> Text,
        target_email -> Text,
        ons_code -> Nullable<Text>,
        writer_name -> Text,
        writer_email -> Text,
        writer_email_key -> Text,
        address_line1 -> Text,
        address_line2 -> Nullable<Text>,
        town -> Text,
        postcode -> Text,
        personal_edit -> Nullable<Text>,
        subject -> Text,
        body -> Text,
        state -> Text,
        created_at -> BigInt,
        confirmed_at -> Nullable<BigInt>,
        sent_at -> Nullable<BigInt>,
        survey_asked_at -> Nullable<BigInt>,
        survey_reminded_at -> Nullable<BigInt>,
        reply -> Nullable<Text>,
        replied_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    updates (id) {
        id -> BigInt,
        campaign_id -> BigInt,
        subject -> Text,
        body_md -> Text,
        state -> Text,
        created_by -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        started_at -> Nullable<BigInt>,
        finished_at -> Nullable<BigInt>,
        recipients -> BigInt,
        queued -> BigInt,
        last_signature_id -> BigInt,
        public -> Bool,
    }
}

diesel::table! {
    update_deliveries (id) {
        id -> BigInt,
        update_id -> BigInt,
        signature_id -> BigInt,
    }
}

diesel::table! {
    mp_digests (id) {
        id -> BigInt,
        campaign_id -> BigInt,
        ons_code -> Text,
        week -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    mp_digest_optouts (id) {
        id -> BigInt,
        campaign_id -> BigInt,
        ons_code -> Text,
        created_at -> BigInt,
    }
}

diesel::joinable!(letter_templates -> campaigns (campaign_id));
diesel::joinable!(letters -> campaigns (campaign_id));
diesel::joinable!(milestones -> campaigns (campaign_id));
diesel::joinable!(targets -> campaigns (campaign_id));
diesel::joinable!(signatures -> campaigns (campaign_id));
diesel::joinable!(members -> constituencies (ons_code));
diesel::joinable!(updates -> campaigns (campaign_id));
diesel::joinable!(update_deliveries -> updates (update_id));
diesel::joinable!(mp_digests -> campaigns (campaign_id));

diesel::allow_tables_to_appear_in_same_query!(
    settings, campaigns, milestones, targets, constituencies, members, postcodes, signatures, tokens, outbox, letter_templates, letters, staff, audit_log, updates,
    update_deliveries, mp_digests, mp_digest_optouts,
);
