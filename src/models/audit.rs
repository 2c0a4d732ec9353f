//! Every change staff make: who, what, when. Written in the same transaction as the change.
use diesel::prelude::*;

use crate::db::schema::audit_log;
use crate::db::DbConn;

#[derive(Queryable, Selectable, Clone, Debug, serde::Serialize)]
#[diesel(table_name = audit_log)]
pub struct AuditEntry {
    pub id: i64,
    pub staff_id: Option<i64>,
    pub staff_name: String,
    pub action: String,
    pub detail: String,
    pub created_at: i64,
}

/// `action` is a short code (`campaign.update`); `detail` says what changed, for people.
/// Never put a supporter's personal data or a password in either.
pub fn record(conn: &mut DbConn, staff_id: Option<i64>, staff_name: &str, action: &str, detail: &str, now: i64) -> QueryResult<usize> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::staff_id.eq(staff_id),
            audit_log::staff_name.eq(staff_name),
            audit_log::action.eq(action),
            audit_log::detail.eq(detail),
            audit_log::created_at.eq(now),
        ))
        .execute(conn)
}

pub fn recent(conn: &mut DbConn, limit: i64, offset: i64) -> QueryResult<Vec<AuditEntry>> {
    audit_log::table.order(audit_log::id.desc()).limit(limit).offset(offset).select(AuditEntry::as_select()).load(conn)
}
