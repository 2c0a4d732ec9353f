//! Staff work on a campaign's signatures: search by name, email, postcode or constituency;
//! invalidate a confirmed signature with a reason (it leaves the public count) and restore it;
//! export the confirmed signers as CSV. Each change and each export is written to the audit
//! log in the same transaction, without the supporter's personal data.
use std::borrow::Cow;

use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::clock::{format_date, now_ms};
use crate::error::AppError;
use crate::models::campaigns::{self, Campaign};
use crate::models::signatures::{self, SignatureSearch};
use crate::models::{audit, staff::StaffMember};
use crate::routes::admin::dashboard::query_param;
use crate::routes::admin::{fail, form, page, see_other};
use crate::staff::session::CurrentStaff;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(export_csv).service(invalidate).service(restore);
}

const PER_PAGE: i64 = 50;
pub const REASON_MAX: usize = 300;
/// Longer searches match nothing useful; cut them rather than refuse them.
const QUERY_MAX: usize = 200;

/// Where a staff member was in the list, carried through the forms so they land back there.
#[derive(Debug, Clone)]
struct Place {
    q: String,
    page: i64,
}

impl Place {
    fn read(q: Option<&str>, page: Option<&str>) -> Self {
        let q: String = q.unwrap_or("").trim().chars().take(QUERY_MAX).collect();
        let page = page.and_then(|p| p.trim().parse::<i64>().ok()).unwrap_or(1).clamp(1, 1_000_000);
        Place { q, page }
    }

    fn query(&self, page: i64) -> String {
        let q: String = url::form_urlencoded::byte_serialize(self.q.as_bytes()).collect();
        format!("q={q}&page={page}")
    }
}

/// What the list shows besides the results: a notice after a change, or a refused reason.
struct View {
    place: Place,
    notice: Option<&'static str>,
    problem: Option<Problem>,
    status: StatusCode,
}

/// A refused reason, shown next to that signature's field with what was typed.
struct Problem {
    id: i64,
    reason: String,
    message: String,
}

fn parse_reason(raw: &str) -> Result<String, String> {
    if raw.chars().any(char::is_control) {
        return Err("The reason can't contain line breaks, tabs or other control characters.".into());
    }
    let reason = raw.trim();
    if reason.is_empty() {
        return Err("Enter a reason for invalidating this signature.".into());
    }
    if reason.chars().count() > REASON_MAX {
        return Err(format!("The reason must be {REASON_MAX} characters or fewer."));
    }
    Ok(reason.to_string())
}

#[derive(Serialize)]
struct Row {
    id: i64,
    name: String,
    email: String,
    postcode: String,
    constituency: Option<String>,
    state: String,
    signed: String,
    confirmed: Option<String>,
    invalidated: Option<String>,
    invalidated_reason: Option<String>,
    error: Option<String>,
    reason: String,
}

async fn find_campaign(state: &AppState, slug: String) -> Result<Campaign, AppError> {
    state.db.read(move |conn| campaigns::find_by_slug(conn, &slug)?.ok_or_else(AppError::campaign_not_found)).await
}

