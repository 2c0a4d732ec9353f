//! The MP directory for staff: when MPs were last synced or imported, how many seats have an MP
//! (and an email), a sync from the Members API, a CSV upload, and a searchable list where one
//! member's email can be corrected by hand.
//!
//! A sync makes hundreds of calls to the Members API and can take minutes, longer than a browser
//! or proxy will wait for one answer, so it runs in the background: the page says it is running
//! and shows its result (or error) when it is done. A CSV upload is quick and is answered inline
//! with its report, bad rows and all.
use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::PathBuf;

use actix_multipart::Multipart;
use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::clock::{now_ms, MINUTE};
use crate::domain::EmailAddress;
use crate::error::{AppError, FieldErrors};
use crate::models::constituencies::{self, Constituency};
use crate::models::members::{self, Member};
use crate::models::{audit, settings};
use crate::mps::{normalise_name, ImportReport};
use crate::routes::admin::audit::{stamp, Stamp};
use crate::routes::admin::{fail, form, page, see_other};
use crate::staff::csrf;
use crate::staff::session::CurrentStaff;
use crate::state::AppState;

const PER_PAGE: usize = 50;
/// The public mp_lookup.csv is a few hundred kilobytes; this leaves room without letting an
/// upload fill the disk.
const MAX_UPLOAD: usize = 10 * 1024 * 1024;
/// A background sync noted as running longer ago than this is taken to have died with its server.
const SYNC_STALE_AFTER_MS: i64 = 30 * MINUTE;
/// Settings rows for the background sync run from this page: (start time, who) while it runs,
/// and (time, error) after one failed. Successful runs are noted by `mps::sync` itself.
const SYNC_RUNNING: &str = "mps_sync_running";
const SYNC_FAILED: &str = "mps_sync_failed";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(directory).service(start_sync).service(import_upload).service(edit_email_page).service(edit_email);
}

// ---------------------------------------------------------------------------------------------
// The directory
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
struct DirectoryQuery {
    q: Option<String>,
    show: Option<String>,
    page: Option<String>,
    notice: Option<String>,
}

/// Which seats to list.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Show {
    All,
    Vacant,
    NoEmail,
}

impl Show {
    fn parse(s: Option<&str>) -> Show {
        match s {
            Some("vacant") => Show::Vacant,
            Some("no_email") => Show::NoEmail,
            _ => Show::All,
        }
    }
    fn key(self) -> &'static str {
        match self {
            Show::All => "all",
            Show::Vacant => "vacant",
            Show::NoEmail => "no_email",
        }
    }
}

#[derive(Serialize)]
struct Seat {
    ons_code: String,
    name: String,
    /// Rally has asked (an import, a sync or a lookup) who sits here.
    checked: bool,
    mp: Option<MpRow>,
}

#[derive(Serialize)]
struct MpRow {
    id: i64,
    name: String,
    party: Option<String>,
    email: Option<String>,
}

#[derive(Serialize, Default)]
struct Counts {
    constituencies: usize,
    with_mp: usize,
    vacant: usize,
    unchecked: usize,
    without_email: usize,
}

/// Every constituency with its MP. Loaded whole (about 650 seats) and searched in Rust, so a
/// search ignores case, accents and punctuation on both databases, as name matching does.
fn seats(all: Vec<Constituency>, seated: Vec<Member>) -> Vec<Seat> {
    let mut by_code: HashMap<String, Member> = HashMap::new();
    for m in seated {
        if let Some(code) = m.ons_code.clone() {
            // `seated` is newest first: should a stale row linger, the newest wins, as in lookups.
            by_code.entry(code).or_insert(m);
        }
    }
    let mut seats: Vec<Seat> = all
        .into_iter()
        .map(|c| {
            let mp = by_code.remove(&c.ons_code).map(|m| MpRow { id: m.id, name: m.name, party: m.party, email: m.email });
            Seat { checked: c.mp_checked_at.is_some() || mp.is_some(), ons_code: c.ons_code, name: c.name, mp }
        })
        .collect();
    seats.sort_by(|a, b| normalise_name(&a.name).cmp(&normalise_name(&b.name)).then_with(|| a.ons_code.cmp(&b.ons_code)));
    seats
}

