//! A campaign's public progress: the confirmed count, the milestone it is heading for, and
//! signatures by constituency.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::clock::now_ms;
use crate::db::DbConn;
use crate::error::AppError;
use crate::models::campaigns::Campaign;
use crate::petition::counts::Counts;
use crate::models::{constituencies, milestones, signatures};

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CampaignSummary {
    pub slug: String,
    pub title: String,
    /// `open` or `closed`.
    pub state: &'static str,
    /// Confirmed signatures.
    pub signature_count: i64,
    /// The current milestone: the first rung of the ladder above the count.
    pub target: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ConstituencyCount {
    /// ONS code of the constituency (2024 boundaries), e.g. E14001172.
    pub ons_code: String,
    pub name: String,
    /// The current MP's name, when known.
    pub mp: Option<String>,
    pub signature_count: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CampaignDetail {
    pub slug: String,
    pub title: String,
    pub summary: String,
    pub state: &'static str,
    pub signature_count: i64,
    pub target: i64,
    pub signatures_by_constituency: Vec<ConstituencyCount>,
}

pub fn summary(conn: &mut DbConn, c: &Campaign, counts: &Counts) -> Result<CampaignSummary, AppError> {
    let count = counts.confirmed(c.id);
    let ladder = milestones::ladder(conn, c.id)?;
    Ok(CampaignSummary {
        slug: c.slug.clone(),
        title: c.title.clone(),
        state: c.effective_state(now_ms()).as_str(),
        signature_count: count,
        target: milestones::current_target(&ladder, count),
    })
}

/// The full picture, every part read fresh (staff pages).
pub fn detail(conn: &mut DbConn, c: &Campaign, counts: &Counts) -> Result<CampaignDetail, AppError> {
    let by_constituency = by_constituency(conn, c.id)?;
    detail_with(conn, c, counts, by_constituency)
}

/// The public picture: the count is live, the constituency table may be up to a second old, so
/// a rush of confirmations does not mean a `GROUP BY` for every reader.
pub fn public_detail(conn: &mut DbConn, c: &Campaign, counts: &Counts, tables: &Breakdowns) -> Result<CampaignDetail, AppError> {
    let by_constituency = tables.get_or_read(c.id, || by_constituency(conn, c.id))?;
    detail_with(conn, c, counts, by_constituency.as_ref().clone())
}

fn detail_with(conn: &mut DbConn, c: &Campaign, counts: &Counts, by_constituency: Vec<ConstituencyCount>) -> Result<CampaignDetail, AppError> {
    let s = summary(conn, c, counts)?;
    Ok(CampaignDetail {
        slug: s.slug,
        title: s.title,
        summary: c.summary.clone(),
        state: s.state,
        signature_count: s.signature_count,
        target: s.target,
        signatures_by_constituency: by_constituency,
    })
}

/// Confirmed signatures per constituency, most first, with names and MPs.
pub fn by_constituency(conn: &mut DbConn, campaign_id: i64) -> Result<Vec<ConstituencyCount>, AppError> {
    let counts = signatures::confirmed_by_constituency(conn, campaign_id)?;
    let codes: Vec<String> = counts.iter().map(|(code, _)| code.clone()).collect();
    let names = constituencies::names_and_mps(conn, &codes)?;
    let mut rows: Vec<ConstituencyCount> = counts
        .into_iter()
        .map(|(ons_code, n)| {
            let (name, mp) = names.get(&ons_code).cloned().unwrap_or_else(|| (ons_code.clone(), None));
            ConstituencyCount { ons_code, name, mp, signature_count: n }
        })
        .collect();
    rows.sort_by(|a, b| b.signature_count.cmp(&a.signature_count).then_with(|| a.name.cmp(&b.name)));
    Ok(rows)
}

/// Constituency tables per campaign, each kept for a second.
#[derive(Default)]
pub struct Breakdowns {
    tables: RwLock<HashMap<i64, (Instant, Arc<Vec<ConstituencyCount>>)>>,
}

const BREAKDOWN_FRESH: Duration = Duration::from_secs(1);

impl Breakdowns {
    fn get_or_read(&self, campaign_id: i64, read: impl FnOnce() -> Result<Vec<ConstituencyCount>, AppError>) -> Result<Arc<Vec<ConstituencyCount>>, AppError> {
        if let Some((made, table)) = self.tables.read().expect("breakdown lock").get(&campaign_id) {
            if made.elapsed() < BREAKDOWN_FRESH {
                return Ok(table.clone());
            }
        }
        let table = Arc::new(read()?);
        self.tables.write().expect("breakdown lock").insert(campaign_id, (Instant::now(), table.clone()));
        Ok(table)
    }
}
