//! The staff dashboard: every campaign with its signatures by state, letters delivered per
//! target and a chart of confirmed signatures per day; per campaign, signatures by
//! constituency with the MP, sortable on the server so it works without JavaScript, and what
//! letter writers said when asked whether their MP replied (per MP and per party).
use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{get, web, HttpRequest, HttpResponse};
use diesel::prelude::*;
use serde::Serialize;

use crate::admin_charts::{self, DayChart, WINDOW_DAYS};
use crate::clock::{now_ms, DAY};
use crate::db::DbConn;
use crate::error::AppError;
use crate::letters::write::MP;
use crate::models::campaigns::{self, Campaign};
use crate::models::{letters, signatures, targets};
use crate::petition::progress::{self, ConstituencyCount};
use crate::routes::admin::{fail, page};
use crate::staff::session::CurrentStaff;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(home).service(campaign_dashboard);
}

/// The first value of a query parameter. Parsed by hand so that a mangled or repeated
/// parameter shows the default view instead of an error.
pub(super) fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

#[derive(Debug, Clone, Serialize)]
struct TargetLetters {
    name: String,
    sent: i64,
}

#[derive(Debug, Clone, Serialize)]
struct CampaignStats {
    slug: String,
    title: String,
    state: &'static str,
    confirmed: i64,
    pending: i64,
    invalidated: i64,
    letters: Vec<TargetLetters>,
    chart: Option<DayChart>,
}

/// Letters delivered per target: MPs first, then the fixed targets in their order, then any
/// target since removed that still has letters.
fn letters_per_target(conn: &mut DbConn, c: &Campaign, sent: &[(i64, String, i64)]) -> QueryResult<Vec<TargetLetters>> {
    let mine: HashMap<&str, i64> = sent.iter().filter(|(id, _, _)| *id == c.id).map(|(_, key, n)| (key.as_str(), *n)).collect();
    let fixed = targets::for_campaign(conn, c.id)?;
    let mut out = vec![TargetLetters { name: "MPs (each writer’s own)".into(), sent: mine.get(MP).copied().unwrap_or(0) }];
    for t in &fixed {
        out.push(TargetLetters { name: format!("{} ({})", t.name, t.title), sent: mine.get(t.key.as_str()).copied().unwrap_or(0) });
    }
    let mut gone: Vec<(&str, i64)> = mine.iter().filter(|(k, _)| **k != MP && !fixed.iter().any(|t| t.key == **k)).map(|(k, n)| (*k, *n)).collect();
    gone.sort();
    out.extend(gone.into_iter().map(|(k, n)| TargetLetters { name: format!("{k} (no longer a target)"), sent: n }));
    Ok(out)
}

fn chart_for(conn: &mut DbConn, c: &Campaign, now: i64) -> QueryResult<Option<DayChart>> {
    let first = signatures::first_confirmed_at(conn, c.id)?;
    if first.is_none() {
        return Ok(None);
    }
    let since = (now.div_euclid(DAY) - (WINDOW_DAYS - 1)) * DAY;
    let times = signatures::confirmed_times_since(conn, c.id, since)?;
    Ok(admin_charts::per_day(&format!("chart-{}", c.id), &times, first, now))
}

fn stats(conn: &mut DbConn, c: &Campaign, by_state: &[(i64, String, i64)], sent: &[(i64, String, i64)], now: i64) -> QueryResult<CampaignStats> {
    let count = |state: &str| by_state.iter().filter(|(id, s, _)| *id == c.id && s == state).map(|(_, _, n)| *n).sum::<i64>();
    Ok(CampaignStats {
        slug: c.slug.clone(),
        title: c.title.clone(),
        state: c.effective_state(now).as_str(),
        confirmed: count(signatures::CONFIRMED),
        pending: count(signatures::PENDING),
        invalidated: count(signatures::INVALIDATED),
        letters: letters_per_target(conn, c, sent)?,
        chart: chart_for(conn, c, now)?,
    })
}

