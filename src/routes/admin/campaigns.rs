//! Staff pages for campaigns: the list with a "new campaign" form, and one campaign's details,
//! milestone ladder and fixed targets. Editors and admins may both use them. Nothing about a
//! campaign is cached: the database is the truth, so a save shows at once on the public page,
//! in the JSON API and in the letter tool. Each change is written with its audit row in one
//! transaction; bad input re-shows the form, filled in, with the problem next to its field.
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::clock::{now_ms, DAY};
use crate::db::is_unique_violation;
use crate::domain::{EmailAddress, Slug};
use crate::error::{AppError, FieldErrors};
use crate::letters::write::MP;
use crate::models::campaigns::{self, Campaign, CampaignChanges, CampaignState, NewCampaign};
use crate::models::{audit, letter_templates, milestones, signatures, targets};
use crate::routes::admin::{form, page, respond, see_other};
use crate::routes::input::Input;
use crate::staff::session::CurrentStaff;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list)
        .service(create)
        .service(edit_page)
        .service(update)
        .service(update_milestones)
        .service(add_target)
        .service(update_target)
        .service(delete_target);
}

pub const TITLE_MAX: usize = 200;
pub const SUMMARY_MAX: usize = 500;
pub const BODY_MAX: usize = 50_000;
pub const NOTE_MAX: usize = 500;
const TARGET_FIELD_MAX: usize = 200;
const LADDER_MAX: usize = 30;
const THRESHOLD_MAX: i64 = 1_000_000_000;

/// `?done=…` after a save (post/redirect/get). Only these fixed words are ever shown.
#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

impl Done {
    pub fn notice(&self) -> Option<&'static str> {
        Some(match self.done.as_deref()? {
            "created" => "Campaign created. It is a draft until you set its state to open.",
            "created-open" => "Campaign created and open: it is on the public site now.",
            "saved" => "Changes saved. The public page and the API show them now.",
            "unchanged" => "Nothing had changed, so nothing was saved.",
            "milestones" => "Milestones saved. The public page and the API show the new target now.",
            "target-added" => "Target added. Give it a letter below so supporters can write to it.",
            "target-saved" => "Target saved.",
            "target-removed" => "Target removed. Its letter versions are kept, should it be added again with the same key.",
            "letter-saved" => "Letter saved as a new version. Letters written from now on use it.",
            "letter-restored" => "Version restored: it is saved as the newest version, and letters written from now on use it.",
            _ => return None,
        })
    }
}

/// The text of a form field, missing reading as empty. Browsers send textarea line breaks as
/// CRLF; store plain LF.
pub fn field(input: &Input, name: &str) -> String {
    input.raw(name).unwrap_or("").replace("\r\n", "\n")
}

/// The first problem per field, as pages show one message next to each field.
pub fn first_errors(errors: &FieldErrors) -> Map<String, Value> {
    errors.0.iter().filter_map(|(k, v)| v.first().map(|m| (k.clone(), Value::String(m.clone())))).collect()
}

/// The order fields appear in on the forms, so the error summary reads top to bottom.
const FIELD_ORDER: &[&str] = &["slug", "key", "title", "summary", "body_md", "content_note", "state", "closes_on", "milestones", "name", "salutation", "email"];

/// Links from the error summary to each field with a problem; field ids are `prefix` + name.
/// (A target's job title is also called `title`, and comes after its name.)
fn error_links(errors: &FieldErrors, prefix: &str) -> Vec<Value> {
    let mut fields: Vec<(&String, &Vec<String>)> = errors.0.iter().collect();
    let target_form = errors.0.contains_key("name") || errors.0.contains_key("salutation") || errors.0.contains_key("email");
    fields.sort_by_key(|(k, _)| match (k.as_str(), target_form) {
        ("title", true) => FIELD_ORDER.iter().position(|f| *f == "name").unwrap_or(0) * 2 + 1,
        (k, _) => FIELD_ORDER.iter().position(|f| *f == k).unwrap_or(FIELD_ORDER.len()) * 2,
    });
    fields.into_iter().filter_map(|(k, v)| v.first().map(|m| json!({"id": format!("{prefix}{k}"), "message": m}))).collect()
}

pub fn field_error(field: &str, message: impl Into<String>) -> FieldErrors {
    let mut e = FieldErrors::default();
    e.add(field, message);
    e
}

