//! Keeping the least for the shortest time. Runs hourly, and at once with `rally privacy purge`.
use std::time::Duration;

use diesel::connection::SimpleConnection;

use crate::clock::{now_ms, DAY};
use crate::db::{Backend, Db};
use crate::error::AppError;
use crate::models::{signatures, tokens};

/// An unconfirmed signature is removed this long after it was made (the link's lifetime).
pub const UNCONFIRMED_KEPT_MS: i64 = 7 * DAY;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub unconfirmed_signatures: usize,
    pub expired_tokens: usize,
}

pub async fn purge(db: &Db) -> Result<Purged, AppError> {
    let now = now_ms();
    let purged = db
        .write(move |conn| {
            Ok(Purged {
                unconfirmed_signatures: signatures::delete_unconfirmed_before(conn, now - UNCONFIRMED_KEPT_MS)?,
                expired_tokens: tokens::delete_expired_before(conn, now)?,
            })
        })
        .await?;
    if db.backend == Backend::Sqlite {
        // secure_delete zeroes freed pages; checkpointing moves that into the main file and
        // truncates the WAL, so deleted rows do not linger in either.
        db.write(|conn| Ok(conn.batch_execute("PRAGMA wal_checkpoint(TRUNCATE)")?)).await.ok();
    }
    Ok(purged)
}

pub async fn run(db: Db) {
    loop {
        match purge(&db).await {
            Ok(p) if p != Purged::default() => tracing::info!(?p, "retention purge"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention purge failed"),
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
