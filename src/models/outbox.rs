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

#[derive(Queryable, QueryableByName, Selectable, Clone, Debug)]
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

/// Queues one email of `kind` for each subject, in one statement.
pub fn enqueue_many(conn: &mut DbConn, kind: &str, subject_ids: &[i64], now: i64) -> QueryResult<usize> {
    if subject_ids.is_empty() {
        return Ok(0);
    }
    let rows: Vec<_> = subject_ids
        .iter()
        .map(|id| (outbox::kind.eq(kind), outbox::subject_id.eq(*id), outbox::state.eq(PENDING), outbox::attempts.eq(0i64), outbox::run_at.eq(now), outbox::created_at.eq(now)))
        .collect();
    match conn {
        DbConn::Sqlite(c) => diesel::insert_into(outbox::table).values(&rows).execute(c),
        DbConn::Pg(c) => diesel::insert_into(outbox::table).values(&rows).execute(c),
    }
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

/// Claims up to `limit` due rows for `lease_ms` in one statement. On PostgreSQL the candidates
/// are locked with `FOR UPDATE SKIP LOCKED`, so senders on several instances each take different
/// rows without waiting on one another; on SQLite the single writer makes the statement atomic.
/// A sender that dies leaves a lease that simply runs out.
pub fn claim_due(conn: &mut DbConn, now: i64, lease_ms: i64, limit: i64) -> QueryResult<Vec<OutboxRow>> {
    use diesel::sql_types::BigInt;
    const DUE: &str = "SELECT id FROM outbox WHERE state = 'pending' AND run_at <= $2 \
                       AND (lease_until IS NULL OR lease_until < $2) ORDER BY run_at LIMIT $3";
    let sql = match conn {
        DbConn::Pg(_) => format!("UPDATE outbox SET lease_until = $1 WHERE id IN ({DUE} FOR UPDATE SKIP LOCKED) RETURNING *"),
        // SQLite numbers its parameters the same way with `?NNN`.
        DbConn::Sqlite(_) => format!("UPDATE outbox SET lease_until = $1 WHERE id IN ({DUE}) RETURNING *").replace('$', "?"),
    };
    diesel::sql_query(sql).bind::<BigInt, _>(now + lease_ms).bind::<BigInt, _>(now).bind::<BigInt, _>(limit).load(conn)
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

// ---------------------------------------------------------------------------------------------
// For the staff outbox page
// ---------------------------------------------------------------------------------------------

/// Stopped by staff. The sender only claims `pending` rows, so a cancelled row is never sent
/// unless someone retries it.
pub const CANCELLED: &str = "cancelled";
/// How the sender starts `last_error` when it stops retrying after transient failures
/// (see `workers::outbox`); any other failed row was refused permanently.
pub const GAVE_UP_PREFIX: &str = "gave up";

/// The states staff see. `pending` splits into queued and sending (a live lease), and `failed`
/// into refused (a permanent refusal) and given up (too many transient failures).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum View {
    All,
    Queued,
    Sending,
    Sent,
    Refused,
    GivenUp,
    Cancelled,
}

impl View {
    pub const EVERY: [View; 7] = [View::All, View::Queued, View::Sending, View::Sent, View::Refused, View::GivenUp, View::Cancelled];

    /// The name in links (`?state=…`).
    pub fn key(self) -> &'static str {
        match self {
            View::All => "all",
            View::Queued => "queued",
            View::Sending => "sending",
            View::Sent => "sent",
            View::Refused => "failed",
            View::GivenUp => "given_up",
            View::Cancelled => "cancelled",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            View::All => "All",
            View::Queued => "Queued",
            View::Sending => "Sending",
            View::Sent => "Sent",
            View::Refused => "Failed (refused)",
            View::GivenUp => "Given up",
            View::Cancelled => "Cancelled",
        }
    }

    pub fn parse(key: &str) -> Option<View> {
        View::EVERY.into_iter().find(|v| v.key() == key)
    }

    /// Which view a row is in at `now`.
    pub fn of(row: &OutboxRow, now: i64) -> View {
        match row.state.as_str() {
            PENDING if row.lease_until.is_some_and(|l| l >= now) => View::Sending,
            PENDING => View::Queued,
            SENT => View::Sent,
            FAILED if row.last_error.as_deref().is_some_and(|e| e.starts_with(GAVE_UP_PREFIX)) => View::GivenUp,
            FAILED => View::Refused,
            CANCELLED => View::Cancelled,
            // A state this build does not know (say, from a newer version): list it under All only.
            _ => View::All,
        }
    }

    pub fn can_retry(self) -> bool {
        matches!(self, View::Refused | View::GivenUp | View::Cancelled)
    }

    pub fn can_cancel(self) -> bool {
        self == View::Queued
    }

    fn query(self, now: i64) -> outbox::BoxedQuery<'static, crate::db::MultiBackend> {
        let q = outbox::table.into_boxed();
        let gave_up = format!("{GAVE_UP_PREFIX}%");
        match self {
            View::All => q,
            View::Queued => q.filter(outbox::state.eq(PENDING)).filter(outbox::lease_until.is_null().or(outbox::lease_until.lt(now))),
            View::Sending => q.filter(outbox::state.eq(PENDING)).filter(outbox::lease_until.ge(now)),
            View::Sent => q.filter(outbox::state.eq(SENT)),
            View::Refused => q.filter(outbox::state.eq(FAILED)).filter(outbox::last_error.is_null().or(outbox::last_error.not_like(gave_up))),
            View::GivenUp => q.filter(outbox::state.eq(FAILED)).filter(outbox::last_error.like(gave_up)),
            View::Cancelled => q.filter(outbox::state.eq(CANCELLED)),
        }
    }
}

/// How many rows each view holds at `now`, in `View::EVERY` order.
pub fn count_by_view(conn: &mut DbConn, now: i64) -> QueryResult<Vec<(View, i64)>> {
    View::EVERY.into_iter().map(|v| Ok((v, v.query(now).count().get_result(conn)?))).collect()
}

/// One page of a view, newest first.
pub fn list(conn: &mut DbConn, view: View, now: i64, limit: i64, offset: i64) -> QueryResult<Vec<OutboxRow>> {
    view.query(now).order(outbox::id.desc()).limit(limit).offset(offset).select(OutboxRow::as_select()).load(conn)
}

pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<OutboxRow>> {
    outbox::table.find(id).select(OutboxRow::as_select()).first(conn).optional()
}

/// Puts a failed or cancelled row back in the queue as if new: due now, no attempts, no lease.
/// The previous error stays until the next outcome replaces it. Returns 0 if the row was in
/// another state (someone else got there first).
pub fn requeue(conn: &mut DbConn, id: i64, now: i64) -> QueryResult<usize> {
    diesel::update(outbox::table.find(id).filter(outbox::state.eq_any([FAILED, CANCELLED])))
        .set((outbox::state.eq(PENDING), outbox::run_at.eq(now), outbox::attempts.eq(0i64), outbox::lease_until.eq(None::<i64>), outbox::sent_at.eq(None::<i64>)))
        .execute(conn)
}

/// Cancels a queued row. A row under a live lease is being sent right now and is left alone
/// (the sender would record its outcome over the cancellation). Returns 0 when nothing changed.
pub fn cancel(conn: &mut DbConn, id: i64, now: i64) -> QueryResult<usize> {
    diesel::update(outbox::table.find(id).filter(outbox::state.eq(PENDING)).filter(outbox::lease_until.is_null().or(outbox::lease_until.lt(now))))
        .set(outbox::state.eq(CANCELLED))
        .execute(conn)
}
