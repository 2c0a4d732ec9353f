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