fn count(seats: &[Seat]) -> Counts {
    Counts {
        constituencies: seats.len(),
        with_mp: seats.iter().filter(|s| s.mp.is_some()).count(),
        vacant: seats.iter().filter(|s| s.mp.is_none() && s.checked).count(),
        unchecked: seats.iter().filter(|s| s.mp.is_none() && !s.checked).count(),
        without_email: seats.iter().filter(|s| s.mp.as_ref().is_some_and(|m| m.email.is_none())).count(),
    }
}

/// A seat matches when the search is part of its name, its MP's name or party, or its code.
fn matches(seat: &Seat, key: &str, code: &str) -> bool {
    if key.is_empty() {
        return true;
    }
    let mp = seat.mp.as_ref();
    normalise_name(&seat.name).contains(key)
        || mp.is_some_and(|m| normalise_name(&m.name).contains(key) || m.party.as_deref().is_some_and(|p| normalise_name(p).contains(key)))
        || (!code.is_empty() && seat.ons_code.starts_with(code))
}

#[derive(Serialize)]
struct Stamped {
    when: Stamp,
    text: String,
}

/// When the MPs were last synced and imported, and the state of a background sync.
async fn history(state: &AppState) -> Result<BTreeMap<&'static str, Option<Stamped>>, AppError> {
    let now = now_ms();
    state
        .db
        .read(move |c| {
            let mut out = BTreeMap::new();
            for (name, key) in [("last_sync", settings::MPS_LAST_SYNC), ("last_import", settings::MPS_LAST_IMPORT), ("sync_running", SYNC_RUNNING), ("sync_failed", SYNC_FAILED)] {
                let mut value = settings::get_stamped(c, key)?;
                if key == SYNC_RUNNING && value.as_ref().is_some_and(|(at, _)| now - at > SYNC_STALE_AFTER_MS) {
                    value = None;
                }
                out.insert(name, value.map(|(at, text)| Stamped { when: stamp(at), text }));
            }
            Ok(out)
        })
        .await
}

