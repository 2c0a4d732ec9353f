use diesel::prelude::*;

use crate::db::schema::targets;
use crate::db::DbConn;

/// A fixed recipient of a campaign's letters, such as the Justice Secretary.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = targets)]
pub struct Target {
    pub id: i64,
    pub campaign_id: i64,
    pub key: String,
    pub name: String,
    pub title: String,
    pub salutation: String,
    pub email: String,
    pub position: i64,
}

#[derive(Insertable)]
#[diesel(table_name = targets)]
pub struct NewTarget<'a> {
    pub campaign_id: i64,
    pub key: &'a str,
    pub name: &'a str,
    pub title: &'a str,
    pub salutation: &'a str,
    pub email: &'a str,
    pub position: i64,
}

pub fn insert(conn: &mut DbConn, new: &NewTarget) -> QueryResult<usize> {
    diesel::insert_into(targets::table).values(new).execute(conn)
}

pub fn for_campaign(conn: &mut DbConn, campaign_id: i64) -> QueryResult<Vec<Target>> {
    targets::table
        .filter(targets::campaign_id.eq(campaign_id))
        .order(targets::position.asc())
        .select(Target::as_select())
        .load(conn)
}

pub fn find_by_key(conn: &mut DbConn, campaign_id: i64, key: &str) -> QueryResult<Option<Target>> {
    targets::table
        .filter(targets::campaign_id.eq(campaign_id))
        .filter(targets::key.eq(key))
        .select(Target::as_select())
        .first(conn)
        .optional()
}

/// The position after the last target, so a new target is listed last.
pub fn next_position(conn: &mut DbConn, campaign_id: i64) -> QueryResult<i64> {
    let last: Option<i64> = targets::table.filter(targets::campaign_id.eq(campaign_id)).select(diesel::dsl::max(targets::position)).first(conn)?;
    Ok(last.map_or(0, |p| p + 1))
}

/// Changes a target's details; its key stays fixed because letters are filed under it.
pub fn update(conn: &mut DbConn, id: i64, name: &str, title: &str, salutation: &str, email: &str) -> QueryResult<usize> {
    diesel::update(targets::table.find(id))
        .set((targets::name.eq(name), targets::title.eq(title), targets::salutation.eq(salutation), targets::email.eq(email)))
        .execute(conn)
}

pub fn delete(conn: &mut DbConn, id: i64) -> QueryResult<usize> {
    diesel::delete(targets::table.find(id)).execute(conn)
}
