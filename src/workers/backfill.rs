//! Fills in the constituency of signatures that arrived while their postcode was unknown.
//! Signing never waits for postcodes.io; this does the lookups afterwards, and backs off
//! while postcodes.io is unreachable.
use std::time::Duration;

use crate::clock::now_ms;
use crate::domain::UkPostcode;
use crate::error::AppError;
use crate::models::{constituencies, postcodes, signatures};
use crate::services::postcodes::PostcodeLookup;
use crate::state::AppState;

/// Signatures arriving together wake the backfill once: it waits this long after a wake so a
/// rush of signers costs one pass, not one each.
const GATHER: Duration = Duration::from_secs(1);

pub async fn run(state: AppState) {
    let mut pause = Duration::from_secs(5);
    loop {
        match place_batch(&state).await {
            Ok(_) => pause = Duration::from_secs(5),
            Err(e) => {
                tracing::warn!(error = %e, "constituency backfill paused");
                pause = (pause * 2).min(Duration::from_secs(300));
                // While postcodes.io is failing, new signatures do not cut the pause short.
                tokio::time::sleep(pause).await;
                continue;
            }
        }
        tokio::select! {
            _ = state.backfill_wake.notified() => tokio::time::sleep(GATHER).await,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// Resolves one batch of postcodes; returns how many signatures' postcodes were placed.
pub async fn place_batch(state: &AppState) -> Result<usize, AppError> {
    let pending = state.db.read(|conn| Ok(signatures::unplaced_postcodes(conn, 100)?)).await?;
    let mut placed = 0;
    for raw in pending {
        let cached = {
            let raw = raw.clone();
            state.db.read(move |conn| Ok(postcodes::get(conn, &raw)?)).await?
        };
        if let Some(code) = cached.and_then(|c| c.ons_code) {
            let raw = raw.clone();
            state.db.write_background(move |conn| Ok(signatures::place(conn, &raw, &code)?)).await?;
            placed += 1;
            continue;
        }
        let Ok(postcode) = UkPostcode::parse(&raw) else { continue };
        let lookup = state.postcodes.lookup(&postcode).await.map_err(AppError::internal)?;
        state.db.write_background(move |conn| Ok(record(conn, &raw, &lookup)?)).await?;
        placed += 1;
    }
    Ok(placed)
}

/// Caches a lookup and places every waiting signature with that postcode.
pub fn record(conn: &mut crate::db::DbConn, postcode: &str, lookup: &PostcodeLookup) -> diesel::QueryResult<()> {
    let now = now_ms();
    match lookup {
        PostcodeLookup::Found { constituency_code, constituency_name } => {
            constituencies::ensure(conn, constituency_code, constituency_name)?;
            postcodes::store(conn, postcode, postcodes::FOUND, Some(constituency_code), now)?;
            signatures::place(conn, postcode, constituency_code)?;
        }
        PostcodeLookup::Terminated => postcodes::store(conn, postcode, postcodes::TERMINATED, None, now)?,
        PostcodeLookup::NotFound | PostcodeLookup::Invalid => postcodes::store(conn, postcode, postcodes::NOT_FOUND, None, now)?,
    }
    Ok(())
}