/// `3 March 2026, 14:05 UTC` for staff pages.
pub fn format_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|d| d.format("%-d %B %Y, %H:%M UTC").to_string()).unwrap_or_default()
}

/// The campaign at `slug`, drafts included, or 404.
pub async fn load_campaign(state: &AppState, slug: &str) -> Result<Campaign, AppError> {
    let slug = slug.to_string();
    state.db.read(move |conn| Ok(campaigns::find_by_slug(conn, &slug)?)).await?.ok_or_else(AppError::campaign_not_found)
}

/// One line of text: no control characters, trimmed, at most `max` characters.
fn line(raw: &str, what: &str, max: usize, required: bool) -> Result<String, String> {
    if raw.chars().any(char::is_control) {
        return Err(format!("{what} can't contain line breaks or other control characters."));
    }
    let t = raw.trim();
    if required && t.is_empty() {
        return Err(format!("Enter {}.", what.to_lowercase()));
    }
    if t.chars().count() > max {
        return Err(format!("{what} must be {max} characters or fewer (it has {}).", t.chars().count()));
    }
    Ok(t.to_string())
}

/// Text that may span lines: line breaks and tabs are kept, other control characters refused.
fn block(raw: &str, what: &str, max: usize) -> Result<String, String> {
    if raw.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(format!("{what} can't contain control characters."));
    }
    let t = raw.trim();
    if t.chars().count() > max {
        return Err(format!("{what} must be {max} characters or fewer (it has {}).", t.chars().count()));
    }
    Ok(t.to_string())
}

/// A milestone ladder typed as numbers separated by commas or spaces, smallest first.
pub fn parse_ladder(raw: &str) -> Result<Vec<i64>, String> {
    let parts: Vec<&str> = raw.split(|c: char| c == ',' || c == ';' || c.is_whitespace()).filter(|p| !p.is_empty()).collect();
    if parts.is_empty() {
        return Err("Enter at least one milestone, like 100, 500, 1000.".into());
    }
    if parts.len() > LADDER_MAX {
        return Err(format!("Enter at most {LADDER_MAX} milestones."));
    }
    let mut ladder = Vec::with_capacity(parts.len());
    for p in parts {
        let n: i64 = p.parse().map_err(|_| format!("“{p}” is not a whole number. Write numbers without thousands separators, like 1500, 5000."))?;
        if n <= 0 {
            return Err("Each milestone must be a whole number above zero.".into());
        }
        if n > THRESHOLD_MAX {
            return Err(format!("Each milestone must be at most {THRESHOLD_MAX}."));
        }
        if let Some(&before) = ladder.last() {
            if n <= before {
                return Err(format!("Each milestone must be bigger than the one before it ({n} comes after {before})."));
            }
        }
        ladder.push(n);
    }
    Ok(ladder)
}

fn ladder_text(ladder: &[i64]) -> String {
    ladder.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

/// The closing date as typed (`YYYY-MM-DD`): the campaign closes at the end of that day, UTC.
fn parse_closes_on(raw: &str, current: Option<i64>, now: i64) -> Result<Option<i64>, String> {
    let t = raw.trim();
    if t.is_empty() {
        return Ok(None);
    }
    let date = chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| "Enter the closing date as year-month-day, like 2026-12-31.".to_string())?;
    let at = date.and_hms_milli_opt(23, 59, 59, 999).map(|d| d.and_utc().timestamp_millis()).ok_or("Enter a real date.")?;
    // A date already passed is refused unless it is the one already stored, so editing a
    // campaign that closed on its date does not force a new date.
    if at < now && Some(at) != current {
        return Err("The closing date can't be in the past.".into());
    }
    if at > now + 5 * 366 * DAY {
        return Err("The closing date must be within five years.".into());
    }
    Ok(Some(at))
}

fn closes_on_text(ms: Option<i64>) -> String {
    ms.and_then(chrono::DateTime::from_timestamp_millis).map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default()
}

/// A campaign's fields as typed, for refilling the form.
#[derive(Serialize, Clone, Default)]
struct CampaignForm {
    slug: String,
    title: String,
    summary: String,
    body_md: String,
    content_note: String,
    state: String,
    closes_on: String,
    milestones: String,
    /// The weekly digest to MPs' offices (only on the edit page; a new campaign starts without).
    mp_digest: bool,
}

