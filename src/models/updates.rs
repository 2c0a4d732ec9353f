//! Updates staff write to a campaign's signers, and who each was queued for.
//! An update is a `draft` until staff send it; then `sending` while the sender queues it for
//! signers in batches (`last_signature_id` marks how far it has got, so a restart carries on);
//! then `sent` once every signer who opted in has a place in the outbox.
use diesel::prelude::*;

use crate::db::schema::{outbox, signatures, update_deliveries, updates};
use crate::db::DbConn;
use crate::models::signatures::CONFIRMED;

pub const DRAFT: &str = "draft";
pub const SENDING: &str = "sending";
pub const SENT: &str = "sent";

#[derive(Queryable, Selectable, Clone, Debug, serde::Serialize)]
#[diesel(table_name = updates)]
pub struct Update {
    pub id: i64,
    pub campaign_id: i64,
    pub subject: String,
    pub body_md: String,
    pub state: String,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub recipients: i64,
    pub queued: i64,
    pub last_signature_id: i64,
    /// Shown on the campaign page once sent.
    pub public: bool,
}

pub fn create(conn: &mut DbConn, campaign_id: i64, subject: &str, body_md: &str, public: bool, created_by: &str, now: i64) -> QueryResult<i64> {
    diesel::insert_into(updates::table)
        .values((
            updates::campaign_id.eq(campaign_id),
            updates::subject.eq(subject),
            updates::body_md.eq(body_md),
            updates::public.eq(public),
            updates::state.eq(DRAFT),
            updates::created_by.eq(created_by),
            updates::created_at.eq(now),
            updates::updated_at.eq(now),
        ))
        .returning(updates::id)
        .get_result(conn)
}

/// Changes a draft; returns 0 once it has been sent (sent text is never changed).
pub fn edit_draft(conn: &mut DbConn, id: i64, subject: &str, body_md: &str, public: bool, now: i64) -> QueryResult<usize> {
    diesel::update(updates::table.find(id).filter(updates::state.eq(DRAFT)))
        .set((updates::subject.eq(subject), updates::body_md.eq(body_md), updates::public.eq(public), updates::updated_at.eq(now)))
        .execute(conn)
}

pub fn find(conn: &mut DbConn, campaign_id: i64, id: i64) -> QueryResult<Option<Update>> {
    updates::table.find(id).filter(updates::campaign_id.eq(campaign_id)).select(Update::as_select()).first(conn).optional()
}

pub fn for_campaign(conn: &mut DbConn, campaign_id: i64) -> QueryResult<Vec<Update>> {
    updates::table.filter(updates::campaign_id.eq(campaign_id)).order(updates::id.desc()).select(Update::as_select()).load(conn)
}

/// Sent updates staff chose to show on the campaign page, newest first.
pub fn published(conn: &mut DbConn, campaign_id: i64, limit: i64) -> QueryResult<Vec<Update>> {
    updates::table
        .filter(updates::campaign_id.eq(campaign_id))
        .filter(updates::public.eq(true))
        .filter(updates::state.ne(DRAFT))
        .order(updates::started_at.desc())
        .limit(limit)
        .select(Update::as_select())
        .load(conn)
}

pub fn sending(conn: &mut DbConn) -> QueryResult<Vec<Update>> {
    updates::table.filter(updates::state.eq(SENDING)).order(updates::id.asc()).select(Update::as_select()).load(conn)
}

fn eligible(campaign_id: i64) -> signatures::BoxedQuery<'static, crate::db::MultiBackend> {
    signatures::table
        .filter(signatures::campaign_id.eq(campaign_id))
        .filter(signatures::state.eq(CONFIRMED))
        .filter(signatures::updates_opt_in.eq(true))
        .into_boxed()
}

/// Confirmed signers of a campaign who asked for updates (now).
pub fn eligible_count(conn: &mut DbConn, campaign_id: i64) -> QueryResult<i64> {
    eligible(campaign_id).count().get_result(conn)
}

/// Draft → sending, noting how many signers it is for at this moment. Returns false when it was
/// not a draft (sent already, perhaps from another window).
pub fn start(conn: &mut DbConn, id: i64, campaign_id: i64, now: i64) -> QueryResult<bool> {
    let recipients = eligible_count(conn, campaign_id)?;
    let n = diesel::update(updates::table.find(id).filter(updates::state.eq(DRAFT)))
        .set((updates::state.eq(SENDING), updates::started_at.eq(now), updates::recipients.eq(recipients), updates::updated_at.eq(now)))
        .execute(conn)?;
    Ok(n == 1)
}