async fn render_list(state: &AppState, req: &HttpRequest, staff: &StaffMember, slug: String, view: View) -> HttpResponse {
    let View { place, notice, problem, status } = view;
    let search = SignatureSearch::new(&place.q);
    let offset = (place.page - 1) * PER_PAGE;
    let loaded = state
        .db
        .read(move |conn| {
            let c = campaigns::find_by_slug(conn, &slug)?.ok_or_else(AppError::campaign_not_found)?;
            let (rows, total) = signatures::search(conn, c.id, &search, PER_PAGE, offset)?;
            Ok((c, rows, total))
        })
        .await;
    let (campaign, rows, total) = match loaded {
        Ok(v) => v,
        Err(e) => return fail(state, e),
    };
    let rows: Vec<Row> = rows
        .into_iter()
        .map(|(s, constituency)| {
            let (error, reason) = match &problem {
                Some(p) if p.id == s.id => (Some(p.message.clone()), p.reason.clone()),
                _ => (None, String::new()),
            };
            Row {
                id: s.id,
                name: s.name,
                email: s.email,
                postcode: s.postcode,
                constituency,
                state: s.state,
                signed: format_date(s.created_at),
                confirmed: s.confirmed_at.map(format_date),
                invalidated: s.invalidated_at.map(format_date),
                invalidated_reason: s.invalidated_reason,
                error,
                reason,
            }
        })
        .collect();
    let pages = ((total + PER_PAGE - 1) / PER_PAGE).max(1);
    let mut ctx = tera::Context::new();
    ctx.insert("campaign", &serde_json::json!({"slug": campaign.slug, "title": campaign.title}));
    ctx.insert("q", &place.q);
    ctx.insert("page", &place.page);
    ctx.insert("pages", &pages);
    ctx.insert("total", &total);
    ctx.insert("rows", &rows);
    ctx.insert("prev_href", &(place.page > 1).then(|| format!("?{}", place.query((place.page - 1).min(pages)))));
    ctx.insert("next_href", &(place.page < pages).then(|| format!("?{}", place.query(place.page + 1))));
    ctx.insert("notice", &notice);
    // A refused reason for a row no longer on this page still needs saying.
    ctx.insert("problem", &problem.map(|p| serde_json::json!({"id": p.id, "message": p.message})));
    page(state, req, Some(staff), status, "admin/signatures.html", ctx)
}

#[get("/admin/campaigns/{slug}/signatures")]
async fn list(state: web::Data<AppState>, req: HttpRequest, path: web::Path<String>, staff: CurrentStaff) -> HttpResponse {
    let place = Place::read(query_param(&req, "q").as_deref(), query_param(&req, "page").as_deref());
    // Only known words are shown, so the notice cannot be used to put text on the page.
    let notice = match query_param(&req, "done").as_deref() {
        Some("invalidated") => Some("Signature invalidated. It no longer counts."),
        Some("restored") => Some("Signature restored. It counts again."),
        _ => None,
    };
    render_list(&state, &req, &staff.0, path.into_inner(), View { place, notice, problem: None, status: StatusCode::OK }).await
}

fn back_to_list(campaign: &Campaign, place: &Place, done: &str, id: i64) -> HttpResponse {
    see_other(&format!("/admin/campaigns/{}/signatures?{}&done={done}#signature-{id}", campaign.slug, place.query(place.page)))
}

#[derive(Clone, Copy)]
enum Change {
    Invalidate,
    Restore,
}

/// Applies an invalidation or restore and audits it, in one transaction. Doing it twice (a
/// double click) changes nothing and is not an error.
async fn change(state: &AppState, staff: &StaffMember, campaign: &Campaign, id: i64, what: Change, reason: String) -> Result<(), AppError> {
    let (campaign_id, slug) = (campaign.id, campaign.slug.clone());
    let (staff_id, staff_name) = (staff.id, staff.name.clone());
    let changed = state
        .db
        .write(move |conn| {
            let now = now_ms();
            let changed = match what {
                Change::Invalidate => signatures::invalidate(conn, campaign_id, id, &reason, now)?,
                Change::Restore => signatures::restore(conn, campaign_id, id)?,
            };
            if changed {
                // The reason stays on the signature: it may name the supporter, so it is not copied here.
                let (action, detail) = match what {
                    Change::Invalidate => ("signature.invalidate", format!("Invalidated signature #{id} on campaign {slug}")),
                    Change::Restore => ("signature.restore", format!("Restored signature #{id} on campaign {slug}")),
                };
                audit::record(conn, Some(staff_id), &staff_name, action, &detail, now)?;
                return Ok(true);
            }
            let current = signatures::find_in_campaign(conn, campaign_id, id)?.ok_or_else(|| AppError::NotFound("signature_not_found", "There is no such signature in this campaign.".into()))?;
            match (what, current.state.as_str()) {
                (Change::Invalidate, signatures::INVALIDATED) | (Change::Restore, signatures::CONFIRMED) => Ok(false),
                (Change::Invalidate, _) => Err(AppError::Conflict("not_confirmed", "Only confirmed signatures can be invalidated; this one has not been confirmed.".into())),
                (Change::Restore, _) => Err(AppError::Conflict("not_invalidated", "Only invalidated signatures can be restored.".into())),
            }
        })
        .await?;
    if changed {
        state.counts.add(campaign_id, if matches!(what, Change::Invalidate) { -1 } else { 1 });
    }
    Ok(())
}

