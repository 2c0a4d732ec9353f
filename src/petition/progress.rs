//! A campaign's public progress: the confirmed count, the milestone it is heading for, and
//! signatures by constituency.
use serde::Serialize;

use crate::clock::now_ms;
use crate::db::DbConn;
use crate::error::AppError;
use crate::models::campaigns::Campaign;
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

pub fn summary(conn: &mut DbConn, c: &Campaign) -> Result<CampaignSummary, AppError> {
    let count = signatures::confirmed_count(conn, c.id)?;
    let ladder = milestones::ladder(conn, c.id)?;
    Ok(CampaignSummary {
        slug: c.slug.clone(),
        title: c.title.clone(),
        state: c.effective_state(now_ms()).as_str(),
        signature_count: count,
        target: milestones::current_target(&ladder, count),
    })
}

pub fn detail(conn: &mut DbConn, c: &Campaign) -> Result<CampaignDetail, AppError> {
    let s = summary(conn, c)?;
    let counts = signatures::confirmed_by_constituency(conn, c.id)?;
    let codes: Vec<String> = counts.iter().map(|(code, _)| code.clone()).collect();
    let names = constituencies::names_and_mps(conn, &codes)?;
    let mut by_constituency: Vec<ConstituencyCount> = counts
        .into_iter()
        .map(|(ons_code, n)| {
            let (name, mp) = names.get(&ons_code).cloned().unwrap_or_else(|| (ons_code.clone(), None));
            ConstituencyCount { ons_code, name, mp, signature_count: n }
        })
        .collect();
    by_constituency.sort_by(|a, b| b.signature_count.cmp(&a.signature_count).then_with(|| a.name.cmp(&b.name)));
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
