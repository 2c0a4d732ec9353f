//! The audit log: every change staff make, who made it and when, newest first. Admins only,
//! since it names staff and what they did.
use actix_web::http::StatusCode;
use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::models::audit;
use crate::routes::admin::{fail, page, require_admin};
use crate::staff::session::CurrentStaff;
use crate::state::AppState;

const PER_PAGE: i64 = 50;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(log);
}

/// A moment as staff pages show it: machine-readable for `<time datetime>`, and for people.
/// Times are UTC, said so, as staff may be anywhere and the server's zone means nothing to them.
#[derive(Serialize, Clone, Debug)]
pub struct Stamp {
    pub iso: String,
    pub text: String,
}

pub fn stamp(ms: i64) -> Stamp {
    match chrono::DateTime::from_timestamp_millis(ms) {
        Some(t) => Stamp { iso: t.format("%Y-%m-%dT%H:%M:%SZ").to_string(), text: t.format("%-d %b %Y, %H:%M:%S UTC").to_string() },
        None => Stamp { iso: String::new(), text: "unknown".into() },
    }
}

/// `?page=N` (from 1); anything unreadable is the first page.
#[derive(Deserialize)]
pub struct Paging {
    pub page: Option<String>,
}

impl Paging {
    pub fn number(&self) -> i64 {
        self.page.as_deref().and_then(|p| p.trim().parse::<i64>().ok()).filter(|p| (1..=1_000_000).contains(p)).unwrap_or(1)
    }
}

#[derive(Serialize)]
struct Row {
    who: String,
    action: String,
    detail: String,
    when: Stamp,
}

#[get("/admin/audit")]
async fn log(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, paging: web::Query<Paging>) -> HttpResponse {
    if let Err(e) = require_admin(&staff.0) {
        return fail(&state, e);
    }
    let number = paging.number();
    // One extra row says whether there is an older page, without counting the whole log.
    let offset = (number - 1) * PER_PAGE;
    let mut rows = match state.db.read(move |c| Ok(audit::recent(c, PER_PAGE + 1, offset)?)).await {
        Ok(r) => r,
        Err(e) => return fail(&state, e),
    };
    let older = rows.len() as i64 > PER_PAGE;
    rows.truncate(PER_PAGE as usize);
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|r| Row {
            // Changes made outside the pages (`rally staff add`) are recorded as "command line".
            who: r.staff_name,
            action: r.action,
            detail: r.detail,
            when: stamp(r.created_at),
        })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert("rows", &rows);
    ctx.insert("page", &number);
    ctx.insert("older", &older);
    page(&state, &req, Some(&staff.0), StatusCode::OK, "admin/audit.html", ctx)
}

#[cfg(test)]
mod tests {
    #[test]
    fn stamps_are_utc_and_paging_is_forgiving() {
        let s = super::stamp(1_790_000_000_000);
        assert_eq!(s.iso, "2026-09-21T14:13:20Z");
        assert_eq!(s.text, "21 Sep 2026, 14:13:20 UTC");
        let p = |v: &str| super::Paging { page: Some(v.into()) }.number();
        assert_eq!((p("3"), p("0"), p("-2"), p("x"), p("99999999999")), (3, 1, 1, 1, 1));
    }
}