impl CampaignForm {
    fn read(input: &mut Input) -> Self {
        CampaignForm {
            slug: field(input, "slug").trim().to_string(),
            title: field(input, "title"),
            summary: field(input, "summary"),
            body_md: field(input, "body_md"),
            content_note: field(input, "content_note"),
            state: field(input, "state"),
            closes_on: field(input, "closes_on"),
            milestones: field(input, "milestones"),
            // An unticked box is not sent at all, so missing means off.
            mp_digest: input.flag("mp_digest"),
        }
    }

    fn of(c: &Campaign) -> Self {
        CampaignForm {
            slug: c.slug.clone(),
            title: c.title.clone(),
            summary: c.summary.clone(),
            body_md: c.body_md.clone(),
            content_note: c.content_note.clone().unwrap_or_default(),
            state: c.state.clone(),
            closes_on: closes_on_text(c.closes_at),
            milestones: String::new(),
            mp_digest: c.mp_digest,
        }
    }

    /// The details every campaign has (not the slug or ladder).
    fn details(&self, errors: &mut FieldErrors, current_closes_at: Option<i64>) -> Option<Details> {
        let mut check = |field: &str, r: Result<String, String>| r.map_err(|e| errors.add(field, e)).ok();
        let title = check("title", line(&self.title, "The title", TITLE_MAX, true));
        let summary = check("summary", block(&self.summary, "The summary", SUMMARY_MAX));
        let body_md = check("body_md", block(&self.body_md, "The page text", BODY_MAX));
        let content_note = check("content_note", block(&self.content_note, "The content note", NOTE_MAX));
        let state = CampaignState::parse(self.state.trim());
        if state.is_none() {
            errors.add("state", "Choose draft, open or closed.");
        }
        let closes_at = parse_closes_on(&self.closes_on, current_closes_at, now_ms()).map_err(|e| errors.add("closes_on", e)).ok();
        Some(Details {
            title: title?,
            summary: summary?,
            body_md: body_md?,
            content_note: content_note.filter(|n| !n.is_empty()),
            state: state?,
            closes_at: closes_at?,
        })
    }
}

struct Details {
    title: String,
    summary: String,
    body_md: String,
    content_note: Option<String>,
    state: CampaignState,
    closes_at: Option<i64>,
}

/// A fixed target's fields as typed.
#[derive(Serialize, Clone, Default)]
struct TargetForm {
    key: String,
    name: String,
    title: String,
    salutation: String,
    email: String,
}

impl TargetForm {
    fn read(input: &Input) -> Self {
        TargetForm {
            key: field(input, "key").trim().to_string(),
            name: field(input, "name"),
            title: field(input, "title"),
            salutation: field(input, "salutation"),
            email: field(input, "email"),
        }
    }

    fn of(t: &targets::Target) -> Self {
        TargetForm { key: t.key.clone(), name: t.name.clone(), title: t.title.clone(), salutation: t.salutation.clone(), email: t.email.clone() }
    }

    /// Checks the details (not the key); returns them trimmed.
    fn parse(&self, errors: &mut FieldErrors) -> Option<TargetForm> {
        let mut check = |field: &str, r: Result<String, String>| r.map_err(|e| errors.add(field, e)).ok();
        let name = check("name", line(&self.name, "The name", TARGET_FIELD_MAX, true));
        let title = check("title", line(&self.title, "The job title", TARGET_FIELD_MAX, true));
        let salutation = check("salutation", line(&self.salutation, "The greeting", TARGET_FIELD_MAX, true));
        let email = if self.email.trim().is_empty() {
            errors.add("email", "Enter the email address letters go to.");
            None
        } else {
            EmailAddress::parse(&self.email).map(|e| e.as_str().to_string()).map_err(|e| errors.add("email", e)).ok()
        };
        Some(TargetForm { key: self.key.clone(), name: name?, title: title?, salutation: salutation?, email: email? })
    }
}

fn parse_key(raw: &str) -> Result<String, String> {
    if raw == MP {
        return Err("“mp” is kept for each writer's own MP. Choose another key, like justice-secretary.".into());
    }
    Slug::parse(raw).map(|s| s.as_str().to_string())
}

// ---------------------------------------------------------------------------------------------
// The list and a new campaign

#[derive(Serialize)]
struct Row {
    slug: String,
    title: String,
    state: &'static str,
    signature_count: i64,
    updated: String,
}