#[get("/admin")]
async fn home(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff) -> HttpResponse {
    let loaded = state
        .db
        .read(|conn| {
            let now = now_ms();
            let by_state = signatures::counts_by_campaign_and_state(conn)?;
            let sent = letters::sent_by_campaign_and_target(conn)?;
            // Staff see every campaign, drafts included.
            let all = campaigns::list_all(conn)?;
            Ok(all.iter().map(|c| stats(conn, c, &by_state, &sent, now)).collect::<QueryResult<Vec<_>>>()?)
        })
        .await;
    match loaded {
        Ok(campaigns) => {
            let mut ctx = tera::Context::new();
            ctx.insert("campaigns", &campaigns);
            page(&state, &req, Some(&staff.0), StatusCode::OK, "admin/dashboard.html", ctx)
        }
        Err(e) => fail(&state, e),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SortKey {
    Name,
    Mp,
    Count,
}

/// How the by-constituency table is sorted; anything unrecognised falls back to most signatures first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Sort {
    key: SortKey,
    descending: bool,
}

impl Sort {
    fn from_query(sort: Option<&str>, dir: Option<&str>) -> Self {
        let key = match sort {
            Some("name") => SortKey::Name,
            Some("mp") => SortKey::Mp,
            _ => SortKey::Count,
        };
        let descending = match dir {
            Some("asc") => false,
            Some("desc") => true,
            // Counts read best biggest first, names A to Z.
            _ => key == SortKey::Count,
        };
        Sort { key, descending }
    }

    fn apply(self, rows: &mut [ConstituencyCount]) {
        let fold = |s: &str| s.to_lowercase();
        rows.sort_by(|a, b| {
            let primary = match self.key {
                SortKey::Name => fold(&a.name).cmp(&fold(&b.name)),
                // Seats with no known MP go last whichever way the MPs are sorted.
                SortKey::Mp => match (&a.mp, &b.mp) {
                    (Some(x), Some(y)) => {
                        let o = fold(x).cmp(&fold(y));
                        if self.descending {
                            o.reverse()
                        } else {
                            o
                        }
                    }
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                },
                SortKey::Count => a.signature_count.cmp(&b.signature_count),
            };
            let primary = if self.descending && self.key != SortKey::Mp { primary.reverse() } else { primary };
            primary.then_with(|| fold(&a.name).cmp(&fold(&b.name)))
        });
    }

    /// A column heading: its link (which flips the order when the table is already sorted on
    /// it) and its `aria-sort`.
    fn column(self, key: SortKey, name: &str) -> serde_json::Value {
        let active = self.key == key;
        let next_desc = if active { !self.descending } else { key == SortKey::Count };
        let aria = match (active, self.descending) {
            (false, _) => "none",
            (true, true) => "descending",
            (true, false) => "ascending",
        };
        serde_json::json!({
            "href": format!("?sort={name}&dir={}#by-constituency", if next_desc { "desc" } else { "asc" }),
            "aria_sort": aria,
        })
    }
}

#[get("/admin/campaigns/{slug}/dashboard")]
async fn campaign_dashboard(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>, staff: CurrentStaff) -> HttpResponse {
    let slug = path.into_inner();
    let sort = Sort::from_query(query_param(&req, "sort").as_deref(), query_param(&req, "dir").as_deref());
    let counts = state.counts.clone();
    let loaded = state
        .db
        .read(move |conn| {
            let c = campaigns::find_by_slug(conn, &slug)?.ok_or_else(AppError::campaign_not_found)?;
            let now = now_ms();
            let by_state = signatures::counts_by_campaign_and_state(conn)?;
            let sent = letters::sent_by_campaign_and_target(conn)?;
            let stats = stats(conn, &c, &by_state, &sent, now)?;
            let detail = progress::detail(conn, &c, &counts)?;
            let unplaced = signatures::confirmed_unplaced_count(conn, c.id)?;
            let replies = crate::workers::reply_survey::results(conn, c.id)?;
            Ok((stats, detail, unplaced, replies))
        })
        .await;
    let (stats, mut detail, unplaced, replies) = match loaded {
        Ok(v) => v,
        Err(e) => return fail(&state, e),
    };
    sort.apply(&mut detail.signatures_by_constituency);
    let mut ctx = tera::Context::new();
    ctx.insert("campaign", &stats);
    ctx.insert("target", &detail.target);
    ctx.insert("constituencies", &detail.signatures_by_constituency);
    ctx.insert("unplaced", &unplaced);
    ctx.insert("replies", &replies);
    ctx.insert(
        "columns",
        &serde_json::json!({
            "name": sort.column(SortKey::Name, "name"),
            "mp": sort.column(SortKey::Mp, "mp"),
            "count": sort.column(SortKey::Count, "count"),
        }),
    );
    page(&state, &req, Some(&staff.0), StatusCode::OK, "admin/campaign_dashboard.html", ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, mp: Option<&str>, n: i64) -> ConstituencyCount {
        ConstituencyCount { ons_code: name.into(), name: name.into(), mp: mp.map(Into::into), signature_count: n }
    }

    fn names(rows: &[ConstituencyCount]) -> Vec<&str> {
        rows.iter().map(|r| r.name.as_str()).collect()
    }

    #[test]
    fn sorts_by_count_name_and_mp() {
        let mut rows = vec![row("b", Some("Zed"), 1), row("a", None, 3), row("C", Some("amy"), 2)];
        Sort::from_query(None, None).apply(&mut rows);
        assert_eq!(names(&rows), ["a", "C", "b"]);
        Sort::from_query(Some("name"), None).apply(&mut rows);
        assert_eq!(names(&rows), ["a", "b", "C"]);
        Sort::from_query(Some("name"), Some("desc")).apply(&mut rows);
        assert_eq!(names(&rows), ["C", "b", "a"]);
        Sort::from_query(Some("mp"), Some("asc")).apply(&mut rows);
        assert_eq!(names(&rows), ["C", "b", "a"]);
        Sort::from_query(Some("mp"), Some("desc")).apply(&mut rows);
        assert_eq!(names(&rows), ["b", "C", "a"], "no MP stays last");
        Sort::from_query(Some("count"), Some("asc")).apply(&mut rows);
        assert_eq!(names(&rows), ["b", "C", "a"]);
        assert_eq!(Sort::from_query(Some("nonsense"), Some("sideways")), Sort { key: SortKey::Count, descending: true });
    }
}
