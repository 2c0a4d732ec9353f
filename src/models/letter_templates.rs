use diesel::prelude::*;

use crate::db::schema::letter_templates;
use crate::db::DbConn;

/// One saved version of a campaign's letter to one target (`mp` or a fixed target's key).
#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = letter_templates)]
pub struct LetterTemplate {
    pub id: i64,
    pub campaign_id: i64,
    pub target_key: String,
    pub subject: String,
    pub body: String,
    pub version: i64,
    pub created_by: Option<String>,
    pub created_at: i64,
}

/// Saves a new version (the next number for this campaign and target).
pub fn save(conn: &mut DbConn, campaign_id: i64, target_key: &str, subject: &str, body: &str, created_by: Option<&str>, now: i64) -> QueryResult<i64> {
    let latest: Option<i64> = letter_templates::table
        .filter(letter_templates::campaign_id.eq(campaign_id))
        .filter(letter_templates::target_key.eq(target_key))
        .select(diesel::dsl::max(letter_templates::version))
        .first(conn)?;
    let version = latest.unwrap_or(0) + 1;
    diesel::insert_into(letter_templates::table)
        .values((
            letter_templates::campaign_id.eq(campaign_id),
            letter_templates::target_key.eq(target_key),
            letter_templates::subject.eq(subject),
            letter_templates::body.eq(body),
            letter_templates::version.eq(version),
            letter_templates::created_by.eq(created_by),
            letter_templates::created_at.eq(now),
        ))
        .execute(conn)?;
    Ok(version)
}

/// The current (latest) version for a campaign and target.
pub fn current(conn: &mut DbConn, campaign_id: i64, target_key: &str) -> QueryResult<Option<LetterTemplate>> {
    letter_templates::table
        .filter(letter_templates::campaign_id.eq(campaign_id))
        .filter(letter_templates::target_key.eq(target_key))
        .order(letter_templates::version.desc())
        .select(LetterTemplate::as_select())
        .first(conn)
        .optional()
}

pub fn count_for_campaign(conn: &mut DbConn, campaign_id: i64) -> QueryResult<i64> {
    letter_templates::table.filter(letter_templates::campaign_id.eq(campaign_id)).count().get_result(conn)
}

/// Every saved version for a campaign and target, newest first.
pub fn versions(conn: &mut DbConn, campaign_id: i64, target_key: &str) -> QueryResult<Vec<LetterTemplate>> {
    letter_templates::table
        .filter(letter_templates::campaign_id.eq(campaign_id))
        .filter(letter_templates::target_key.eq(target_key))
        .order(letter_templates::version.desc())
        .select(LetterTemplate::as_select())
        .load(conn)
}

pub fn find_version(conn: &mut DbConn, campaign_id: i64, target_key: &str, version: i64) -> QueryResult<Option<LetterTemplate>> {
    letter_templates::table
        .filter(letter_templates::campaign_id.eq(campaign_id))
        .filter(letter_templates::target_key.eq(target_key))
        .filter(letter_templates::version.eq(version))
        .select(LetterTemplate::as_select())
        .first(conn)
        .optional()
}

/// The latest version number for each target key that has a letter.
pub fn latest_versions(conn: &mut DbConn, campaign_id: i64) -> QueryResult<Vec<(String, i64)>> {
    letter_templates::table
        .filter(letter_templates::campaign_id.eq(campaign_id))
        .group_by(letter_templates::target_key)
        .select((letter_templates::target_key, diesel::dsl::max(letter_templates::version)))
        .load::<(String, Option<i64>)>(conn)
        .map(|rows| rows.into_iter().map(|(k, v)| (k, v.unwrap_or(0))).collect())
}
