//! The letter template editor: one letter per campaign and recipient (`mp`, or a fixed target's
//! key). Saving checks the template first (`letters::validate`) and refuses it with the line and
//! the reason; every save is a new version recording who and when, and any version can be
//! restored (as a new version, so history is never rewritten). Preview renders with sample data
//! for a real constituency and saves nothing. The files under `letters/` only seed a new
//! database; after that these versions are the truth.
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Serialize;
use serde_json::{json, Value};

use crate::clock::now_ms;
use crate::db::is_unique_violation;
use crate::error::AppError;
use crate::letters::render::{self, CampaignContext, RenderedLetter, TargetContext, VARIABLES};
use crate::letters::validate::{self, LetterProblems, Problem, BODY_MAX, SUBJECT_MAX};
use crate::letters::write::MP;
use crate::models::campaigns::Campaign;
use crate::models::{audit, letter_templates, targets};
use crate::routes::admin::campaigns::{field, format_time, load_campaign, Done};
use crate::routes::admin::{form, page, respond, see_other};
use crate::staff::session::CurrentStaff;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(editor).service(save).service(preview).service(show_version).service(restore);
}

/// A starting point for a recipient with no letter yet; it passes validation as it stands.
const STARTER_BODY: &str = "{{ target.salutation }},

I am writing to ask for your support for {{ campaign.title }}.

[Say what the campaign asks for, and why it matters.]
{% if personal_edit %}
{{ personal_edit }}
{% endif %}
I would be grateful for a reply.

Yours sincerely,

{{ writer.name }}
{{ writer.address.line1 }}
{% if writer.address.line2 %}{{ writer.address.line2 }}
{% endif %}{{ writer.address.town }}
{{ writer.postcode }}
";

/// Who a letter goes to, as the editor shows it and as previews address it.
struct Recipient {
    key: String,
    label: String,
    to: String,
    context: TargetContext,
}

async fn recipient(state: &AppState, campaign: &Campaign, key: &str) -> Result<Recipient, AppError> {
    if key == MP {
        let sample = validate::sample_mp();
        return Ok(Recipient {
            key: MP.into(),
            label: "each writer's own MP".into(),
            to: format!("{} (a sample MP: each writer's letter goes to their own MP)", sample.name),
            context: sample,
        });
    }
    let (id, k) = (campaign.id, key.to_string());
    let t = state.db.read(move |conn| Ok(targets::find_by_key(conn, id, &k)?)).await?.ok_or_else(AppError::not_found)?;
    Ok(Recipient {
        key: t.key,
        label: format!("{} ({})", t.name, t.title),
        to: format!("{} <{}>", t.name, t.email),
        context: TargetContext { name: t.name, salutation: t.salutation, title: t.title },
    })
}

#[derive(Serialize)]
struct VersionRow {
    version: i64,
    created_by: String,
    when: String,
    current: bool,
}

/// What the editor shows besides the stored letter.
#[derive(Default)]
struct Shown {
    /// Text to put in the form instead of the current version.
    values: Option<(String, String)>,
    problems: LetterProblems,
    preview: Option<RenderedLetter>,
    /// A line above the form, e.g. when an old version needs fixing before it can be restored.
    message: Option<String>,
    /// The confirmation after a save (post/redirect/get).
    notice: Option<&'static str>,
}

fn problem_texts(problems: &[Problem]) -> Vec<String> {
    problems.iter().map(ToString::to_string).collect()
}

async fn editor_page(state: &AppState, req: &HttpRequest, staff: &CurrentStaff, slug: &str, key: &str, status: StatusCode, shown: Shown) -> Result<HttpResponse, AppError> {
    let campaign = load_campaign(state, slug).await?;
    let recipient = recipient(state, &campaign, key).await?;
    let (id, k) = (campaign.id, recipient.key.clone());
    let versions = state.db.read(move |conn| Ok(letter_templates::versions(conn, id, &k)?)).await?;
    let current = versions.first();
    let (subject, body) = match (&shown.values, current) {
        (Some((s, b)), _) => (s.clone(), b.clone()),
        (None, Some(v)) => (v.subject.clone(), v.body.clone()),
        (None, None) => (String::new(), STARTER_BODY.to_string()),
    };
    let rows: Vec<VersionRow> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| VersionRow { version: v.version, created_by: v.created_by.clone().unwrap_or_else(|| "unknown".into()), when: format_time(v.created_at), current: i == 0 })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert("campaign", &json!({"slug": campaign.slug, "title": campaign.title}));
    ctx.insert("recipient", &json!({"key": recipient.key, "label": recipient.label, "to": recipient.to, "is_mp": recipient.key == MP}));
    ctx.insert("values", &json!({"subject": subject, "body": body}));
    ctx.insert("errors", &json!({"subject": problem_texts(&shown.problems.subject), "body": problem_texts(&shown.problems.body)}));
    ctx.insert("error_count", &(usize::from(!shown.problems.subject.is_empty()) + usize::from(!shown.problems.body.is_empty())));
    ctx.insert("current_version", &current.map(|v| v.version));
    ctx.insert("versions", &rows);
    ctx.insert("variables", VARIABLES);
    ctx.insert("preview", &shown.preview.as_ref().map(|p| json!({"subject": p.subject, "body": p.body})));
    ctx.insert("message", &shown.message);
    ctx.insert("notice", &shown.notice);
    ctx.insert("limits", &json!({"subject": SUBJECT_MAX, "body": BODY_MAX}));
    Ok(page(state, req, Some(&staff.0), status, "admin/letter_edit.html", ctx))
}