async fn list_page(state: &AppState, req: &HttpRequest, staff: &CurrentStaff, status: StatusCode, values: CampaignForm, errors: &FieldErrors, notice: Option<&str>) -> Result<HttpResponse, AppError> {
    let rows = state
        .db
        .read(|conn| {
            let now = now_ms();
            let mut rows = Vec::new();
            for c in campaigns::list_all(conn)? {
                rows.push(Row {
                    state: c.effective_state(now).as_str(),
                    signature_count: signatures::confirmed_count(conn, c.id)?,
                    updated: format_time(c.updated_at),
                    slug: c.slug,
                    title: c.title,
                });
            }
            Ok(rows)
        })
        .await?;
    let mut ctx = tera::Context::new();
    ctx.insert("campaigns", &rows);
    ctx.insert("values", &values);
    ctx.insert("errors", &first_errors(errors));
    ctx.insert("error_count", &errors.0.len());
    ctx.insert("error_links", &error_links(errors, ""));
    ctx.insert("notice", &notice);
    ctx.insert("limits", &json!({"title": TITLE_MAX, "summary": SUMMARY_MAX, "body": BODY_MAX, "note": NOTE_MAX}));
    Ok(page(state, req, Some(&staff.0), status, "admin/campaigns.html", ctx))
}

#[get("/admin/campaigns")]
async fn list(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, done: web::Query<Done>) -> HttpResponse {
    let values = CampaignForm { state: "draft".into(), milestones: "100, 500, 1000, 5000, 10000".into(), ..Default::default() };
    let r = list_page(&state, &req, &staff, StatusCode::OK, values, &FieldErrors::default(), done.notice()).await;
    respond(&state, r)
}

#[post("/admin/campaigns")]
async fn create(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, body: web::Payload) -> HttpResponse {
    let r = async {
        let mut input = form(&req, &state, body).await?;
        let values = CampaignForm::read(&mut input);
        let mut errors = FieldErrors::default();
        let slug = Slug::parse(&values.slug).map_err(|e| errors.add("slug", e)).ok();
        let details = values.details(&mut errors, None);
        let ladder = parse_ladder(&values.milestones).map_err(|e| errors.add("milestones", e)).ok();
        let taken = || field_error("slug", "Another campaign already uses this address. Choose another.");
        if let Some(s) = &slug {
            // Said with the other problems; checked again when saving, for a twin request.
            let s = s.as_str().to_string();
            if state.db.read(move |conn| Ok(campaigns::find_by_slug(conn, &s)?)).await?.is_some() {
                errors.add("slug", "Another campaign already uses this address. Choose another.");
            }
        }
        let (Some(slug), Some(details), Some(ladder), true) = (slug, details, ladder, errors.is_empty()) else {
            return list_page(&state, &req, &staff, StatusCode::UNPROCESSABLE_ENTITY, values, &errors, None).await;
        };
        let (staff_id, staff_name) = (staff.0.id, staff.0.name.clone());
        let slug_text = slug.as_str().to_string();
        let open = details.state == CampaignState::Open;
        let created = state
            .db
            .write(move |conn| {
                if campaigns::find_by_slug(conn, &slug_text)?.is_some() {
                    return Ok(false);
                }
                let now = now_ms();
                let id = campaigns::insert(
                    conn,
                    &NewCampaign {
                        slug: &slug_text,
                        title: &details.title,
                        summary: &details.summary,
                        body_md: &details.body_md,
                        content_note: details.content_note.as_deref(),
                        state: details.state.as_str(),
                        closes_at: details.closes_at,
                        created_at: now,
                        updated_at: now,
                    },
                )?;
                for t in &ladder {
                    milestones::insert(conn, id, *t)?;
                }
                let detail = format!("created campaign {slug_text} ({}), milestones {}", details.state.as_str(), ladder_text(&ladder));
                audit::record(conn, Some(staff_id), &staff_name, "campaign.create", &detail, now)?;
                Ok(true)
            })
            .await;
        match created {
            Ok(true) => Ok(see_other(&format!("/admin/campaigns/{}?done={}", slug.as_str(), if open { "created-open" } else { "created" }))),
            Ok(false) => list_page(&state, &req, &staff, StatusCode::UNPROCESSABLE_ENTITY, values, &taken(), None).await,
            // A twin request took the slug between the check and the insert.
            Err(e) if is_unique_violation(&e) => list_page(&state, &req, &staff, StatusCode::UNPROCESSABLE_ENTITY, values, &taken(), None).await,
            Err(e) => Err(e),
        }
    }
    .await;
    respond(&state, r)
}

