use std::collections::HashMap;

use diesel::prelude::*;

use crate::db::schema::{constituencies, members};
use crate::db::DbConn;

/// A Westminster constituency, keyed by its ONS code (E14…, W07…, S14…, N05…).
#[derive(Queryable, Selectable, Clone, Debug, PartialEq, Eq)]
#[diesel(table_name = constituencies)]
pub struct Constituency {
    pub ons_code: String,
    pub name: String,
    /// When Rally last asked who the MP is (Members API or an import); NULL: never.
    pub mp_checked_at: Option<i64>,
}

pub fn get(conn: &mut DbConn, ons_code: &str) -> QueryResult<Option<Constituency>> {
    constituencies::table.find(ons_code).select(Constituency::as_select()).first(conn).optional()
}

pub fn all(conn: &mut DbConn) -> QueryResult<Vec<Constituency>> {
    constituencies::table.order(constituencies::ons_code).select(Constituency::as_select()).load(conn)
}

/// What `upsert` did to the constituency row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Renamed,
    Unchanged,
}

/// Records a constituency under an authoritative name (an import), renaming an existing row.
pub fn upsert(conn: &mut DbConn, ons_code: &str, name: &str) -> QueryResult<Upserted> {
    match get(conn, ons_code)? {
        None => {
            diesel::insert_into(constituencies::table)
                .values((constituencies::ons_code.eq(ons_code), constituencies::name.eq(name)))
                .execute(conn)?;
            Ok(Upserted::Created)
        }
        Some(c) if c.name != name => {
            diesel::update(constituencies::table.find(ons_code)).set(constituencies::name.eq(name)).execute(conn)?;
            Ok(Upserted::Renamed)
        }
        Some(_) => Ok(Upserted::Unchanged),
    }
}

/// Takes the database's write lock at the start of a transaction that reads before it writes.
/// On SQLite such a transaction fails at once with "database is locked" if another connection
/// (say `rally mps import` beside `rally serve`) commits between its first read and first write:
/// SQLite cannot wait there without breaking isolation. A write as the first statement takes the
/// lock up front, where `busy_timeout` lets it wait its turn. On PostgreSQL it does nothing.
pub fn lock_for_writing(conn: &mut DbConn) -> QueryResult<()> {
    diesel::update(constituencies::table.filter(constituencies::ons_code.eq("")))
        .set(constituencies::name.eq(constituencies::name))
        .execute(conn)?;
    Ok(())
}

/// Notes that Rally has just learnt who (if anyone) is the constituency's MP.
pub fn mark_checked(conn: &mut DbConn, ons_code: &str, now: i64) -> QueryResult<()> {
    diesel::update(constituencies::table.find(ons_code)).set(constituencies::mp_checked_at.eq(Some(now))).execute(conn)?;
    Ok(())
}

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
