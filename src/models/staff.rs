use diesel::prelude::*;

use crate::db::schema::staff;
use crate::db::DbConn;

pub const ADMIN: &str = "admin";
pub const EDITOR: &str = "editor";

#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = staff)]
pub struct StaffMember {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub password_hash: String,
    pub role: String,
    pub created_at: i64,
    pub disabled_at: Option<i64>,
    /// Sessions issued before this are refused (bumped on disable, enable and password reset).
    pub sessions_valid_after: i64,
}

impl StaffMember {
    pub fn is_admin(&self) -> bool {
        self.role == ADMIN
    }
}

pub fn insert(conn: &mut DbConn, email: &str, name: &str, password_hash: &str, role: &str, now: i64) -> QueryResult<i64> {
    diesel::insert_into(staff::table)
        .values((staff::email.eq(email), staff::name.eq(name), staff::password_hash.eq(password_hash), staff::role.eq(role), staff::created_at.eq(now)))
        .returning(staff::id)
        .get_result(conn)
}

pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<StaffMember>> {
    staff::table.find(id).select(StaffMember::as_select()).first(conn).optional()
}

/// Staff emails are stored lower-case, so this is an exact match on the lower-cased address.
pub fn find_by_email(conn: &mut DbConn, email: &str) -> QueryResult<Option<StaffMember>> {
    staff::table.filter(staff::email.eq(email.to_lowercase())).select(StaffMember::as_select()).first(conn).optional()
}

pub fn list(conn: &mut DbConn) -> QueryResult<Vec<StaffMember>> {
    staff::table.order(staff::name.asc()).select(StaffMember::as_select()).load(conn)
}

/// A new password ends every session the account had.
pub fn set_password(conn: &mut DbConn, id: i64, password_hash: &str) -> QueryResult<usize> {
    diesel::update(staff::table.find(id)).set((staff::password_hash.eq(password_hash), staff::sessions_valid_after.eq(crate::clock::now_ms()))).execute(conn)
}

pub fn set_role(conn: &mut DbConn, id: i64, role: &str) -> QueryResult<usize> {
    diesel::update(staff::table.find(id)).set(staff::role.eq(role)).execute(conn)
}

/// Disabling or re-enabling ends every session the account had, so an old cookie never comes
/// back to life.
pub fn set_disabled(conn: &mut DbConn, id: i64, at: Option<i64>) -> QueryResult<usize> {
    diesel::update(staff::table.find(id)).set((staff::disabled_at.eq(at), staff::sessions_valid_after.eq(crate::clock::now_ms()))).execute(conn)
}