fn signature_id(raw: &str) -> Result<i64, AppError> {
    raw.parse::<i64>().map_err(|_| AppError::NotFound("signature_not_found", "There is no such signature in this campaign.".into()))
}

#[post("/admin/campaigns/{slug}/signatures/{id}/invalidate")]
async fn invalidate(state: web::Data<AppState>, req: HttpRequest, path: web::Path<(String, String)>, staff: CurrentStaff, body: web::Payload) -> HttpResponse {
    let input = match form(&req, &state, body).await {
        Ok(i) => i,
        Err(e) => return fail(&state, e),
    };
    let (slug, id) = path.into_inner();
    let id = match signature_id(&id) {
        Ok(id) => id,
        Err(e) => return fail(&state, e),
    };
    let place = Place::read(input.raw("q"), input.raw("page"));
    let raw_reason = input.raw("reason").unwrap_or("").to_string();
    let reason = match parse_reason(&raw_reason) {
        Ok(r) => r,
        Err(message) => {
            let problem = Problem { id, reason: raw_reason, message };
            let view = View { place, notice: None, problem: Some(problem), status: StatusCode::UNPROCESSABLE_ENTITY };
            return render_list(&state, &req, &staff.0, slug, view).await;
        }
    };
    let campaign = match find_campaign(&state, slug).await {
        Ok(c) => c,
        Err(e) => return fail(&state, e),
    };
    match change(&state, &staff.0, &campaign, id, Change::Invalidate, reason).await {
        Ok(()) => back_to_list(&campaign, &place, "invalidated", id),
        Err(e) => fail(&state, e),
    }
}

#[post("/admin/campaigns/{slug}/signatures/{id}/restore")]
async fn restore(state: web::Data<AppState>, req: HttpRequest, path: web::Path<(String, String)>, staff: CurrentStaff, body: web::Payload) -> HttpResponse {
    let input = match form(&req, &state, body).await {
        Ok(i) => i,
        Err(e) => return fail(&state, e),
    };
    let (slug, id) = path.into_inner();
    let place = Place::read(input.raw("q"), input.raw("page"));
    let result = async {
        let id = signature_id(&id)?;
        let campaign = find_campaign(&state, slug).await?;
        change(&state, &staff.0, &campaign, id, Change::Restore, String::new()).await?;
        Ok::<_, AppError>(back_to_list(&campaign, &place, "restored", id))
    }
    .await;
    result.unwrap_or_else(|e| fail(&state, e))
}

/// Spreadsheets run a cell that starts with one of these as a formula (tab and carriage return
/// can hide such a start), so such cells get a leading apostrophe, which shows it as text.
fn csv_cell(value: &str) -> Cow<'_, str> {
    if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{value}"))
    } else {
        Cow::Borrowed(value)
    }
}

pub const CSV_HEADER: [&str; 6] = ["name", "email", "postcode", "constituency", "confirmed_at", "updates_opt_in"];

