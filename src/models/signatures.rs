use diesel::dsl::count_star;
use diesel::prelude::*;

use crate::db::schema::{postcodes, signatures};
use crate::db::DbConn;

pub const PENDING: &str = "pending";
pub const CONFIRMED: &str = "confirmed";

#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = signatures)]
pub struct Signature {
    pub id: i64,
    pub campaign_id: i64,
    pub name: String,
    pub email: String,
    pub email_key: String,
    pub postcode: String,
    pub ons_code: Option<String>,
    pub updates_opt_in: bool,
    pub show_name: bool,
    pub state: String,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub invalidated_reason: Option<String>,
    pub invalidated_at: Option<i64>,
}

#[derive(Insertable)]
#[diesel(table_name = signatures)]
pub struct NewSignature<'a> {
    pub campaign_id: i64,
    pub name: &'a str,
    pub email: &'a str,
    pub email_key: &'a str,
    pub postcode: &'a str,
    pub ons_code: Option<&'a str>,
    pub updates_opt_in: bool,
    pub show_name: bool,
    pub state: &'a str,
    pub created_at: i64,
}

pub fn insert(conn: &mut DbConn, new: &NewSignature) -> QueryResult<i64> {
    diesel::insert_into(signatures::table).values(new).returning(signatures::id).get_result(conn)
}

pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<Signature>> {
    signatures::table.find(id).select(Signature::as_select()).first(conn).optional()
}

pub fn find_by_mailbox(conn: &mut DbConn, campaign_id: i64, email_key: &str) -> QueryResult<Option<Signature>> {
    signatures::table
        .filter(signatures::campaign_id.eq(campaign_id))
        .filter(signatures::email_key.eq(email_key))
        .select(Signature::as_select())
        .first(conn)
        .optional()
}

/// Marks a pending signature confirmed; returns whether this call changed it.
pub fn confirm(conn: &mut DbConn, id: i64, now: i64) -> QueryResult<bool> {
    let n = diesel::update(signatures::table.find(id).filter(signatures::state.eq(PENDING)))
        .set((signatures::state.eq(CONFIRMED), signatures::confirmed_at.eq(now)))
        .execute(conn)?;
    Ok(n == 1)
}

pub fn confirmed_count(conn: &mut DbConn, campaign_id: i64) -> QueryResult<i64> {
    signatures::table
        .filter(signatures::campaign_id.eq(campaign_id))
        .filter(signatures::state.eq(CONFIRMED))
        .count()
        .get_result(conn)
}

/// Confirmed signatures per constituency, for those whose constituency is known.
pub fn confirmed_by_constituency(conn: &mut DbConn, campaign_id: i64) -> QueryResult<Vec<(String, i64)>> {
    let rows: Vec<(Option<String>, i64)> = signatures::table
        .filter(signatures::campaign_id.eq(campaign_id))
        .filter(signatures::state.eq(CONFIRMED))
        .filter(signatures::ons_code.is_not_null())
        .group_by(signatures::ons_code)
        .select((signatures::ons_code, count_star()))
        .load(conn)?;
    Ok(rows.into_iter().filter_map(|(c, n)| c.map(|c| (c, n))).collect())
}

/// The most recent confirmed signers who agreed to be shown: (name, constituency code, confirmed at).
pub fn recent_public(conn: &mut DbConn, campaign_id: i64, limit: i64) -> QueryResult<Vec<(String, Option<String>, Option<i64>)>> {
    signatures::table
        .filter(signatures::campaign_id.eq(campaign_id))
        .filter(signatures::state.eq(CONFIRMED))
        .filter(signatures::show_name.eq(true))
        .order(signatures::confirmed_at.desc())
        .limit(limit)
        .select((signatures::name, signatures::ons_code, signatures::confirmed_at))
        .load(conn)
}

/// Postcodes of signatures still waiting for a constituency, skipping those postcodes.io
/// already said it does not know.
pub fn unplaced_postcodes(conn: &mut DbConn, limit: i64) -> QueryResult<Vec<String>> {
    let known_bad = postcodes::table.filter(postcodes::status.ne(crate::models::postcodes::FOUND)).select(postcodes::postcode);
    signatures::table
        .filter(signatures::ons_code.is_null())
        .filter(signatures::postcode.ne_all(known_bad))
        .select(signatures::postcode)
        .distinct()
        .limit(limit)
        .load(conn)
}

pub fn place(conn: &mut DbConn, postcode: &str, ons_code: &str) -> QueryResult<usize> {
    diesel::update(signatures::table.filter(signatures::postcode.eq(postcode)).filter(signatures::ons_code.is_null()))
        .set(signatures::ons_code.eq(ons_code))
        .execute(conn)
}

/// Signatures per state across all campaigns, for metrics.
pub fn count_by_state(conn: &mut DbConn) -> QueryResult<Vec<(String, i64)>> {
    signatures::table.group_by(signatures::state).select((signatures::state, count_star())).load(conn)
}

/// Deletes signatures never confirmed and created before `cutoff`, with their tokens and queued
/// emails; returns how many signatures went.
pub fn delete_unconfirmed_before(conn: &mut DbConn, cutoff: i64) -> QueryResult<usize> {
    use crate::db::schema::{outbox, tokens};
    let stale = signatures::table.filter(signatures::state.eq(PENDING)).filter(signatures::created_at.lt(cutoff)).select(signatures::id);
    diesel::delete(tokens::table.filter(tokens::purpose.eq(crate::models::tokens::CONFIRM_SIGNATURE)).filter(tokens::subject_id.eq_any(stale)))
        .execute(conn)?;
    diesel::delete(
        outbox::table
            .filter(outbox::kind.eq_any([crate::petition::sign::CONFIRM_EMAIL, crate::petition::sign::ALREADY_SIGNED_EMAIL]))
            .filter(outbox::subject_id.eq_any(stale)),
    )
    .execute(conn)?;
    diesel::delete(signatures::table.filter(signatures::state.eq(PENDING)).filter(signatures::created_at.lt(cutoff))).execute(conn)
}
