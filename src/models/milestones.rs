use diesel::prelude::*;

use crate::db::schema::milestones;
use crate::db::DbConn;

#[derive(Queryable, Selectable, Debug, Clone)]
#[diesel(table_name = milestones)]
pub struct Milestone {
    pub id: i64,
    pub campaign_id: i64,
    pub threshold: i64,
    pub reached_at: Option<i64>,
}

pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<Milestone>> {
    milestones::table.find(id).select(Milestone::as_select()).first(conn).optional()
}

/// Rungs at or below `count` not yet marked reached.
pub fn unreached_up_to(conn: &mut DbConn, campaign_id: i64, count: i64) -> QueryResult<Vec<Milestone>> {
    milestones::table
        .filter(milestones::campaign_id.eq(campaign_id))
        .filter(milestones::reached_at.is_null())
        .filter(milestones::threshold.le(count))
        .order(milestones::threshold.asc())
        .select(Milestone::as_select())
        .load(conn)
}

/// Marks a rung reached; 1 only for the call that did it, so its email is queued once even
/// with several instances checking.
pub fn mark_reached(conn: &mut DbConn, id: i64, now: i64) -> QueryResult<usize> {
    diesel::update(milestones::table.find(id).filter(milestones::reached_at.is_null())).set(milestones::reached_at.eq(now)).execute(conn)
}

pub fn insert(conn: &mut DbConn, campaign_id: i64, threshold: i64) -> QueryResult<usize> {
    diesel::insert_into(milestones::table)
        .values((milestones::campaign_id.eq(campaign_id), milestones::threshold.eq(threshold)))
        .execute(conn)
}

/// The ladder, smallest first.
pub fn ladder(conn: &mut DbConn, campaign_id: i64) -> QueryResult<Vec<i64>> {
    milestones::table
        .filter(milestones::campaign_id.eq(campaign_id))
        .order(milestones::threshold.asc())
        .select(milestones::threshold)
        .load(conn)
}

/// The milestone a campaign is heading for: the first rung above the count. Past the top of
/// the ladder the target keeps doubling, so the page always has something to aim at.
pub fn current_target(ladder: &[i64], count: i64) -> i64 {
    if let Some(t) = ladder.iter().copied().find(|t| *t > count) {
        return t;
    }
    let mut t = ladder.last().copied().unwrap_or(100).max(1);
    while t <= count {
        t *= 2;
    }
    t
}

/// Replaces a campaign's ladder. Rungs that stay keep their `reached_at`.
pub fn replace_ladder(conn: &mut DbConn, campaign_id: i64, thresholds: &[i64]) -> QueryResult<()> {
    diesel::delete(milestones::table.filter(milestones::campaign_id.eq(campaign_id)).filter(milestones::threshold.ne_all(thresholds.to_vec()))).execute(conn)?;
    let existing = ladder(conn, campaign_id)?;
    // One insert per rung: MultiConnection cannot insert a Vec in one statement.
    for t in thresholds.iter().filter(|t| !existing.contains(t)) {
        insert(conn, campaign_id, *t)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::current_target;

    #[test]
    fn target_moves_up_once_reached() {
        let ladder = [1500, 5000, 10000];
        assert_eq!(current_target(&ladder, 0), 1500);
        assert_eq!(current_target(&ladder, 1499), 1500);
        assert_eq!(current_target(&ladder, 1500), 5000);
        assert_eq!(current_target(&ladder, 10000), 20000);
        assert_eq!(current_target(&[], 5), 100);
    }
}