// ---------------------------------------------------------------------------------------------
// One campaign

/// What the edit page shows instead of the stored values when a form on it was refused.
#[derive(Default)]
struct Refused {
    details: Option<(CampaignForm, FieldErrors)>,
    milestones: Option<(String, FieldErrors)>,
    new_target: Option<(TargetForm, FieldErrors)>,
    target: Option<(String, TargetForm, FieldErrors)>,
}

impl Refused {
    /// The refused form's problems, with the prefix of its fields' ids.
    fn errors(&self) -> Option<(&FieldErrors, String)> {
        if let Some((_, e)) = &self.details {
            return Some((e, String::new()));
        }
        if let Some((_, e)) = &self.milestones {
            return Some((e, String::new()));
        }
        if let Some((_, e)) = &self.new_target {
            return Some((e, "new-target-".into()));
        }
        self.target.as_ref().map(|(key, _, e)| (e, format!("target-{key}-")))
    }
}

async fn edit(state: &AppState, req: &HttpRequest, staff: &CurrentStaff, slug: &str, status: StatusCode, refused: Refused, notice: Option<&str>) -> Result<HttpResponse, AppError> {
    let campaign = load_campaign(state, slug).await?;
    let id = campaign.id;
    let (ladder, target_list, versions) = state
        .db
        .read(move |conn| Ok((milestones::ladder(conn, id)?, targets::for_campaign(conn, id)?, letter_templates::latest_versions(conn, id)?)))
        .await?;
    let version_of = |key: &str| versions.iter().find(|(k, _)| k == key).map(|(_, v)| *v);

    let mut ctx = tera::Context::new();
    let now = now_ms();
    ctx.insert("campaign", &json!({
        "slug": campaign.slug,
        "title": campaign.title,
        "state": campaign.state,
        "effective_state": campaign.effective_state(now).as_str(),
        "public": campaign.state != CampaignState::Draft.as_str(),
        "updated": format_time(campaign.updated_at),
        "closed": campaign.closed_at.map(format_time),
    }));
    let (details, details_errors) = refused.details.clone().unwrap_or_else(|| (CampaignForm::of(&campaign), FieldErrors::default()));
    ctx.insert("details", &details);
    ctx.insert("details_errors", &first_errors(&details_errors));
    let (ladder_value, ladder_errors) = refused.milestones.clone().unwrap_or_else(|| (ladder_text(&ladder), FieldErrors::default()));
    ctx.insert("milestones", &ladder_value);
    ctx.insert("milestones_errors", &first_errors(&ladder_errors));
    let (new_target, new_target_errors) = refused.new_target.clone().unwrap_or_default();
    ctx.insert("new_target", &new_target);
    ctx.insert("new_target_errors", &first_errors(&new_target_errors));
    let rows: Vec<Value> = target_list
        .iter()
        .map(|t| match &refused.target {
            Some((key, values, errors)) if *key == t.key => json!({"key": t.key, "label": t.name, "values": values, "errors": first_errors(errors)}),
            _ => json!({"key": t.key, "label": t.name, "values": TargetForm::of(t), "errors": {}}),
        })
        .collect();
    ctx.insert("targets", &rows);
    let mut letters = vec![json!({"key": MP, "label": "Each writer's own MP", "version": version_of(MP)})];
    letters.extend(target_list.iter().map(|t| json!({"key": t.key, "label": format!("{} ({})", t.name, t.title), "version": version_of(&t.key)})));
    ctx.insert("letters", &letters);
    let (error_count, links) = refused.errors().map_or((0, Vec::new()), |(e, prefix)| (e.0.len(), error_links(e, &prefix)));
    ctx.insert("error_count", &error_count);
    ctx.insert("error_links", &links);
    ctx.insert("notice", &notice);
    ctx.insert("limits", &json!({"title": TITLE_MAX, "summary": SUMMARY_MAX, "body": BODY_MAX, "note": NOTE_MAX}));
    Ok(page(state, req, Some(&staff.0), status, "admin/campaign_edit.html", ctx))
}

