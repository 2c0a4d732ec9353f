use diesel::prelude::*;

use crate::db::schema::settings;
use crate::db::DbConn;

pub fn get(conn: &mut DbConn, key: &str) -> QueryResult<Option<String>> {
    settings::table.find(key).select(settings::value).first(conn).optional()
}

pub fn insert(conn: &mut DbConn, key: &str, value: &str) -> QueryResult<usize> {
    diesel::insert_into(settings::table).values((settings::key.eq(key), settings::value.eq(value))).execute(conn)
}
