use diesel::prelude::*;

use crate::db::schema::campaigns;
use crate::db::DbConn;

#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = campaigns)]
pub struct Campaign {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub summary: String,
    pub body_md: String,
    pub content_note: Option<String>,
    pub state: String,
    pub closes_at: Option<i64>,
    pub closed_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Whether MPs' offices get a weekly digest about this campaign (off unless staff turn it on).
    pub mp_digest: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CampaignState {
    Draft,
    Open,
    Closed,
}

impl CampaignState {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "draft" => Some(Self::Draft),
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

impl Campaign {
    /// The state a visitor sees: an open campaign past its closing date is closed.
    pub fn effective_state(&self, now: i64) -> CampaignState {
        match CampaignState::parse(&self.state).unwrap_or(CampaignState::Draft) {
            CampaignState::Open if self.closes_at.is_some_and(|c| c <= now) => CampaignState::Closed,
            s => s,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = campaigns)]
pub struct NewCampaign<'a> {
    pub slug: &'a str,
    pub title: &'a str,
    pub summary: &'a str,
    pub body_md: &'a str,
    pub content_note: Option<&'a str>,
    pub state: &'a str,
    pub closes_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

pub fn insert(conn: &mut DbConn, new: &NewCampaign) -> QueryResult<i64> {
    diesel::insert_into(campaigns::table).values(new).returning(campaigns::id).get_result(conn)
}

pub fn find_by_slug(conn: &mut DbConn, slug: &str) -> QueryResult<Option<Campaign>> {
    campaigns::table.filter(campaigns::slug.eq(slug)).select(Campaign::as_select()).first(conn).optional()
}

pub fn find(conn: &mut DbConn, id: i64) -> QueryResult<Option<Campaign>> {
    campaigns::table.find(id).select(Campaign::as_select()).first(conn).optional()
}

/// Campaigns the public may see (not drafts), newest first.
pub fn list_public(conn: &mut DbConn) -> QueryResult<Vec<Campaign>> {
    campaigns::table
        .filter(campaigns::state.ne("draft"))
        .order(campaigns::created_at.desc())
        .select(Campaign::as_select())
        .load(conn)
}

pub fn count(conn: &mut DbConn) -> QueryResult<i64> {
    campaigns::table.count().get_result(conn)
}

/// Every campaign, drafts included, newest first (for staff).
pub fn list_all(conn: &mut DbConn) -> QueryResult<Vec<Campaign>> {
    campaigns::table.order((campaigns::created_at.desc(), campaigns::id.desc())).select(Campaign::as_select()).load(conn)
}

/// What staff may change on a campaign; the slug stays fixed because public links use it.
pub struct CampaignChanges<'a> {
    pub title: &'a str,
    pub summary: &'a str,
    pub body_md: &'a str,
    pub content_note: Option<&'a str>,
    pub state: &'a str,
    pub closes_at: Option<i64>,
    /// When the campaign was closed; `None` unless the state is `closed`.
    pub closed_at: Option<i64>,
    /// Whether MPs' offices get the weekly digest.
    pub mp_digest: bool,
}

pub fn update(conn: &mut DbConn, id: i64, changes: &CampaignChanges, now: i64) -> QueryResult<usize> {
    diesel::update(campaigns::table.find(id))
        .set((
            campaigns::title.eq(changes.title),
            campaigns::summary.eq(changes.summary),
            campaigns::body_md.eq(changes.body_md),
            campaigns::content_note.eq(changes.content_note),
            campaigns::state.eq(changes.state),
            campaigns::closes_at.eq(changes.closes_at),
            campaigns::closed_at.eq(changes.closed_at),
            campaigns::mp_digest.eq(changes.mp_digest),
            campaigns::updated_at.eq(now),
        ))
        .execute(conn)
}

/// Marks a campaign as changed (its ladder or targets), for "last updated" displays.
pub fn touch(conn: &mut DbConn, id: i64, now: i64) -> QueryResult<usize> {
    diesel::update(campaigns::table.find(id)).set(campaigns::updated_at.eq(now)).execute(conn)
}

/// Campaigns whose staff turned the weekly digest to MPs' offices on (drafts left out).
pub fn with_mp_digest(conn: &mut DbConn) -> QueryResult<Vec<Campaign>> {
    campaigns::table
        .filter(campaigns::mp_digest.eq(true))
        .filter(campaigns::state.ne("draft"))
        .order(campaigns::id)
        .select(Campaign::as_select())
        .load(conn)
}
