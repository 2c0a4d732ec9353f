//! Emails waiting to be sent. A row is written in the same transaction as the thing it is about,
//! so a signature that was acknowledged always gets its email, even across a crash.
//! Rows hold what to send, not the rendered message: links with tokens are made at send time,
//! so no raw token ever rests in the database.
use diesel::prelude::*;

use crate::db::schema::outbox;
use crate::db::DbConn;

pub const PENDING: &str = "pending";
pub const SENT: &str = "sent";
pub const FAILED: &str = "failed";

#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: i64,
    pub kind: String,
    pub subject_id: i64,
    pub state: String,
    pub attempts: i64,
    pub run_at: i64,
    pub lease_until: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

pub fn enqueue(conn: &mut DbConn, kind: &str, subject_id: i64, now: i64) -> QueryResult<usize> {
    diesel::insert_into(outbox::table)
        .values((
            outbox::kind.eq(kind),
            outbox::subject_id.eq(subject_id),
            outbox::state.eq(PENDING),
            outbox::attempts.eq(0i64),
            outbox::run_at.eq(now),
            outbox::created_at.eq(now),
        ))
        .execute(conn)
}

/// How many emails of these kinds were queued about a subject since `since` (to cap repeats).
pub fn count_since(conn: &mut DbConn, kinds: &[&str], subject_id: i64, since: i64) -> QueryResult<i64> {
    outbox::table
        .filter(outbox::kind.eq_any(kinds))
        .filter(outbox::subject_id.eq(subject_id))
        .filter(outbox::created_at.ge(since))
        .count()
        .get_result(conn)
}

/// Claims up to `limit` due rows for `lease_ms`. Each claim is a conditional update, so two
/// senders (threads or instances) never both win the same row; a sender that dies leaves a
/// lease that simply runs out.
pub fn claim_due(conn: &mut DbConn, now: i64, lease_ms: i64, limit: i64) -> QueryResult<Vec<OutboxRow>> {
    let free = outbox::lease_until.is_null().or(outbox::lease_until.lt(now));
    let candidates: Vec<i64> = outbox::table
        .filter(outbox::state.eq(PENDING))
        .filter(outbox::run_at.le(now))
        .filter(free)
        .order(outbox::run_at.asc())
        .limit(limit)
        .select(outbox::id)
        .load(conn)?;
    let mut claimed = Vec::with_capacity(candidates.len());
    for id in candidates {
        let won = diesel::update(
            outbox::table
                .find(id)
                .filter(outbox::state.eq(PENDING))
                .filter(outbox::lease_until.is_null().or(outbox::lease_until.lt(now))),
        )
        .set(outbox::lease_until.eq(now + lease_ms))
        .execute(conn)?;
        if won == 1 {
            claimed.push(outbox::table.find(id).select(OutboxRow::as_select()).first(conn)?);
        }
    }
    Ok(claimed)
}

pub fn mark_sent(conn: &mut DbConn, id: i64, now: i64) -> QueryResult<usize> {
    diesel::update(outbox::table.find(id))
        .set((outbox::state.eq(SENT), outbox::sent_at.eq(now), outbox::lease_until.eq(None::<i64>), outbox::last_error.eq(None::<String>)))
        .execute(conn)
}

pub fn retry_later(conn: &mut DbConn, id: i64, attempts: i64, run_at: i64, error: &str) -> QueryResult<usize> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::attempts.eq(attempts),
            outbox::run_at.eq(run_at),
            outbox::lease_until.eq(None::<i64>),
            outbox::last_error.eq(error),
        ))
        .execute(conn)
}

pub fn mark_failed(conn: &mut DbConn, id: i64, attempts: i64, error: &str) -> QueryResult<usize> {
    diesel::update(outbox::table.find(id))
        .set((outbox::state.eq(FAILED), outbox::attempts.eq(attempts), outbox::lease_until.eq(None::<i64>), outbox::last_error.eq(error)))
        .execute(conn)
}

/// Pending rows and the age of the oldest, for health and metrics.
pub fn depth(conn: &mut DbConn) -> QueryResult<(i64, Option<i64>)> {
    let n: i64 = outbox::table.filter(outbox::state.eq(PENDING)).count().get_result(conn)?;
    let oldest: Option<i64> = outbox::table.filter(outbox::state.eq(PENDING)).select(diesel::dsl::min(outbox::created_at)).first(conn)?;
    Ok((n, oldest))
}

/// Puts a row back for later without counting an attempt (pacing, not failure).
pub fn defer(conn: &mut DbConn, id: i64, run_at: i64) -> QueryResult<usize> {
    diesel::update(outbox::table.find(id)).set((outbox::run_at.eq(run_at), outbox::lease_until.eq(None::<i64>))).execute(conn)
}