fn editor_url(slug: &str, key: &str) -> String {
    format!("/admin/campaigns/{slug}/letters/{key}")
}

#[get("/admin/campaigns/{slug}/letters/{key}")]
async fn editor(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, path: web::Path<(String, String)>, done: web::Query<Done>) -> HttpResponse {
    let (slug, key) = path.into_inner();
    let r = editor_page(&state, &req, &staff, &slug, &key, StatusCode::OK, Shown { notice: done.notice(), ..Default::default() }).await;
    respond(&state, r)
}

/// Saves a checked letter as a new version with its audit row, unless it matches the current
/// version. Returns the new version number, or `None` when nothing changed.
async fn save_version(state: &AppState, staff: &CurrentStaff, campaign: &Campaign, key: &str, subject: String, body: String, restored_from: Option<i64>) -> Result<Option<i64>, AppError> {
    let attempt = || {
        let (id, slug, key, subject, body) = (campaign.id, campaign.slug.clone(), key.to_string(), subject.clone(), body.clone());
        let (staff_id, staff_name) = (staff.0.id, staff.0.name.clone());
        state.db.write(move |conn| {
            if letter_templates::current(conn, id, &key)?.is_some_and(|c| c.subject == subject && c.body == body) {
                return Ok(None);
            }
            let now = now_ms();
            let version = letter_templates::save(conn, id, &key, &subject, &body, Some(&staff_name), now)?;
            let (action, detail) = match restored_from {
                Some(old) => ("letter.restore", format!("{slug}: letter to {key}: restored version {old} as version {version}")),
                None => ("letter.save", format!("{slug}: letter to {key}: saved version {version}")),
            };
            audit::record(conn, Some(staff_id), &staff_name, action, &detail, now)?;
            Ok(Some(version))
        })
    };
    // Two saves at once can pick the same version number; the loser tries once more.
    match attempt().await {
        Err(e) if is_unique_violation(&e) => attempt().await,
        other => other,
    }
}

/// Reads the editor's form and checks the template; a template with problems comes back as the
/// editor page showing them (for both Save and Preview).
async fn checked_form(
    state: &AppState,
    req: &HttpRequest,
    staff: &CurrentStaff,
    slug: &str,
    key: &str,
    body: web::Payload,
) -> Result<Result<(Campaign, Recipient, String, String), HttpResponse>, AppError> {
    let input = form(req, state, body).await?;
    let campaign = load_campaign(state, slug).await?;
    let recipient = recipient(state, &campaign, key).await?;
    let (subject, text) = (field(&input, "subject"), field(&input, "body"));
    if let Err(problems) = validate::check_letter(&recipient.key, &subject, &text) {
        let shown = Shown { values: Some((subject, text)), problems, ..Default::default() };
        return Ok(Err(editor_page(state, req, staff, slug, key, StatusCode::UNPROCESSABLE_ENTITY, shown).await?));
    }
    Ok(Ok((campaign, recipient, subject, text)))
}

#[post("/admin/campaigns/{slug}/letters/{key}")]
async fn save(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, path: web::Path<(String, String)>, body: web::Payload) -> HttpResponse {
    let (slug, key) = path.into_inner();
    let r = async {
        let (campaign, recipient, subject, text) = match checked_form(&state, &req, &staff, &slug, &key, body).await? {
            Ok(parts) => parts,
            Err(page) => return Ok(page),
        };
        let saved = save_version(&state, &staff, &campaign, &recipient.key, subject, text, None).await?;
        Ok(see_other(&format!("{}?done={}", editor_url(&slug, &key), if saved.is_some() { "letter-saved" } else { "unchanged" })))
    }
    .await;
    respond(&state, r)
}

