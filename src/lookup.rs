//! Postcode → constituency, through the database cache and postcodes.io. Postcodes rarely move,
//! so a cached answer is used for 30 days, and an older one still answers while postcodes.io
//! is down.
use crate::clock::{now_ms, DAY};
use crate::domain::UkPostcode;
use crate::error::AppError;
use crate::models::constituencies;
use crate::models::postcodes::{self as cache, CachedPostcode};
use crate::state::AppState;
use crate::workers::backfill;

const FRESH_MS: i64 = 30 * DAY;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    Found { ons_code: String, name: String },
    NotFound,
    Terminated,
}

pub fn unavailable() -> AppError {
    AppError::Unavailable("lookup_unavailable", "We can't look postcodes up right now. Please try again in a few minutes.".into())
}

pub async fn constituency_for(state: &AppState, postcode: &UkPostcode) -> Result<Place, AppError> {
    let key = postcode.as_str().to_string();
    let cached = {
        let key = key.clone();
        state.db.read(move |conn| Ok(cache::get(conn, &key)?)).await?
    };
    let fresh = cached.as_ref().is_some_and(|c| now_ms() - c.fetched_at < FRESH_MS);
    let row: CachedPostcode = match cached {
        Some(c) if fresh => c,
        stale => match state.postcodes.lookup(postcode).await {
            Ok(lookup) => state
                .db
                .write(move |conn| {
                    backfill::record(conn, &key, &lookup)?;
                    Ok(cache::get(conn, &key)?)
                })
                .await?
                .ok_or_else(|| AppError::internal(anyhow::anyhow!("postcode cache row vanished")))?,
            Err(e) => match stale {
                Some(c) => c,
                None => {
                    tracing::warn!(error = %e, "postcode lookup unavailable");
                    return Err(unavailable());
                }
            },
        },
    };
    match (row.status.as_str(), row.ons_code) {
        (cache::FOUND, Some(code)) => {
            let name = {
                let code = code.clone();
                state
                    .db
                    .read(move |conn| Ok(constituencies::names_and_mps(conn, std::slice::from_ref(&code))?.remove(&code).map(|(n, _)| n)))
                    .await?
            };
            Ok(Place::Found { name: name.unwrap_or_else(|| code.clone()), ons_code: code })
        }
        (cache::TERMINATED, _) => Ok(Place::Terminated),
        _ => Ok(Place::NotFound),
    }
}
