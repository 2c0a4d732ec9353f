use diesel::prelude::*;

use crate::db::schema::settings;
use crate::db::DbConn;

pub fn get(conn: &mut DbConn, key: &str) -> QueryResult<Option<String>> {
    settings::table.find(key).select(settings::value).first(conn).optional()
}

pub fn insert(conn: &mut DbConn, key: &str, value: &str) -> QueryResult<usize> {
    diesel::insert_into(settings::table).values((settings::key.eq(key), settings::value.eq(value))).execute(conn)
}

/// Sets a value, adding the row if it is missing (select first: MultiConnection has no upsert).
pub fn put(conn: &mut DbConn, key: &str, value: &str) -> QueryResult<usize> {
    let updated = diesel::update(settings::table.find(key)).set(settings::value.eq(value)).execute(conn)?;
    if updated > 0 {
        return Ok(updated);
    }
    insert(conn, key, value)
}

pub fn delete(conn: &mut DbConn, key: &str) -> QueryResult<usize> {
    diesel::delete(settings::table.find(key)).execute(conn)
}

/// A time (Unix ms) and a line of text under one key, such as when the MPs were last synced
/// and what the sync did.
pub fn put_stamped(conn: &mut DbConn, key: &str, at: i64, text: &str) -> QueryResult<usize> {
    put(conn, key, &format!("{at}|{text}"))
}

/// Reads what `put_stamped` wrote; a value in another shape reads as missing.
pub fn get_stamped(conn: &mut DbConn, key: &str) -> QueryResult<Option<(i64, String)>> {
    Ok(get(conn, key)?.and_then(|v| {
        let (at, text) = v.split_once('|')?;
        Some((at.parse().ok()?, text.to_string()))
    }))
}

/// When the MPs were last imported from a CSV and last synced from the Members API, with a
/// one-line summary of what changed (`put_stamped`), whoever ran it (command line or staff page).
pub const MPS_LAST_IMPORT: &str = "mps_last_import";
pub const MPS_LAST_SYNC: &str = "mps_last_sync";