/// What an upload produced, shown above the directory.
#[derive(Serialize, Default)]
struct Upload {
    summary: Option<String>,
    bad_rows: Vec<BadRowView>,
    errors: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct BadRowView {
    line: u64,
    problem: String,
}

async fn directory_page(state: &AppState, req: &HttpRequest, staff: &CurrentStaff, query: &DirectoryQuery, status: StatusCode, upload: Upload) -> HttpResponse {
    let loaded = state.db.read(|c| Ok((constituencies::all(c)?, members::seated(c)?))).await;
    let (all, seated) = match loaded {
        Ok(x) => x,
        Err(e) => return fail(state, e),
    };
    let history = match history(state).await {
        Ok(h) => h,
        Err(e) => return fail(state, e),
    };
    let seats = seats(all, seated);
    let counts = count(&seats);
    let q = query.q.as_deref().unwrap_or("").trim().chars().take(100).collect::<String>();
    let show = Show::parse(query.show.as_deref());
    let (key, code) = (normalise_name(&q), q.to_ascii_uppercase());
    let found: Vec<Seat> = seats
        .into_iter()
        .filter(|s| match show {
            Show::All => true,
            Show::Vacant => s.mp.is_none(),
            Show::NoEmail => s.mp.as_ref().is_some_and(|m| m.email.is_none()),
        })
        .filter(|s| matches(s, &key, &code))
        .collect();
    let total = found.len();
    let pages = total.div_ceil(PER_PAGE).max(1);
    let number = query.page.as_deref().and_then(|p| p.trim().parse::<usize>().ok()).filter(|p| *p >= 1).unwrap_or(1).min(pages);
    let shown: Vec<Seat> = found.into_iter().skip((number - 1) * PER_PAGE).take(PER_PAGE).collect();
    let notice = match query.notice.as_deref() {
        Some("sync_started") => Some("The sync has started. It can take a few minutes; reload this page to see how it went."),
        Some("sync_running") => Some("A sync is already running. Reload this page in a minute or two to see how it went."),
        Some("email") => Some("The email was saved. A later sync or import will replace it if Parliament publishes a different one."),
        _ => None,
    };
    let mut ctx = tera::Context::new();
    ctx.insert("history", &history);
    ctx.insert("counts", &counts);
    ctx.insert("seats", &shown);
    ctx.insert("total", &total);
    ctx.insert("q", &q);
    ctx.insert("show", show.key());
    ctx.insert("page", &number);
    ctx.insert("pages", &pages);
    ctx.insert("notice", &notice);
    ctx.insert("upload", &upload);
    ctx.insert("error_count", &upload.errors.len());
    ctx.insert("members_api", &crate::config::redact_url(state.members.base()));
    ctx.insert("required_columns", &crate::mps::REQUIRED_COLUMNS.join(", "));
    page(state, req, Some(&staff.0), status, "admin/mps.html", ctx)
}

#[get("/admin/mps")]
async fn directory(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, query: web::Query<DirectoryQuery>) -> HttpResponse {
    directory_page(&state, &req, &staff, &query, StatusCode::OK, Upload::default()).await
}

// ---------------------------------------------------------------------------------------------
// Sync from the Members API, in the background
// ---------------------------------------------------------------------------------------------

#[post("/admin/mps/sync")]
async fn start_sync(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, body: web::Payload) -> HttpResponse {
    if let Err(e) = form(&req, &state, body).await {
        return fail(&state, e);
    }
    let (staff_id, staff_name) = (staff.0.id, staff.0.name.clone());
    let name = staff_name.clone();
    // Checked and noted in one transaction, so two presses start one sync.
    let started = state
        .db
        .write(move |c| {
            let now = now_ms();
            if settings::get_stamped(c, SYNC_RUNNING)?.is_some_and(|(at, _)| now - at <= SYNC_STALE_AFTER_MS) {
                return Ok(false);
            }
            settings::put_stamped(c, SYNC_RUNNING, now, &name)?;
            audit::record(c, Some(staff_id), &name, "mps.sync", "started a sync of MPs from the Members API", now)?;
            Ok(true)
        })
        .await;
    match started {
        Ok(true) => {}
        Ok(false) => return see_other("/admin/mps?notice=sync_running"),
        Err(e) => return fail(&state, e),
    }
    let (db, client) = (state.db.clone(), state.members.clone());
    actix_web::rt::spawn(async move {
        let result = crate::mps::sync(&db, &client, false).await;
        let (detail, failure) = match &result {
            Ok(report) => (format!("sync of MPs finished: {report}"), None),
            // `{:#}` gives the whole chain ("could not list …: timed out"); it names no secret.
            Err(e) => (format!("sync of MPs failed: {e:#}"), Some(format!("{e:#}"))),
        };
        if let Err(e) = &result {
            tracing::warn!(error = %format!("{e:#}"), "MP sync from the staff page failed");
        }
        let noted = db
            .write(move |c| {
                let now = now_ms();
                settings::delete(c, SYNC_RUNNING)?;
                match &failure {
                    Some(error) => settings::put_stamped(c, SYNC_FAILED, now, error)?,
                    None => settings::delete(c, SYNC_FAILED)?,
                };
                audit::record(c, Some(staff_id), &staff_name, "mps.sync", &detail, now)?;
                Ok(())
            })
            .await;
        if let Err(e) = noted {
            tracing::error!(error = %e, "could not note the end of an MP sync");
        }
    });
    see_other("/admin/mps?notice=sync_started")
}

// ---------------------------------------------------------------------------------------------
// CSV upload
// ---------------------------------------------------------------------------------------------

/// What came in with the upload form.
#[derive(Default)]
struct Uploaded {
    token: String,
    file: Option<(String, Vec<u8>)>,
    too_large: bool,
}

/// Reads the form, stopping at the first problem; whatever was read so far (the token above
/// all) comes back with it, so the token can be checked before the problem is reported.
async fn read_upload(mut parts: Multipart) -> (Uploaded, Option<AppError>) {
    let unreadable = |e: actix_multipart::MultipartError| AppError::BadRequest("unreadable_upload", format!("The upload could not be read ({e}). Please try again."));
    let mut got = Uploaded::default();
    let mut fields = 0;
    while let Some(field) = parts.next().await {
        let mut field = match field {
            Ok(f) => f,
            Err(e) => return (got, Some(unreadable(e))),
        };
        fields += 1;
        if fields > 10 {
            return (got, Some(AppError::BadRequest("unreadable_upload", "The upload has more fields than the form sends.".into())));
        }
        let name = field.name().unwrap_or("").to_string();
        let filename = field.content_disposition().and_then(|d| d.get_filename()).unwrap_or("").to_string();
        // Stop reading at the limit: whatever is left of an oversized body is not wanted.
        let limit = if name == "file" { MAX_UPLOAD } else { 4096 };
        let mut data = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) => return (got, Some(unreadable(e))),
            };
            if data.len() + chunk.len() > limit {
                if name == "file" {
                    got.too_large = true;
                    return (got, None);
                }
                return (got, Some(AppError::PayloadTooLarge));
            }
            data.extend_from_slice(&chunk);
        }
        match name.as_str() {
            csrf::FIELD => got.token = String::from_utf8_lossy(&data).into_owned(),
            "file" => got.file = Some((filename, data)),
            _ => {}
        }
    }
    (got, None)
}

