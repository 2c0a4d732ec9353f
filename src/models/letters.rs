use diesel::prelude::*;

use crate::db::schema::letters;
use crate::db::DbConn;

pub const PENDING: &str = "pending";
pub const CONFIRMED: &str = "confirmed";
/// Claimed by a sender for delivery right now (counts towards the recipient's pace).
pub const SENDING: &str = "sending";
pub const SENT: &str = "sent";
pub const FAILED: &str = "failed";

#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = letters)]
pub struct Letter {
    pub id: i64,
    pub campaign_id: i64,
    pub target_key: String,
    pub target_name: String,
    pub target_email: String,
    pub ons_code: Option<String>,
    pub writer_name: String,
    pub writer_email: String,
    pub writer_email_key: String,
    pub address_line1: String,
    pub address_line2: Option<String>,
    pub town: String,
    pub postcode: String,
    pub personal_edit: Option<String>,
    pub subject: String,
    pub body: String,
    pub state: String,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub sent_at: Option<i64>,
    /// The "did your MP reply?" questionnaire: asked, reminded, and the answer.
    pub survey_asked_at: Option<i64>,
    pub survey_reminded_at: Option<i64>,
    pub reply: Option<String>,
    pub replied_at: Option<i64>,
}

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = letters)]
#[diesel(treat_none_as_null = true)]
pub struct NewLetter<'a> {
    pub campaign_id: i64,
    pub target_key: &'a str,
    pub target_name: &'a str,
    pub target_email: &'a str,
    pub ons_code: Option<&'a str>,
    pub writer_name: &'a str,
    pub writer_email: &'a str,
    pub writer_email_key: &'a str,
    pub address_line1: &'a str,
    pub address_line2: Option<&'a str>,
    pub town: &'a str,
    pub postcode: &'a str,
    pub personal_edit: Option<&'a str>,
    pub subject: &'a str,
    pub body: &'a str,
    pub state: &'a str,
    pub created_at: i64,
}

pub fn insert(conn: &mut DbConn, new: &NewLetter) -> QueryResult<i64> {
    diesel::insert_into(letters::table).values(new).returning(letters::id).get_result(conn)
}

/// Replaces an unconfirmed letter's content (the writer changed it before confirming).
pub fn replace_pending(conn: &mut DbConn, id: i64, new: &NewLetter) -> QueryResult<usize> {
    diesel::update(letters::table.find(id).filter(letters::state.eq(PENDING))).set(new).execute(conn)
}

pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<Letter>> {
    letters::table.find(id).select(Letter::as_select()).first(conn).optional()
}

pub fn find_by_writer(conn: &mut DbConn, campaign_id: i64, target_key: &str, email_key: &str) -> QueryResult<Option<Letter>> {
    letters::table
        .filter(letters::campaign_id.eq(campaign_id))
        .filter(letters::target_key.eq(target_key))
        .filter(letters::writer_email_key.eq(email_key))
        .select(Letter::as_select())
        .first(conn)
        .optional()
}

/// Pending → confirmed; returns whether this call changed it.
pub fn confirm(conn: &mut DbConn, id: i64, now: i64) -> QueryResult<bool> {
    let n = diesel::update(letters::table.find(id).filter(letters::state.eq(PENDING)))
        .set((letters::state.eq(CONFIRMED), letters::confirmed_at.eq(now)))
        .execute(conn)?;
    Ok(n == 1)
}

/// Letters to this inbox sent in the last minute or being sent now, other than `except`.
pub fn recent_to_inbox(conn: &mut DbConn, target_email: &str, since: i64, except: i64) -> QueryResult<i64> {
    letters::table
        .filter(letters::target_email.eq(target_email))
        .filter(letters::id.ne(except))
        .filter(letters::sent_at.gt(since).or(letters::state.eq(SENDING)))
        .count()
        .get_result(conn)
}

pub fn set_state(conn: &mut DbConn, id: i64, state: &str) -> QueryResult<usize> {
    diesel::update(letters::table.find(id)).set(letters::state.eq(state)).execute(conn)
}

pub fn mark_sent(conn: &mut DbConn, id: i64, now: i64) -> QueryResult<usize> {
    diesel::update(letters::table.find(id)).set((letters::state.eq(SENT), letters::sent_at.eq(now))).execute(conn)
}

/// Letters by state for one campaign (metrics and dashboards).
pub fn count_by_state(conn: &mut DbConn) -> QueryResult<Vec<(String, i64)>> {
    letters::table.group_by(letters::state).select((letters::state, diesel::dsl::count_star())).load(conn)
}

/// Letters delivered per (campaign, target key), for the staff dashboard.
pub fn sent_by_campaign_and_target(conn: &mut DbConn) -> QueryResult<Vec<(i64, String, i64)>> {
    letters::table
        .filter(letters::state.eq(SENT))
        .group_by((letters::campaign_id, letters::target_key))
        .select((letters::campaign_id, letters::target_key, diesel::dsl::count_star()))
        .load(conn)
}
