use diesel::prelude::*;

use crate::db::schema::postcodes;
use crate::db::DbConn;

/// What postcodes.io last said about a postcode.
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = postcodes)]
pub struct CachedPostcode {
    pub postcode: String,
    pub status: String,
    pub ons_code: Option<String>,
    pub fetched_at: i64,
}

pub const FOUND: &str = "found";
pub const NOT_FOUND: &str = "not_found";
pub const TERMINATED: &str = "terminated";

pub fn get(conn: &mut DbConn, postcode: &str) -> QueryResult<Option<CachedPostcode>> {
    postcodes::table.find(postcode).select(CachedPostcode::as_select()).first(conn).optional()
}

pub fn store(conn: &mut DbConn, postcode: &str, status: &str, ons_code: Option<&str>, now: i64) -> QueryResult<()> {
    let updated = diesel::update(postcodes::table.find(postcode))
        .set((postcodes::status.eq(status), postcodes::ons_code.eq(ons_code), postcodes::fetched_at.eq(now)))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(postcodes::table)
            .values((
                postcodes::postcode.eq(postcode),
                postcodes::status.eq(status),
                postcodes::ons_code.eq(ons_code),
                postcodes::fetched_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}
