use std::collections::HashMap;

use diesel::prelude::*;

use crate::db::schema::{constituencies, members};
use crate::db::DbConn;

/// Records a constituency's name the first time it is seen; an existing row is left as it is.
pub fn ensure(conn: &mut DbConn, ons_code: &str, name: &str) -> QueryResult<()> {
    let exists: i64 = constituencies::table.filter(constituencies::ons_code.eq(ons_code)).count().get_result(conn)?;
    if exists == 0 {
        diesel::insert_into(constituencies::table)
            .values((constituencies::ons_code.eq(ons_code), constituencies::name.eq(name)))
            .execute(conn)?;
    }
    Ok(())
}

/// Name and current MP (display name) for each code asked about.
pub fn names_and_mps(conn: &mut DbConn, codes: &[String]) -> QueryResult<HashMap<String, (String, Option<String>)>> {
    let rows: Vec<(String, String, Option<String>)> = constituencies::table
        .left_join(members::table)
        .filter(constituencies::ons_code.eq_any(codes))
        .select((constituencies::ons_code, constituencies::name, members::name.nullable()))
        .load(conn)?;
    Ok(rows.into_iter().map(|(code, name, mp)| (code, (name, mp))).collect())
}

/// The constituency's current MP: (name, party, email).
pub fn current_mp(conn: &mut DbConn, ons_code: &str) -> QueryResult<Option<(String, Option<String>, Option<String>)>> {
    members::table
        .filter(members::ons_code.eq(ons_code))
        .order(members::updated_at.desc())
        .select((members::name, members::party, members::email))
        .first(conn)
        .optional()
}