/// Refuses what is plainly not a CSV file (a spreadsheet, an image) before trying to import it.
fn not_csv(data: &[u8]) -> Option<&'static str> {
    if data.iter().all(u8::is_ascii_whitespace) {
        return Some("The file is empty. Choose the CSV file with the MPs.");
    }
    let head = &data[..data.len().min(8192)];
    if head.starts_with(b"PK\x03\x04") || head.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Some("This is a spreadsheet, not a CSV file. In your spreadsheet program use Save as → CSV UTF-8, then upload that file.");
    }
    if head.contains(&0) {
        return Some("This is not a CSV file. Upload a text file with the MPs, one constituency per line.");
    }
    None
}

/// A temporary file only this upload uses (`create_new`: never someone else's file or link).
fn write_temp(data: &[u8]) -> std::io::Result<PathBuf> {
    let mut name = [0u8; 12];
    rand::rng().fill_bytes(&mut name);
    let path = std::env::temp_dir().join(format!("rally-mps-{}.csv", hex::encode(name)));
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
    file.write_all(data)?;
    file.flush()?;
    Ok(path)
}

fn field_error(field: &str, problem: &str) -> Upload {
    Upload { errors: BTreeMap::from([(field.to_string(), problem.to_string())]), ..Upload::default() }
}