/// Queues the update for up to `limit` more signers, with one outbox row each, and marks it
/// sent when no signer is left. Signers are taken in id order past `last_signature_id`; once
/// that runs out, a sweep finds anyone behind it who has no delivery yet (a signer who
/// confirmed, or opted in again, after the sender had passed them). The update's row is
/// locked first, so two instances queue its batches one after the other, never the same one.
/// Returns how many were queued.
pub fn queue_batch(conn: &mut DbConn, update: &Update, kind: &str, limit: i64, now: i64) -> QueryResult<i64> {
    let locked = diesel::update(updates::table.find(update.id).filter(updates::state.eq(SENDING))).set(updates::updated_at.eq(now)).execute(conn)?;
    if locked == 0 {
        return Ok(0);
    }
    // Re-read under the lock: another instance may have moved it on.
    let Some(update) = find_any(conn, update.id)? else { return Ok(0) };
    let mut ids: Vec<i64> =
        eligible(update.campaign_id).filter(signatures::id.gt(update.last_signature_id)).order(signatures::id.asc()).limit(limit).select(signatures::id).load(conn)?;
    if ids.is_empty() {
        let has_it = update_deliveries::table.filter(update_deliveries::update_id.eq(update.id)).filter(update_deliveries::signature_id.eq(signatures::id));
        ids = eligible(update.campaign_id)
            .filter(signatures::id.le(update.last_signature_id))
            .filter(diesel::dsl::not(diesel::dsl::exists(has_it)))
            .order(signatures::id.asc())
            .limit(limit)
            .select(signatures::id)
            .load(conn)?;
    }
    if ids.is_empty() {
        diesel::update(updates::table.find(update.id))
            .set((updates::state.eq(SENT), updates::finished_at.eq(now), updates::updated_at.eq(now)))
            .execute(conn)?;
        return Ok(0);
    }
    let last = ids.iter().copied().max().unwrap_or(update.last_signature_id).max(update.last_signature_id);
    diesel::update(updates::table.find(update.id))
        .set((updates::last_signature_id.eq(last), updates::queued.eq(updates::queued + ids.len() as i64)))
        .execute(conn)?;
    let rows: Vec<_> = ids.iter().map(|sid| (update_deliveries::update_id.eq(update.id), update_deliveries::signature_id.eq(*sid))).collect();
    match conn {
        DbConn::Sqlite(c) => diesel::insert_into(update_deliveries::table).values(&rows).execute(c)?,
        DbConn::Pg(c) => diesel::insert_into(update_deliveries::table).values(&rows).execute(c)?,
    };
    let deliveries: Vec<i64> = update_deliveries::table
        .filter(update_deliveries::update_id.eq(update.id))
        .filter(update_deliveries::signature_id.eq_any(&ids))
        .select(update_deliveries::id)
        .load(conn)?;
    crate::models::outbox::enqueue_many(conn, kind, &deliveries, now)?;
    Ok(ids.len() as i64)
}

/// (update id, signature id) for one queued email.
pub fn delivery(conn: &mut DbConn, id: i64) -> QueryResult<Option<(i64, i64)>> {
    update_deliveries::table.find(id).select((update_deliveries::update_id, update_deliveries::signature_id)).first(conn).optional()
}

pub fn find_any(conn: &mut DbConn, id: i64) -> QueryResult<Option<Update>> {
    updates::table.find(id).select(Update::as_select()).first(conn).optional()
}

/// Emails of this kind still waiting in the outbox, across every update.
pub fn waiting(conn: &mut DbConn, kind: &str) -> QueryResult<i64> {
    outbox::table.filter(outbox::kind.eq(kind)).filter(outbox::state.eq(crate::models::outbox::PENDING)).count().get_result(conn)
}

/// Where an update's emails are: (waiting, sent, failed or cancelled).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Progress {
    pub waiting: i64,
    pub sent: i64,
    pub failed: i64,
}

pub fn progress(conn: &mut DbConn, update_id: i64, kind: &str) -> QueryResult<Progress> {
    let ours = update_deliveries::table.filter(update_deliveries::update_id.eq(update_id)).select(update_deliveries::id);
    let by_state: Vec<(String, i64)> = outbox::table
        .filter(outbox::kind.eq(kind))
        .filter(outbox::subject_id.eq_any(ours))
        .group_by(outbox::state)
        .select((outbox::state, diesel::dsl::count_star()))
        .load(conn)?;
    let mut p = Progress::default();
    for (state, n) in by_state {
        match state.as_str() {
            crate::models::outbox::PENDING => p.waiting += n,
            crate::models::outbox::SENT => p.sent += n,
            _ => p.failed += n,
        }
    }
    Ok(p)
}