#[get("/admin/campaigns/{slug}")]
async fn edit_page(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, slug: web::Path<String>, done: web::Query<Done>) -> HttpResponse {
    let r = edit(&state, &req, &staff, &slug, StatusCode::OK, Refused::default(), done.notice()).await;
    respond(&state, r)
}

/// Names of the fields that differ, for the audit log.
fn changed(pairs: &[(&str, bool)]) -> Vec<String> {
    pairs.iter().filter(|(_, differs)| *differs).map(|(name, _)| name.to_string()).collect()
}

#[post("/admin/campaigns/{slug}")]
async fn update(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, slug: web::Path<String>, body: web::Payload) -> HttpResponse {
    let r = async {
        let mut input = form(&req, &state, body).await?;
        let campaign = load_campaign(&state, &slug).await?;
        let values = CampaignForm { slug: campaign.slug.clone(), ..CampaignForm::read(&mut input) };
        let mut errors = FieldErrors::default();
        let Some(d) = values.details(&mut errors, campaign.closes_at) else {
            let refused = Refused { details: Some((values, errors)), ..Default::default() };
            return edit(&state, &req, &staff, &slug, StatusCode::UNPROCESSABLE_ENTITY, refused, None).await;
        };
        let (staff_id, staff_name) = (staff.0.id, staff.0.name.clone());
        let mp_digest = values.mp_digest;
        // The digest worker's weeks follow the app's clock (which tests move).
        let clock_now = state.clock.now();
        let saved = state
            .db
            .write(move |conn| {
                let c = campaigns::find(conn, campaign.id)?.ok_or_else(AppError::campaign_not_found)?;
                let mut what = changed(&[
                    ("title", c.title != d.title),
                    // Stored text may carry whitespace the form trims (the shipped files do).
                    ("summary", c.summary.trim() != d.summary),
                    ("page text", c.body_md.trim() != d.body_md),
                    ("content note", c.content_note.as_deref().map(str::trim).filter(|n| !n.is_empty()) != d.content_note.as_deref()),
                    ("closing date", c.closes_at != d.closes_at),
                ]);
                if c.state != d.state.as_str() {
                    what.push(format!("state ({} → {})", c.state, d.state.as_str()));
                }
                if c.mp_digest != mp_digest {
                    what.push(format!("weekly digest to MPs' offices ({})", if mp_digest { "turned on" } else { "turned off" }));
                }
                if what.is_empty() {
                    return Ok(false);
                }
                let now = now_ms();
                // closed_at records when staff closed it (signature retention counts from it).
                let closed_at = match d.state {
                    CampaignState::Closed if c.state == CampaignState::Closed.as_str() => c.closed_at.or(Some(now)),
                    CampaignState::Closed => Some(now),
                    _ => None,
                };
                let changes = CampaignChanges {
                    title: &d.title,
                    summary: &d.summary,
                    body_md: &d.body_md,
                    content_note: d.content_note.as_deref(),
                    state: d.state.as_str(),
                    closes_at: d.closes_at,
                    closed_at,
                    mp_digest,
                };
                campaigns::update(conn, c.id, &changes, now)?;
                if mp_digest && !c.mp_digest {
                    crate::workers::mp_digest::turned_on(conn, c.id, clock_now, now)?;
                }
                audit::record(conn, Some(staff_id), &staff_name, "campaign.update", &format!("{}: changed {}", c.slug, what.join(", ")), now)?;
                Ok(true)
            })
            .await?;
        Ok(see_other(&format!("/admin/campaigns/{slug}?done={}", if saved { "saved" } else { "unchanged" })))
    }
    .await;
    respond(&state, r)
}

