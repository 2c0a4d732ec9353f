//! The outbox sender: claims due emails, writes each one (making any link token at that moment),
//! delivers it, and records the result. Failures are retried with exponential backoff and jitter;
//! a permanent refusal is recorded as failed with the reason.
use std::time::Duration;

use rand::Rng;

use crate::clock::{now_ms, DAY, MINUTE, SECOND};
use crate::db::DbConn;
use crate::error::AppError;
use crate::models::outbox::{self, OutboxRow};
use crate::letters::emails as letter_emails;
use crate::letters::write::{CONFIRM_EMAIL as LETTER_CONFIRM_EMAIL, COPY_EMAIL, DELIVERY, FAILED_EMAIL};
use crate::models::letters;
use crate::petition;
use crate::petition::sign::{ALREADY_SIGNED_EMAIL, CONFIRM_EMAIL};
use crate::services::mailer::{Draft, OutgoingEmail, SendError};
use crate::state::AppState;

const BATCH: i64 = 32;
/// People's writes per commit above which the sender eases off.
const RUSH: usize = 16;
const MAX_ATTEMPTS: i64 = 25;
pub const CONFIRM_LIFETIME_MS: i64 = 7 * DAY;

/// Sends until `stop` turns true. A batch in hand is always finished and recorded first, so a
/// shutdown never leaves an email sent but not marked (which would send it again after restart).
pub async fn run(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    while !*stop.borrow() {
        match send_due(&state).await {
            Ok(n) if n > 0 => {
                // During a rush of signers the emails wait a little, so the people signing
                // do not: the batch just sent was written between their commits.
                if state.db.foreground_load() >= RUSH {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox sender could not read the queue"),
        }
        tokio::select! {
            _ = state.outbox_wake.notified() => {}
            _ = stop.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// Sends one batch of due emails; returns how many were attempted.
pub async fn send_due(state: &AppState) -> Result<usize, AppError> {
    // A sender that dies holding rows frees them when the lease (RALLY_OUTBOX_LEASE) runs out.
    let lease = state.config.outbox_lease.as_millis() as i64;
    let rows = state.db.write_background(move |conn| Ok(outbox::claim_due(conn, now_ms(), lease, BATCH)?)).await?;
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

/// What to do with a claimed row.
enum Step {
    Send(OutgoingEmail),
    /// Rendered after the transaction that prepared it.
    Render(Draft),
    /// Its subject has gone (e.g. deleted on request) or it was already done: nothing to send.
    Skip,
    /// Not yet: the recipient's inbox has had its share this minute.
    Defer(i64),
}

async fn deliver(state: &AppState, row: OutboxRow) {
    let id = row.id;
    let attempts = row.attempts + 1;
    let public_url = state.config.public_url.clone();
    let pace = state.config.delivery_pace_per_minute;
    let kind = row.kind.clone();
    let subject_id = row.subject_id;
    let step = state.db.write_background(move |conn| compose(conn, &row, &public_url, pace)).await;
    let outcome = match step {
        Ok(Step::Skip) => Ok(()),
        Ok(Step::Defer(at)) => {
            if let Err(e) = state.db.write_background(move |conn| Ok(outbox::defer(conn, id, at)?)).await {
                tracing::error!(outbox_id = id, error = %e, "could not defer a paced delivery");
            }
            return;
        }
        Ok(Step::Send(email)) => state.mailer.send(&state.mail_from, email).await,
        Ok(Step::Render(draft)) => match draft.render() {
            Ok(email) => state.mailer.send(&state.mail_from, email).await,
            Err(e) => Err(SendError::Transient(format!("could not write the email: {e}"))),
        },
        Err(e) => Err(SendError::Transient(format!("could not prepare the email: {e}"))),
    };
    let now = now_ms();
    let result = match outcome {
        Ok(()) => {
            let notify = kind == DELIVERY;
            let r = state
                .db
                .write_background(move |conn| {
                    outbox::mark_sent(conn, id, now)?;
                    if kind == DELIVERY {
                        // The writer gets a copy of exactly what went.
                        if letters::mark_sent(conn, subject_id, now)? == 1 {
                            outbox::enqueue(conn, COPY_EMAIL, subject_id, now)?;
                        }
                    }
                    Ok(())
                })
                .await;
            if notify {
                state.outbox_wake.notify_one();
            }
            r
        }
        Err(SendError::Permanent(reason)) => {
            tracing::warn!(outbox_id = id, reason = %reason, "email refused permanently");
            state
                .db
                .write_background(move |conn| {
                    if kind == DELIVERY {
                        // The writer is told, with a copy of their letter, so it is not lost.
                        letters::set_state(conn, subject_id, letters::FAILED)?;
                        outbox::enqueue(conn, FAILED_EMAIL, subject_id, now)?;
                    }
                    outbox::mark_failed(conn, id, attempts, &reason)?;
                    Ok(())
                })
                .await
        }
        Err(SendError::Transient(reason)) => {
            let give_up = attempts >= MAX_ATTEMPTS;
            let at = now + backoff_ms(attempts);
            if !give_up {
                tracing::info!(outbox_id = id, attempts, reason = %reason, "email will be retried");
            }
            state
                .db
                .write_background(move |conn| {
                    if kind == DELIVERY {
                        letters::set_state(conn, subject_id, if give_up { letters::FAILED } else { letters::CONFIRMED })?;
                    }
                    if give_up {
                        outbox::mark_failed(conn, id, attempts, &format!("gave up after {attempts} attempts: {reason}"))?;
                    } else {
                        outbox::retry_later(conn, id, attempts, at, &reason)?;
                    }
                    Ok(())
                })
                .await
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

/// Prepares the email for an outbox row (making any link token now).
fn compose(conn: &mut DbConn, row: &OutboxRow, public_url: &str, pace: i64) -> Result<Step, AppError> {
    let now = now_ms();
    let step = |draft: Option<Draft>| draft.map(Step::Render).unwrap_or(Step::Skip);
    match row.kind.as_str() {
        CONFIRM_EMAIL | ALREADY_SIGNED_EMAIL => Ok(step(petition::emails::compose(conn, &row.kind, row.subject_id, public_url, now)?)),
        LETTER_CONFIRM_EMAIL => Ok(step(letter_emails::confirmation(conn, row.subject_id, public_url, now)?)),
        COPY_EMAIL => Ok(step(letter_emails::copy(conn, row.subject_id, public_url, now)?)),
        crate::workers::milestones::REACHED_EMAIL => Ok(step(petition::emails::milestone(conn, row.subject_id, public_url)?)),
        FAILED_EMAIL => Ok(step(letter_emails::undeliverable(conn, row.subject_id, public_url, now)?)),
        crate::workers::reply_survey::ASK_EMAIL | crate::workers::reply_survey::REMINDER_EMAIL => {
            Ok(step(crate::workers::reply_survey::compose(conn, &row.kind, row.subject_id, public_url, now)?))
        }
        crate::workers::mp_digest::DIGEST_EMAIL => Ok(step(crate::workers::mp_digest::compose(conn, row.subject_id, public_url, now)?)),
        crate::workers::updates::UPDATE_EMAIL => Ok(step(crate::workers::updates::compose(conn, row.subject_id, public_url, now)?)),
        DELIVERY => {
            let Some(letter) = letters::find(conn, row.subject_id)? else { return Ok(Step::Skip) };
            if letter.state == letters::SENT || letter.state == letters::PENDING {
                return Ok(Step::Skip);
            }
            // Pacing: a surge of letters reaches an MP's office at `pace` a minute at most.
            if letters::recent_to_inbox(conn, &letter.target_email, now - MINUTE, letter.id)? >= pace {
                let gap = MINUTE / pace.max(1);
                return Ok(Step::Defer(now + gap + rand::rng().random_range(0..=gap.max(1))));
            }
            letters::set_state(conn, letter.id, letters::SENDING)?;
            Ok(Step::Send(letter_emails::delivery(&letter)?))
        }
        other => Err(AppError::internal(anyhow::anyhow!("unknown outbox kind {other}"))),
    }
}