#[post("/admin/campaigns/{slug}/letters/{key}/preview")]
async fn preview(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, path: web::Path<(String, String)>, body: web::Payload) -> HttpResponse {
    let (slug, key) = path.into_inner();
    let r = async {
        let (campaign, recipient, subject, text) = match checked_form(&state, &req, &staff, &slug, &key, body).await? {
            Ok(parts) => parts,
            Err(page) => return Ok(page),
        };
        let ctx = validate::sample_context(recipient.context.clone(), CampaignContext { slug: campaign.slug.clone(), title: campaign.title.clone() }, true);
        let rendered = render::render_at(&format!("{slug}/{key}"), &subject, &text, &ctx, &state.config.public_url);
        let shown = match rendered {
            Ok(letter) => Shown { values: Some((subject, text)), preview: Some(letter), ..Default::default() },
            // The check renders with the same sample writer, so this is unexpected; say so plainly.
            Err(e) => Shown { values: Some((subject, text)), problems: LetterProblems { subject: vec![], body: vec![Problem { line: None, message: e.reason }] }, ..Default::default() },
        };
        let status = if shown.preview.is_some() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
        editor_page(&state, &req, &staff, &slug, &key, status, shown).await
    }
    .await;
    respond(&state, r)
}

async fn load_version(state: &AppState, campaign: &Campaign, key: &str, version: i64) -> Result<letter_templates::LetterTemplate, AppError> {
    let (id, k) = (campaign.id, key.to_string());
    state.db.read(move |conn| Ok(letter_templates::find_version(conn, id, &k, version)?)).await?.ok_or_else(AppError::not_found)
}

#[get("/admin/campaigns/{slug}/letters/{key}/versions/{version}")]
async fn show_version(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, path: web::Path<(String, String, i64)>) -> HttpResponse {
    let (slug, key, version) = path.into_inner();
    let r = async {
        let campaign = load_campaign(&state, &slug).await?;
        let recipient = recipient(&state, &campaign, &key).await?;
        let v = load_version(&state, &campaign, &recipient.key, version).await?;
        let (id, k) = (campaign.id, recipient.key.clone());
        let current = state.db.read(move |conn| Ok(letter_templates::current(conn, id, &k)?)).await?.map(|c| c.version);
        let mut ctx = tera::Context::new();
        ctx.insert("campaign", &json!({"slug": campaign.slug, "title": campaign.title}));
        ctx.insert("recipient", &json!({"key": recipient.key, "label": recipient.label}));
        let row: Value = json!({
            "version": v.version, "subject": v.subject, "body": v.body,
            "created_by": v.created_by.unwrap_or_else(|| "unknown".into()), "when": format_time(v.created_at),
            "current": current == Some(v.version),
        });
        ctx.insert("version", &row);
        Ok(page(&state, &req, Some(&staff.0), StatusCode::OK, "admin/letter_version.html", ctx))
    }
    .await;
    respond(&state, r)
}

#[post("/admin/campaigns/{slug}/letters/{key}/versions/{version}/restore")]
async fn restore(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, path: web::Path<(String, String, i64)>, body: web::Payload) -> HttpResponse {
    let (slug, key, version) = path.into_inner();
    let r = async {
        form(&req, &state, body).await?;
        let campaign = load_campaign(&state, &slug).await?;
        let recipient = recipient(&state, &campaign, &key).await?;
        let old = load_version(&state, &campaign, &recipient.key, version).await?;
        // An old version is checked again: the rules may be stricter than when it was saved,
        // and a broken letter must never become current.
        if let Err(problems) = validate::check_letter(&recipient.key, &old.subject, &old.body) {
            let shown = Shown {
                values: Some((old.subject, old.body)),
                problems,
                message: Some(format!("Version {version} can't be restored as it stands. It is in the form below: fix the problems and save it.")),
                ..Default::default()
            };
            return editor_page(&state, &req, &staff, &slug, &key, StatusCode::UNPROCESSABLE_ENTITY, shown).await;
        }
        let saved = save_version(&state, &staff, &campaign, &recipient.key, old.subject, old.body, Some(version)).await?;
        Ok(see_other(&format!("{}?done={}", editor_url(&slug, &key), if saved.is_some() { "letter-restored" } else { "unchanged" })))
    }
    .await;
    respond(&state, r)
}