#[post("/admin/campaigns/{slug}/milestones")]
async fn update_milestones(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, slug: web::Path<String>, body: web::Payload) -> HttpResponse {
    let r = async {
        let input = form(&req, &state, body).await?;
        let campaign = load_campaign(&state, &slug).await?;
        let raw = field(&input, "milestones");
        let ladder = match parse_ladder(&raw) {
            Ok(l) => l,
            Err(e) => {
                let refused = Refused { milestones: Some((raw, field_error("milestones", e))), ..Default::default() };
                return edit(&state, &req, &staff, &slug, StatusCode::UNPROCESSABLE_ENTITY, refused, None).await;
            }
        };
        let (staff_id, staff_name) = (staff.0.id, staff.0.name.clone());
        let saved = state
            .db
            .write(move |conn| {
                let before = milestones::ladder(conn, campaign.id)?;
                if before == ladder {
                    return Ok(false);
                }
                let now = now_ms();
                milestones::replace_ladder(conn, campaign.id, &ladder)?;
                campaigns::touch(conn, campaign.id, now)?;
                let detail = format!("{}: milestones {} → {}", campaign.slug, ladder_text(&before), ladder_text(&ladder));
                audit::record(conn, Some(staff_id), &staff_name, "campaign.milestones", &detail, now)?;
                Ok(true)
            })
            .await?;
        Ok(see_other(&format!("/admin/campaigns/{slug}?done={}#milestones-heading", if saved { "milestones" } else { "unchanged" })))
    }
    .await;
    respond(&state, r)
}

#[post("/admin/campaigns/{slug}/targets")]
async fn add_target(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, slug: web::Path<String>, body: web::Payload) -> HttpResponse {
    let r = async {
        let input = form(&req, &state, body).await?;
        let campaign = load_campaign(&state, &slug).await?;
        let values = TargetForm::read(&input);
        let mut errors = FieldErrors::default();
        let key = parse_key(&values.key).map_err(|e| errors.add("key", e)).ok();
        let parsed = values.parse(&mut errors);
        let refuse = |errors: FieldErrors, values: TargetForm| Refused { new_target: Some((values, errors)), ..Default::default() };
        let (Some(key), Some(t)) = (key, parsed) else {
            return edit(&state, &req, &staff, &slug, StatusCode::UNPROCESSABLE_ENTITY, refuse(errors, values), None).await;
        };
        let taken = || field_error("key", "This campaign already has a target with this key. Choose another.");
        let (staff_id, staff_name) = (staff.0.id, staff.0.name.clone());
        let added = state
            .db
            .write(move |conn| {
                if targets::find_by_key(conn, campaign.id, &key)?.is_some() {
                    return Ok(false);
                }
                let now = now_ms();
                let position = targets::next_position(conn, campaign.id)?;
                let new = targets::NewTarget { campaign_id: campaign.id, key: &key, name: &t.name, title: &t.title, salutation: &t.salutation, email: &t.email, position };
                targets::insert(conn, &new)?;
                campaigns::touch(conn, campaign.id, now)?;
                audit::record(conn, Some(staff_id), &staff_name, "target.create", &format!("{}: added target {key} ({})", campaign.slug, t.name), now)?;
                Ok(true)
            })
            .await;
        match added {
            Ok(true) => Ok(see_other(&format!("/admin/campaigns/{slug}?done=target-added#letters-heading"))),
            Ok(false) => edit(&state, &req, &staff, &slug, StatusCode::UNPROCESSABLE_ENTITY, refuse(taken(), values), None).await,
            Err(e) if is_unique_violation(&e) => edit(&state, &req, &staff, &slug, StatusCode::UNPROCESSABLE_ENTITY, refuse(taken(), values), None).await,
            Err(e) => Err(e),
        }
    }
    .await;
    respond(&state, r)
}

async fn load_target(state: &AppState, campaign_id: i64, key: &str) -> Result<targets::Target, AppError> {
    let key = key.to_string();
    state.db.read(move |conn| Ok(targets::find_by_key(conn, campaign_id, &key)?)).await?.ok_or_else(AppError::not_found)
}

#[post("/admin/campaigns/{slug}/targets/{key}")]
async fn update_target(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, path: web::Path<(String, String)>, body: web::Payload) -> HttpResponse {
    let (slug, key) = path.into_inner();
    let r = async {
        let input = form(&req, &state, body).await?;
        let campaign = load_campaign(&state, &slug).await?;
        let target = load_target(&state, campaign.id, &key).await?;
        let values = TargetForm { key: target.key.clone(), ..TargetForm::read(&input) };
        let mut errors = FieldErrors::default();
        let Some(t) = values.parse(&mut errors) else {
            let refused = Refused { target: Some((key.clone(), values, errors)), ..Default::default() };
            return edit(&state, &req, &staff, &slug, StatusCode::UNPROCESSABLE_ENTITY, refused, None).await;
        };
        let what = changed(&[("name", target.name != t.name), ("title", target.title != t.title), ("greeting", target.salutation != t.salutation), ("email", target.email != t.email)]);
        if what.is_empty() {
            return Ok(see_other(&format!("/admin/campaigns/{slug}?done=unchanged")));
        }
        let (staff_id, staff_name) = (staff.0.id, staff.0.name.clone());
        state
            .db
            .write(move |conn| {
                let now = now_ms();
                targets::update(conn, target.id, &t.name, &t.title, &t.salutation, &t.email)?;
                campaigns::touch(conn, campaign.id, now)?;
                audit::record(conn, Some(staff_id), &staff_name, "target.update", &format!("{}: target {}: changed {}", campaign.slug, target.key, what.join(", ")), now)?;
                Ok(())
            })
            .await?;
        Ok(see_other(&format!("/admin/campaigns/{slug}?done=target-saved")))
    }
    .await;
    respond(&state, r)
}

