//! Members of Parliament, keyed by Parliament's own member id. A member row whose `ons_code` is
//! NULL is someone Rally once knew as an MP who no longer holds a seat Rally knows about.
use diesel::prelude::*;

use crate::db::schema::members;
use crate::db::DbConn;

#[derive(Queryable, Selectable, Clone, Debug, PartialEq, Eq)]
#[diesel(table_name = members)]
pub struct Member {
    pub id: i64,
    pub ons_code: Option<String>,
    pub name: String,
    pub party: Option<String>,
    pub email: Option<String>,
    pub updated_at: i64,
}

/// Who should hold a seat, from a CSV row or the Members API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Holder {
    pub id: i64,
    pub name: String,
    pub party: Option<String>,
    pub email: Option<String>,
}

/// What storing a seat's holder did to that seat.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeatChange {
    /// The seat had no MP and now has one.
    Added,
    /// A different MP, or the same MP with a new name, party or email.
    Changed,
    Unchanged,
    /// The seat had an MP and now has none.
    Vacated,
}

impl Member {
    fn matches(&self, h: &Holder) -> bool {
        self.name == h.name && self.party == h.party && self.email == h.email
    }
}

pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<Member>> {
    members::table.find(id).select(Member::as_select()).first(conn).optional()
}

/// The member sitting for a constituency (the newest, should a stale row linger).
pub fn in_seat(conn: &mut DbConn, ons_code: &str) -> QueryResult<Option<Member>> {
    members::table
        .filter(members::ons_code.eq(ons_code))
        .order(members::updated_at.desc())
        .select(Member::as_select())
        .first(conn)
        .optional()
}

/// Makes `holder` the only member sitting for `ons_code` (or leaves the seat empty with `None`).
/// A member who sat elsewhere moves here, since a member holds one seat at a time; whoever sat
/// here before is unlinked rather than deleted, so the row can be reused if they return.
pub fn set_seat(conn: &mut DbConn, ons_code: &str, holder: Option<&Holder>, now: i64) -> QueryResult<SeatChange> {
    let seated: Vec<Member> = members::table.filter(members::ons_code.eq(ons_code)).select(Member::as_select()).load(conn)?;
    let Some(holder) = holder else {
        if seated.is_empty() {
            return Ok(SeatChange::Unchanged);
        }
        unseat_all_but(conn, ons_code, None, now)?;
        return Ok(SeatChange::Vacated);
    };
    let already_here = seated.iter().find(|m| m.id == holder.id);
    let others_here = seated.iter().any(|m| m.id != holder.id);
    if !others_here && already_here.is_some_and(|m| m.matches(holder)) {
        return Ok(SeatChange::Unchanged);
    }
    if others_here {
        unseat_all_but(conn, ons_code, Some(holder.id), now)?;
    }
    save(conn, holder, ons_code, now)?;
    Ok(if others_here || already_here.is_some() { SeatChange::Changed } else { SeatChange::Added })
}

/// Inserts or updates the member's row and links it to the seat (select first: MultiConnection
/// has no upsert).
fn save(conn: &mut DbConn, h: &Holder, ons_code: &str, now: i64) -> QueryResult<()> {
    let values = (
        members::ons_code.eq(Some(ons_code)),
        members::name.eq(&h.name),
        members::party.eq(h.party.as_deref()),
        members::email.eq(h.email.as_deref()),
        members::updated_at.eq(now),
    );
    if find(conn, h.id)?.is_some() {
        diesel::update(members::table.find(h.id)).set(values).execute(conn)?;
    } else {
        diesel::insert_into(members::table).values((members::id.eq(h.id), values)).execute(conn)?;
    }
    Ok(())
}

fn unseat_all_but(conn: &mut DbConn, ons_code: &str, keep: Option<i64>, now: i64) -> QueryResult<usize> {
    let unlink = (members::ons_code.eq(None::<String>), members::updated_at.eq(now));
    let in_seat = members::table.filter(members::ons_code.eq(ons_code));
    match keep {
        Some(id) => diesel::update(in_seat.filter(members::id.ne(id))).set(unlink).execute(conn),
        None => diesel::update(in_seat).set(unlink).execute(conn),
    }
}

/// Every member who sits for a seat (the staff MP directory joins these to constituencies).
pub fn seated(conn: &mut DbConn) -> QueryResult<Vec<Member>> {
    members::table.filter(members::ons_code.is_not_null()).order(members::updated_at.desc()).select(Member::as_select()).load(conn)
}

/// Staff correcting a member's email by hand (`None`: no email). A later import or sync that
/// says otherwise replaces it.
pub fn set_email(conn: &mut DbConn, id: i64, email: Option<&str>, now: i64) -> QueryResult<usize> {
    diesel::update(members::table.find(id)).set((members::email.eq(email), members::updated_at.eq(now))).execute(conn)
}