#[post("/admin/mps/import")]
async fn import_upload(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, parts: Multipart) -> HttpResponse {
    let no_query = DirectoryQuery::default();
    let oversized = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok()).is_some_and(|n| n > MAX_UPLOAD + 64 * 1024);
    let (got, problem) = if oversized { (Uploaded { too_large: true, ..Uploaded::default() }, None) } else { read_upload(parts).await };
    // The token is checked before anything else is said about the upload (so a form post
    // without one, multipart or not, gets 403). An upload too large to read may have no token
    // to check; it is refused without being used, which is safe.
    if !got.too_large || !got.token.is_empty() {
        if let Err(e) = csrf::verify(&req, &state, &got.token) {
            return fail(&state, e);
        }
    }
    if let Some(e) = problem {
        return fail(&state, e);
    }
    let refuse = |problem: &str| directory_page(&state, &req, &staff, &no_query, StatusCode::UNPROCESSABLE_ENTITY, field_error("file", problem));
    if got.too_large {
        return refuse(&format!("The file is larger than {} MB. The list of MPs is far smaller: check that this is the right file.", MAX_UPLOAD / (1024 * 1024))).await;
    }
    let Some((_filename, data)) = got.file.filter(|(name, data)| !name.is_empty() || !data.is_empty()) else {
        return refuse("Choose the CSV file with the MPs to upload.").await;
    };
    if let Some(problem) = not_csv(&data) {
        return refuse(problem).await;
    }
    let path = match write_temp(&data) {
        Ok(p) => p,
        Err(e) => return fail(&state, AppError::internal(anyhow::Error::new(e).context("could not save the uploaded CSV"))),
    };
    let db = state.db.clone();
    let imported = tokio::task::spawn_blocking(move || {
        let result = crate::mps::import_csv(&db, &path, false);
        let _ = std::fs::remove_file(&path);
        result
    })
    .await;
    let report: ImportReport = match imported {
        Ok(Ok(report)) => report,
        // `import_csv` says "could not import FILE" when the file itself is wrong (no header,
        // missing columns); what follows is for people. Anything else is ours to fix.
        Ok(Err(e)) if e.to_string().starts_with("could not import") => {
            let problem = e.chain().skip(1).map(|c| c.to_string()).collect::<Vec<_>>().join(": ");
            let mut problem = problem.trim().to_string();
            if let Some(first) = problem.get(..1) {
                problem = format!("{}{}", first.to_uppercase(), &problem[1..]);
            }
            return refuse(&format!("{problem}.")).await;
        }
        Ok(Err(e)) => return fail(&state, AppError::internal(e)),
        Err(e) => return fail(&state, AppError::internal(e)),
    };
    let summary = report.to_string().lines().next().unwrap_or_default().replace("skipped:", "skipped.");
    let (staff_id, staff_name, detail) = (staff.0.id, staff.0.name.clone(), format!("imported MPs from an uploaded CSV: {summary}"));
    if let Err(e) = state.db.write(move |c| Ok(audit::record(c, Some(staff_id), &staff_name, "mps.import", &detail, now_ms())?)).await {
        // The import itself is done and cannot be taken back; say so in the log rather than fail.
        tracing::error!(error = %e, "could not audit an MP import");
    }
    let upload = Upload { summary: Some(summary), bad_rows: report.bad_rows.iter().map(|b| BadRowView { line: b.line, problem: b.problem.clone() }).collect(), errors: BTreeMap::new() };
    directory_page(&state, &req, &staff, &no_query, StatusCode::OK, upload).await
}

// ---------------------------------------------------------------------------------------------
// One member's email
// ---------------------------------------------------------------------------------------------

#[derive(Serialize)]
struct MemberView {
    id: i64,
    name: String,
    party: Option<String>,
    email: Option<String>,
    constituency: Option<String>,
    contact_url: String,
}

async fn load_member(state: &AppState, id: i64) -> Result<MemberView, AppError> {
    let found = state
        .db
        .read(move |c| {
            let Some(m) = members::find(c, id)? else { return Ok(None) };
            let seat = match m.ons_code.as_deref() {
                Some(code) => constituencies::get(c, code)?.map(|s| s.name),
                None => None,
            };
            Ok(Some((m, seat)))
        })
        .await?;
    let (m, constituency) = found.ok_or_else(|| AppError::NotFound("not_found", "There is no such MP in Rally's directory.".into()))?;
    Ok(MemberView { contact_url: crate::mps::contact_url(m.id), id: m.id, name: m.name, party: m.party, email: m.email, constituency })
}

/// Where to go back to in the directory: the search and page the form came from.
fn back_to(q: &str, page: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let page = page.trim().parse::<usize>().ok().filter(|p| *p >= 1).unwrap_or(1);
    format!("/admin/mps?q={}&page={page}&notice=email", enc(q.trim()))
}

fn email_page(state: &AppState, req: &HttpRequest, staff: &CurrentStaff, member: &MemberView, status: StatusCode, value: Option<&str>, errors: &FieldErrors, back: (&str, &str)) -> HttpResponse {
    let mut ctx = tera::Context::new();
    ctx.insert("member", member);
    ctx.insert("value", &value.map(str::to_string).or_else(|| member.email.clone()).unwrap_or_default());
    ctx.insert("error", &errors.first("email"));
    ctx.insert("q", back.0);
    ctx.insert("page", back.1);
    page(state, req, Some(&staff.0), status, "admin/mps_member.html", ctx)
}

#[get("/admin/mps/members/{id}")]
async fn edit_email_page(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, id: web::Path<i64>) -> HttpResponse {
    match load_member(&state, id.into_inner()).await {
        Ok(member) => email_page(&state, &req, &staff, &member, StatusCode::OK, None, &FieldErrors::default(), ("", "1")),
        Err(e) => fail(&state, e),
    }
}

