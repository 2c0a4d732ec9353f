//! The outbox sender: claims due emails, writes each one (making any link token at that moment),
//! delivers it, and records the result. Failures are retried with exponential backoff and jitter;
//! a permanent refusal is recorded as failed with the reason.
use std::time::Duration;

use lettre::message::Mailbox;
use rand::Rng;

use crate::clock::{now_ms, DAY, MINUTE, SECOND};
use crate::db::DbConn;
use crate::error::AppError;
use crate::models::outbox::{self, OutboxRow};
use crate::models::{campaigns, signatures, tokens};
use crate::petition::sign::{ALREADY_SIGNED_EMAIL, CONFIRM_EMAIL};
use crate::services::mailer::{OutgoingEmail, SendError};
use crate::state::AppState;
use crate::templates::render_email;

const BATCH: i64 = 32;
/// Long enough for a slow SMTP conversation; a sender that dies holding rows frees them after this.
const LEASE_MS: i64 = 2 * MINUTE;
const MAX_ATTEMPTS: i64 = 25;
pub const CONFIRM_LIFETIME_MS: i64 = 7 * DAY;

pub async fn run(state: AppState) {
    loop {
        match send_due(&state).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox sender could not read the queue"),
        }
        tokio::select! {
            _ = state.outbox_wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Sends one batch of due emails; returns how many were attempted.
pub async fn send_due(state: &AppState) -> Result<usize, AppError> {
    let rows = state.db.write(|conn| Ok(outbox::claim_due(conn, now_ms(), LEASE_MS, BATCH)?)).await?;
    let n = rows.len();
    let mut sends = Vec::with_capacity(n);
    for row in rows {
        let state = state.clone();
        sends.push(tokio::spawn(async move { deliver(&state, row).await }));
    }
    for s in sends {
        if let Err(e) = s.await {
            tracing::error!(error = %e, "outbox delivery task failed");
        }
    }
    Ok(n)
}

async fn deliver(state: &AppState, row: OutboxRow) {
    let id = row.id;
    let attempts = row.attempts + 1;
    let public_url = state.config.public_url.clone();
    let composed = state.db.write(move |conn| compose(conn, &row, &public_url)).await;
    let outcome = match composed {
        Ok(None) => Ok(()), // what it was about has gone (e.g. deleted on request): nothing to send
        Ok(Some(email)) => state.mailer.send(&state.mail_from, email).await,
        Err(e) => Err(SendError::Transient(format!("could not prepare the email: {e}"))),
    };
    let now = now_ms();
    let result = match outcome {
        Ok(()) => state.db.write(move |conn| Ok(outbox::mark_sent(conn, id, now)?)).await,
        Err(SendError::Permanent(reason)) => {
            tracing::warn!(outbox_id = id, reason = %reason, "email refused permanently");
            state.db.write(move |conn| Ok(outbox::mark_failed(conn, id, attempts, &reason)?)).await
        }
        Err(SendError::Transient(reason)) if attempts >= MAX_ATTEMPTS => {
            state.db.write(move |conn| Ok(outbox::mark_failed(conn, id, attempts, &format!("gave up after {attempts} attempts: {reason}"))?)).await
        }
        Err(SendError::Transient(reason)) => {
            let at = now + backoff_ms(attempts);
            tracing::info!(outbox_id = id, attempts, reason = %reason, "email will be retried");
            state.db.write(move |conn| Ok(outbox::retry_later(conn, id, attempts, at, &reason)?)).await
        }
    };
    if let Err(e) = result {
        tracing::error!(outbox_id = id, error = %e, "could not record the outcome of a send");
    }
}

/// 5 s, 10 s, 20 s … capped at an hour, each ±25 % so retries after an outage do not arrive together.
pub fn backoff_ms(attempts: i64) -> i64 {
    let base = (5 * SECOND).saturating_mul(1i64 << attempts.clamp(1, 20).saturating_sub(1)).min(60 * MINUTE);
    let jitter = rand::rng().random_range(0.75..1.25);
    (base as f64 * jitter) as i64
}

fn supporter(name: &str, email: &str) -> Result<Mailbox, AppError> {
    let address = email.parse().map_err(|e| AppError::internal(anyhow::anyhow!("stored address does not parse: {e}")))?;
    Ok(Mailbox::new(Some(name.to_string()), address))
}

/// Writes the email for an outbox row, or `None` if its subject no longer exists.
fn compose(conn: &mut DbConn, row: &OutboxRow, public_url: &str) -> Result<Option<OutgoingEmail>, AppError> {
    match row.kind.as_str() {
        CONFIRM_EMAIL | ALREADY_SIGNED_EMAIL => {
            let Some(sig) = signatures::find(conn, row.subject_id)? else { return Ok(None) };
            let Some(campaign) = campaigns::find(conn, sig.campaign_id)? else { return Ok(None) };
            let mut ctx = tera::Context::new();
            ctx.insert("name", &sig.name);
            ctx.insert("campaign_title", &campaign.title);
            ctx.insert("campaign_url", &format!("{public_url}/campaigns/{}", campaign.slug));
            ctx.insert("privacy_url", &format!("{public_url}/privacy"));
            let template = if row.kind == CONFIRM_EMAIL {
                let token = tokens::issue(conn, tokens::CONFIRM_SIGNATURE, sig.id, now_ms(), CONFIRM_LIFETIME_MS)?;
                ctx.insert("confirm_url", &format!("{public_url}/confirm/{token}"));
                "emails/signature_confirm.txt"
            } else {
                "emails/signature_already_confirmed.txt"
            };
            let (subject, body) = render_email(template, &ctx).map_err(AppError::internal)?;
            Ok(Some(OutgoingEmail { to: supporter(&sig.name, &sig.email)?, subject, body, reply_to: None, from_name: None }))
        }
        other => Err(AppError::internal(anyhow::anyhow!("unknown outbox kind {other}"))),
    }
}
