//! Confirming by email. Only a POST confirms, so mail scanners that fetch links do nothing.
use serde::Serialize;

use crate::clock::now_ms;
use crate::error::AppError;
use crate::models::campaigns::{self, CampaignState};
use crate::models::{signatures, tokens};
use crate::state::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Confirmed {
    pub status: &'static str,
    pub kind: &'static str,
    pub campaign: String,
}

pub fn expired() -> AppError {
    AppError::NotFound(
        "token_not_found",
        "This confirmation link has expired or is not valid. Links last 7 days; signing again sends a fresh one.".into(),
    )
}

/// What a confirmation link is for, without using it: shown on the GET page.
pub async fn describe(state: &AppState, raw: String) -> Result<(String, String), AppError> {
    state
        .db
        .read(move |conn| {
            let now = now_ms();
            let token = tokens::find(conn, &raw)?.ok_or_else(expired)?;
            if token.used_at.is_none() && token.expires_at < now {
                return Err(expired());
            }
            let sig = signatures::find(conn, token.subject_id)?.ok_or_else(expired)?;
            let campaign = campaigns::find(conn, sig.campaign_id)?.ok_or_else(expired)?;
            Ok((campaign.slug, campaign.title))
        })
        .await
}

/// Uses a token. Confirming twice is harmless: a used token answers "confirmed" again.
pub async fn confirm(state: &AppState, raw: String) -> Result<Confirmed, AppError> {
    state
        .db
        .write(move |conn| {
            let now = now_ms();
            let token = tokens::find(conn, &raw)?.ok_or_else(expired)?;
            if token.purpose != tokens::CONFIRM_SIGNATURE {
                return Err(expired());
            }
            if token.used_at.is_none() && token.expires_at < now {
                return Err(expired());
            }
            let sig = signatures::find(conn, token.subject_id)?.ok_or_else(expired)?;
            let campaign = campaigns::find(conn, sig.campaign_id)?.ok_or_else(expired)?;
            if sig.state == signatures::PENDING {
                if campaign.effective_state(now) != CampaignState::Open {
                    return Err(crate::petition::sign::closed());
                }
                signatures::confirm(conn, sig.id, now)?;
            }
            tokens::mark_used(conn, token.id, now)?;
            Ok(Confirmed { status: "confirmed", kind: "signature", campaign: campaign.slug })
        })
        .await
}