#[post("/admin/mps/members/{id}/email")]
async fn edit_email(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, id: web::Path<i64>, body: web::Payload) -> HttpResponse {
    let input = match form(&req, &state, body).await {
        Ok(i) => i,
        Err(e) => return fail(&state, e),
    };
    let member = match load_member(&state, id.into_inner()).await {
        Ok(m) => m,
        Err(e) => return fail(&state, e),
    };
    let raw = input.raw("email").unwrap_or("").to_string();
    let (q, page) = (input.raw("q").unwrap_or("").to_string(), input.raw("page").unwrap_or("1").to_string());
    // Blank means the MP publishes no email: letters then offer their contact page instead.
    let email = if raw.trim().is_empty() {
        None
    } else {
        match EmailAddress::parse(&raw) {
            Ok(e) => Some(e.as_str().to_string()),
            Err(problem) => {
                let mut errors = FieldErrors::default();
                errors.add("email", problem.replace("Enter your email address", "Enter the MP's email address"));
                return email_page(&state, &req, &staff, &member, StatusCode::UNPROCESSABLE_ENTITY, Some(&raw), &errors, (&q, &page));
            }
        }
    };
    if email == member.email {
        return see_other(&back_to(&q, &page));
    }
    let (staff_id, staff_name, member_id) = (staff.0.id, staff.0.name.clone(), member.id);
    let detail = format!(
        "changed the email of {} (member {}{}) from {} to {}",
        member.name,
        member.id,
        member.constituency.as_deref().map(|c| format!(", {c}")).unwrap_or_default(),
        member.email.as_deref().unwrap_or("none"),
        email.as_deref().unwrap_or("none"),
    );
    let saved = state
        .db
        .write(move |c| {
            let now = now_ms();
            if members::set_email(c, member_id, email.as_deref(), now)? == 0 {
                return Err(AppError::NotFound("not_found", "There is no such MP in Rally's directory.".into()));
            }
            audit::record(c, Some(staff_id), &staff_name, "member.email", &detail, now)?;
            Ok(())
        })
        .await;
    match saved {
        Ok(()) => see_other(&format!("{}#member-{member_id}", back_to(&q, &page))),
        Err(e) => fail(&state, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(name: &str, code: &str, mp: Option<(&str, Option<&str>)>) -> Seat {
        Seat { ons_code: code.into(), name: name.into(), checked: true, mp: mp.map(|(n, e)| MpRow { id: 1, name: n.into(), party: Some("Plaid Cymru".into()), email: e.map(Into::into) }) }
    }

    #[test]
    fn search_ignores_case_accents_and_matches_codes() {
        let s = seat("Ynys Môn", "W07000112", Some(("Llinos Medi", None)));
        let find = |q: &str| matches(&s, &normalise_name(q), &q.to_ascii_uppercase());
        assert!(find("ynys mon") && find("YNYS") && find("llinos") && find("plaid") && find("w0700") && find(""));
        assert!(!find("aldershot") && !find("E14"));
    }

    #[test]
    fn counts_split_seats() {
        let mut unchecked = seat("Nowhere", "E14000001", None);
        unchecked.checked = false;
        let c = count(&[seat("A", "E14000002", Some(("X", None))), seat("B", "E14000003", Some(("Y", Some("y@parliament.uk")))), seat("C", "E14000004", None), unchecked]);
        assert_eq!((c.constituencies, c.with_mp, c.vacant, c.unchecked, c.without_email), (4, 2, 1, 1, 1));
    }

    #[test]
    fn plainly_not_csv_is_refused() {
        assert!(not_csv(b"PK\x03\x04rest").is_some());
        assert!(not_csv(b"  \r\n").is_some());
        assert!(not_csv(b"a,b\x00c").is_some());
        assert!(not_csv(b"pcon_code,pcon_name\r\n").is_none());
        assert_eq!(back_to("ynys môn", "x"), "/admin/mps?q=ynys+m%C3%B4n&page=1&notice=email");
    }
}