#[post("/admin/campaigns/{slug}/targets/{key}/delete")]
async fn delete_target(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, path: web::Path<(String, String)>, body: web::Payload) -> HttpResponse {
    let (slug, key) = path.into_inner();
    let r = async {
        form(&req, &state, body).await?;
        let campaign = load_campaign(&state, &slug).await?;
        let target = load_target(&state, campaign.id, &key).await?;
        let (staff_id, staff_name) = (staff.0.id, staff.0.name.clone());
        state
            .db
            .write(move |conn| {
                let now = now_ms();
                targets::delete(conn, target.id)?;
                campaigns::touch(conn, campaign.id, now)?;
                audit::record(conn, Some(staff_id), &staff_name, "target.delete", &format!("{}: removed target {} ({})", campaign.slug, target.key, target.name), now)?;
                Ok(())
            })
            .await?;
        Ok(see_other(&format!("/admin/campaigns/{slug}?done=target-removed")))
    }
    .await;
    respond(&state, r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ladders_are_increasing_positive_whole_numbers() {
        assert_eq!(parse_ladder("100, 500 1000\n5000").unwrap(), vec![100, 500, 1000, 5000]);
        assert!(parse_ladder("").unwrap_err().contains("at least one"));
        assert!(parse_ladder("500, 100").unwrap_err().contains("bigger"));
        assert!(parse_ladder("100, 100").unwrap_err().contains("bigger"));
        assert!(parse_ladder("0, 10").unwrap_err().contains("above zero"));
        assert!(parse_ladder("-5").unwrap_err().contains("above zero"));
        assert!(parse_ladder("1.5k").unwrap_err().contains("not a whole number"));
        assert!(parse_ladder("99999999999999999999").unwrap_err().contains("not a whole number"));
    }

    #[test]
    fn closing_dates_end_that_day_in_utc() {
        let now = chrono::NaiveDate::from_ymd_opt(2026, 6, 1).unwrap().and_hms_opt(12, 0, 0).unwrap().and_utc().timestamp_millis();
        let at = parse_closes_on("2026-06-01", None, now).unwrap().unwrap();
        assert_eq!(closes_on_text(Some(at)), "2026-06-01");
        assert!(at > now && at - now < DAY / 2);
        assert_eq!(parse_closes_on(" ", None, now), Ok(None));
        assert!(parse_closes_on("2026-05-31", None, now).is_err());
        let past = parse_closes_on("2026-05-31", None, now - 2 * DAY).unwrap();
        assert_eq!(parse_closes_on("2026-05-31", past, now), Ok(past), "an unchanged past date is kept");
        assert!(parse_closes_on("31/12/2026", None, now).is_err());
        assert!(parse_closes_on("2026-02-30", None, now).is_err());
        assert!(parse_closes_on("2040-01-01", None, now).is_err());
    }

    #[test]
    fn target_keys_are_slugs_other_than_mp() {
        assert_eq!(parse_key("home-secretary").unwrap(), "home-secretary");
        assert!(parse_key("mp").is_err());
        assert!(parse_key("Home Secretary").is_err());
    }

    #[test]
    fn lines_refuse_control_characters() {
        assert!(line("a\r\nb", "The name", 10, true).is_err());
        assert_eq!(line("  x ", "The name", 10, true).unwrap(), "x");
        assert!(line("", "The name", 10, true).unwrap_err().contains("Enter the name"));
        assert!(block("a\u{0}b", "The text", 10).is_err());
        assert_eq!(block("a\n\tb", "The text", 10).unwrap(), "a\n\tb");
    }
}