fn signatures_csv(rows: &[signatures::ExportRow]) -> Result<Vec<u8>, AppError> {
    // CRLF line ends as RFC 4180 asks; spreadsheets read either.
    let mut w = csv::WriterBuilder::new().terminator(csv::Terminator::CRLF).from_writer(Vec::new());
    w.write_record(CSV_HEADER).map_err(AppError::internal)?;
    for r in rows {
        let confirmed_at = r
            .confirmed_at
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        let constituency = r.constituency.as_deref().unwrap_or("");
        let opt_in = if r.updates_opt_in { "yes" } else { "no" };
        w.write_record([r.name.as_str(), r.email.as_str(), r.postcode.as_str(), constituency, confirmed_at.as_str(), opt_in].map(csv_cell).iter().map(|c| c.as_ref()))
            .map_err(AppError::internal)?;
    }
    w.into_inner().map_err(|e| AppError::internal(anyhow::anyhow!("could not finish the CSV: {}", e.error())))
}

#[get("/admin/campaigns/{slug}/signatures.csv")]
async fn export_csv(state: web::Data<AppState>, path: web::Path<String>, staff: CurrentStaff) -> HttpResponse {
    let result = async {
        let campaign = find_campaign(&state, path.into_inner()).await?;
        let (campaign_id, slug) = (campaign.id, campaign.slug.clone());
        let (staff_id, staff_name) = (staff.0.id, staff.0.name.clone());
        let rows = state
            .db
            .write(move |conn| {
                // The audit row first: it takes SQLite's write lock at the start, and if the
                // export fails the transaction takes the row back with it.
                let detail = format!("Exported the confirmed signatures of campaign {slug} as CSV");
                audit::record(conn, Some(staff_id), &staff_name, "signatures.export", &detail, now_ms())?;
                Ok(signatures::confirmed_for_export(conn, campaign_id)?)
            })
            .await?;
        let body = signatures_csv(&rows)?;
        // Slugs are lower-case letters, digits and hyphens; anything else is dropped so the header stays well-formed.
        let file: String = campaign.slug.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
        Ok::<_, AppError>(
            HttpResponse::Ok()
                .content_type("text/csv; charset=utf-8")
                .insert_header((header::CONTENT_DISPOSITION, format!("attachment; filename=\"{file}-signatures.csv\"")))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(body),
        )
    }
    .await;
    result.unwrap_or_else(|e| fail(&state, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_defused() {
        for (raw, want) in [
            ("=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"),
            ("@SUM(1)", "'@SUM(1)"),
            ("-2+3", "'-2+3"),
            ("+1", "'+1"),
            ("\t=1", "'\t=1"),
            ("\r=1", "'\r=1"),
            ("Ada Lovelace", "Ada Lovelace"),
            ("O'Brien", "O'Brien"),
            ("", ""),
        ] {
            assert_eq!(csv_cell(raw), want);
        }
    }

    #[test]
    fn reasons_are_checked() {
        assert_eq!(parse_reason("  duplicate  ").unwrap(), "duplicate");
        assert!(parse_reason("   ").is_err());
        assert!(parse_reason(&"x".repeat(REASON_MAX + 1)).is_err());
        assert!(parse_reason(&"é".repeat(REASON_MAX)).is_ok());
        assert!(parse_reason("spam\nmore").is_err());
    }

    #[test]
    fn writes_the_csv() {
        let rows = vec![signatures::ExportRow {
            name: "=1+1".into(),
            email: "a@example.com".into(),
            postcode: "NE1 4ST".into(),
            constituency: None,
            confirmed_at: Some(0),
            updates_opt_in: true,
        }];
        let text = String::from_utf8(signatures_csv(&rows).unwrap()).unwrap();
        assert_eq!(text, "name,email,postcode,constituency,confirmed_at,updates_opt_in\r\n'=1+1,a@example.com,NE1 4ST,,1970-01-01T00:00:00Z,yes\r\n");
    }

    #[test]
    fn places_survive_nonsense() {
        let p = Place::read(Some(" a&b "), Some("-3"));
        assert_eq!((p.q.as_str(), p.page), ("a&b", 1));
        assert_eq!(p.query(2), "q=a%26b&page=2");
        assert_eq!(Place::read(None, Some("99999999999999999999")).page, 1);
    }
}
