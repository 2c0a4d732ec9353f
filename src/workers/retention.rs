//! Keeping the least for the shortest time. Runs hourly, and at once with `rally privacy purge`:
//! - unconfirmed signatures and letters go 7 days after they were made (their links are dead);
//! - a delivered (or undeliverable) letter loses its text, personal edit and the writer's
//!   address `RALLY_LETTER_RETENTION` after delivery;
//! - signatures are anonymised `RALLY_SIGNATURE_RETENTION` after their campaign closes, keeping
//!   the constituency so the counts stand;
//! - expired links are deleted.
//! On SQLite, `secure_delete` zeroes what is removed and a WAL checkpoint truncates the log, so
//! removed text is gone from the database files, not just unreachable.
use std::time::Duration;

use diesel::prelude::*;

use crate::clock::{now_ms, DAY};
use crate::db::schema::{campaigns, letters, outbox, signatures, tokens};
use crate::db::{Backend, Db, DbConn};
use crate::error::AppError;
use crate::models::{letters as letter_model, signatures as sig_model, tokens as token_model};

/// An unconfirmed signature or letter is removed this long after it was made (a link's lifetime).
pub const UNCONFIRMED_KEPT_MS: i64 = 7 * DAY;
pub const REMOVED: &str = "[removed after the retention period]";

#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub letters: Duration,
    pub signatures: Duration,
}

impl Retention {
    pub fn from_config(c: &crate::config::Config) -> Self {
        Retention { letters: c.letter_retention, signatures: c.signature_retention }
    }
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub unconfirmed_signatures: usize,
    pub unconfirmed_letters: usize,
    pub letters_redacted: usize,
    pub signatures_anonymised: usize,
    pub expired_tokens: usize,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn delete_unconfirmed_letters(conn: &mut DbConn, cutoff: i64) -> QueryResult<usize> {
    let stale = letters::table.filter(letters::state.eq(letter_model::PENDING)).filter(letters::created_at.lt(cutoff)).select(letters::id);
    diesel::delete(tokens::table.filter(tokens::purpose.eq_any([token_model::CONFIRM_LETTER, crate::privacy::forget::FORGET_LETTER])).filter(tokens::subject_id.eq_any(stale)))
        .execute(conn)?;
    diesel::delete(outbox::table.filter(outbox::kind.eq(crate::letters::write::CONFIRM_EMAIL)).filter(outbox::subject_id.eq_any(stale))).execute(conn)?;
    diesel::delete(letters::table.filter(letters::state.eq(letter_model::PENDING)).filter(letters::created_at.lt(cutoff))).execute(conn)
}

/// Blanks the text and the address of letters delivered (or failed) before `cutoff`.
fn redact_letters(conn: &mut DbConn, cutoff: i64) -> QueryResult<usize> {
    let done = letters::state.eq(letter_model::SENT).and(letters::sent_at.lt(cutoff)).or(letters::state.eq(letter_model::FAILED).and(letters::created_at.lt(cutoff)));
    diesel::update(letters::table.filter(done).filter(letters::town.ne("")))
        .set((
            letters::personal_edit.eq(None::<String>),
            letters::body.eq(REMOVED),
            letters::address_line1.eq(""),
            letters::address_line2.eq(None::<String>),
            letters::town.eq(""),
        ))
        .execute(conn)
}

/// Anonymises the signatures of campaigns that closed before `cutoff`.
fn anonymise_signatures(conn: &mut DbConn, cutoff: i64, now: i64) -> QueryResult<usize> {
    let closed: Vec<(i64, Option<i64>, Option<i64>)> = campaigns::table.select((campaigns::id, campaigns::closed_at, campaigns::closes_at)).load(conn)?;
    let due: Vec<i64> = closed
        .into_iter()
        .filter_map(|(id, closed_at, closes_at)| {
            let ended = closed_at.or(closes_at.filter(|c| *c <= now))?;
            (ended < cutoff).then_some(id)
        })
        .collect();
    let mut n = 0;
    for campaign_id in due {
        let ids: Vec<i64> = signatures::table
            .filter(signatures::campaign_id.eq(campaign_id))
            .filter(signatures::email.ne(""))
            .select(signatures::id)
            .load(conn)?;
        for id in ids {
            // The mailbox key must stay unique per campaign, so each gets its own placeholder.
            n += diesel::update(signatures::table.find(id))
                .set((
                    signatures::name.eq(""),
                    signatures::email.eq(""),
                    signatures::email_key.eq(format!("anonymised-{id}")),
                    signatures::postcode.eq(""),
                    signatures::updates_opt_in.eq(false),
                    signatures::show_name.eq(false),
                    signatures::invalidated_reason.eq(None::<String>),
                ))
                .execute(conn)?;
        }
    }
    Ok(n)
}

pub async fn purge(db: &Db, retention: Retention) -> Result<Purged, AppError> {
    let now = now_ms();
    let purged = db
        .write(move |conn| {
            Ok(Purged {
                unconfirmed_signatures: sig_model::delete_unconfirmed_before(conn, now - UNCONFIRMED_KEPT_MS)?,
                unconfirmed_letters: delete_unconfirmed_letters(conn, now - UNCONFIRMED_KEPT_MS)?,
                letters_redacted: redact_letters(conn, now.saturating_sub(ms(retention.letters)))?,
                signatures_anonymised: anonymise_signatures(conn, now.saturating_sub(ms(retention.signatures)), now)?,
                expired_tokens: token_model::delete_expired_before(conn, now)?,
            })
        })
        .await?;
    if db.backend == Backend::Sqlite && purged != Purged::default() {
        checkpoint(db).await;
    }
    Ok(purged)
}

#[derive(diesel::QueryableByName)]
struct CheckpointResult {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    busy: i32,
}

/// Moves everything from SQLite's WAL into the main file and truncates the WAL. A reader in the
/// middle of a query can hold the checkpoint back, so it is retried for a few seconds.
async fn checkpoint(db: &Db) {
    for _ in 0..50 {
        let busy = db
            .write(|conn| match conn {
                DbConn::Sqlite(c) => Ok(diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)").get_result::<CheckpointResult>(c)?.busy),
                DbConn::Pg(_) => Ok(0),
            })
            .await;
        match busy {
            Ok(0) => return,
            Ok(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => {
                tracing::warn!(error = %e, "WAL checkpoint failed");
                return;
            }
        }
    }
    tracing::warn!("WAL checkpoint still busy after retries; it will be retried at the next purge");
}

pub async fn run(db: Db, retention: Retention) {
    loop {
        match purge(&db, retention).await {
            Ok(p) if p != Purged::default() => tracing::info!(?p, "retention purge"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention purge failed"),
        }
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
