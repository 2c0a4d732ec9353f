//! Confirming by email, for signatures and letters alike. Only a POST confirms, so mail
//! scanners that fetch links do nothing; a used link answers "confirmed" again, harmlessly.
use serde::Serialize;

use crate::clock::now_ms;
use crate::db::DbConn;
use crate::error::AppError;
use crate::letters::write::DELIVERY;
use crate::models::campaigns::{self, CampaignState};
use crate::models::tokens::{self, Token};
use crate::models::{letters, outbox, signatures};
use crate::state::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Confirmed {
    /// Always `confirmed`.
    pub status: &'static str,
    /// `signature` or `letter`.
    pub kind: &'static str,
    /// The campaign's slug.
    pub campaign: String,
    /// Whose mailbox this proved (for the browser's "confirmed a moment ago" cookie).
    #[serde(skip)]
    pub mailbox: String,
}

/// What a link is about, for the page that shows the button.
#[derive(Debug, Clone, Serialize)]
pub struct Pending {
    pub kind: &'static str,
    pub campaign_slug: String,
    pub campaign_title: String,
    /// For a letter: who it goes to.
    pub recipient: Option<String>,
}

pub fn expired() -> AppError {
    AppError::NotFound(
        "token_not_found",
        "This confirmation link has expired or is not valid. Links last 7 days; signing or writing again sends a fresh one.".into(),
    )
}

/// A token that may still be used: unknown and expired-before-use tokens are not found.
fn usable(conn: &mut DbConn, raw: &str, now: i64) -> Result<Token, AppError> {
    let token = tokens::find(conn, raw)?.ok_or_else(expired)?;
    if token.used_at.is_none() && token.expires_at < now {
        return Err(expired());
    }
    Ok(token)
}

pub async fn describe(state: &AppState, raw: String) -> Result<Pending, AppError> {
    state
        .db
        .read(move |conn| {
            let token = usable(conn, &raw, now_ms())?;
            let (kind, campaign_id, recipient) = match token.purpose.as_str() {
                tokens::CONFIRM_SIGNATURE => {
                    let sig = signatures::find(conn, token.subject_id)?.ok_or_else(expired)?;
                    ("signature", sig.campaign_id, None)
                }
                tokens::CONFIRM_LETTER => {
                    let letter = letters::find(conn, token.subject_id)?.ok_or_else(expired)?;
                    ("letter", letter.campaign_id, Some(letter.target_name))
                }
                _ => return Err(expired()),
            };
            let c = campaigns::find(conn, campaign_id)?.ok_or_else(expired)?;
            Ok(Pending { kind, campaign_slug: c.slug, campaign_title: c.title, recipient })
        })
        .await
}

pub async fn confirm(state: &AppState, raw: String) -> Result<Confirmed, AppError> {
    let confirmed = state
        .db
        .write(move |conn| {
            let now = now_ms();
            let token = usable(conn, &raw, now)?;
            let mut counted = None;
            let (kind, campaign_id, mailbox) = match token.purpose.as_str() {
                tokens::CONFIRM_SIGNATURE => {
                    let sig = signatures::find(conn, token.subject_id)?.ok_or_else(expired)?;
                    if sig.state == signatures::PENDING {
                        let campaign = campaigns::find(conn, sig.campaign_id)?.ok_or_else(expired)?;
                        if campaign.effective_state(now) != CampaignState::Open {
                            return Err(crate::petition::sign::closed());
                        }
                        if signatures::confirm(conn, sig.id, now)? {
                            counted = Some(sig.campaign_id);
                        }
                    }
                    ("signature", sig.campaign_id, sig.email_key)
                }
                tokens::CONFIRM_LETTER => {
                    let letter = letters::find(conn, token.subject_id)?.ok_or_else(expired)?;
                    // Confirmed once, queued once: a second click changes nothing.
                    if letters::confirm(conn, letter.id, now)? {
                        outbox::enqueue(conn, DELIVERY, letter.id, now)?;
                    }
                    ("letter", letter.campaign_id, letter.writer_email_key)
                }
                _ => return Err(expired()),
            };
            tokens::mark_used(conn, token.id, now)?;
            let campaign = campaigns::find(conn, campaign_id)?.ok_or_else(expired)?;
            Ok((Confirmed { status: "confirmed", kind, campaign: campaign.slug, mailbox }, counted))
        })
        .await?;
    let (confirmed, counted) = confirmed;
    if let Some(campaign_id) = counted {
        // Committed: the count shows it at once.
        state.counts.add(campaign_id, 1);
    }
    if confirmed.kind == "letter" {
        state.outbox_wake.notify_one();
    }
    Ok(confirmed)
}
