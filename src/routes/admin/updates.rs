//! Staff write an update to a campaign's signers: a draft in Markdown, a preview, a test copy to
//! themselves, then one send to every confirmed signer who asked for updates. The page shows
//! the progress while it goes out (`workers::updates` queues it, the outbox delivers it).
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use crate::clock::now_ms;
use crate::error::{AppError, FieldErrors};
use crate::models::campaigns::Campaign;
use crate::models::updates::{self, Update};
use crate::models::audit;
use crate::routes::admin::campaigns::{field, first_errors, format_time, load_campaign};
use crate::routes::admin::{form, page, respond, see_other};
use crate::routes::input::Input;
use crate::staff::session::CurrentStaff;
use crate::state::AppState;
use crate::services::mailer::Draft;
use crate::workers::updates::{context, draft, UPDATE_EMAIL};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(create).service(show).service(save).service(preview).service(test).service(send);
}

const SUBJECT_MAX: usize = 150;
const BODY_MAX: usize = 20_000;

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

impl Done {
    /// Only these fixed words are ever shown.
    fn notice(&self) -> Option<&'static str> {
        Some(match self.done.as_deref()? {
            "created" => "Draft saved. Check the preview, send yourself a test, then send it.",
            "saved" => "Draft saved.",
            "test-sent" => "A test copy is on its way to your own address.",
            "sending" => "Sending has started. This page shows how far it has got.",
            _ => return None,
        })
    }
}

/// The subject and text from the form, or the problems with them.
struct UpdateForm {
    subject: String,
    body_md: String,
    public: bool,
}

impl UpdateForm {
    fn read(input: &Input) -> (UpdateForm, FieldErrors) {
        let public = matches!(input.raw("public"), Some("yes" | "on" | "true" | "1"));
        let draft = UpdateForm { subject: field(input, "subject").trim().to_string(), body_md: field(input, "body_md").trim_end().to_string(), public };
        let mut errors = FieldErrors::default();
        if draft.subject.is_empty() {
            errors.add("subject", "Enter a subject.");
        } else if draft.subject.chars().any(char::is_control) {
            errors.add("subject", "The subject must be one line, without control characters.");
        } else if draft.subject.chars().count() > SUBJECT_MAX {
            errors.add("subject", format!("The subject must be {SUBJECT_MAX} characters or fewer (it has {}).", draft.subject.chars().count()));
        }
        if draft.body_md.trim().is_empty() {
            errors.add("body_md", "Write the update.");
        } else if draft.body_md.chars().count() > BODY_MAX {
            errors.add("body_md", format!("The update must be {BODY_MAX} characters or fewer (it has {}).", draft.body_md.chars().count()));
        } else if draft.body_md.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            errors.add("body_md", "The update contains control characters; paste it as plain text.");
        }
        (draft, errors)
    }
}

fn campaign_json(c: &Campaign) -> serde_json::Value {
    json!({"slug": c.slug, "title": c.title, "state": c.state})
}

fn update_json(u: &Update, progress: Option<&updates::Progress>) -> serde_json::Value {
    json!({
        "id": u.id,
        "subject": u.subject,
        "body_md": u.body_md,
        "public": u.public,
        "state": u.state,
        "created_by": u.created_by,
        "created": format_time(u.created_at),
        "started": u.started_at.map(format_time),
        "finished": u.finished_at.map(format_time),
        "recipients": u.recipients,
        "queued": u.queued,
        "progress": progress,
    })
}

async fn list_page(state: &AppState, req: &HttpRequest, staff: &CurrentStaff, slug: &str, status: StatusCode, refused: Option<(UpdateForm, FieldErrors)>) -> Result<HttpResponse, AppError> {
    let campaign = load_campaign(state, slug).await?;
    let id = campaign.id;
    let (all, eligible) = state
        .db
        .read(move |conn| {
            let all = updates::for_campaign(conn, id)?;
            let mut rows = Vec::with_capacity(all.len());
            for u in all {
                let p = if u.state == updates::DRAFT { None } else { Some(updates::progress(conn, u.id, UPDATE_EMAIL)?) };
                rows.push(update_json(&u, p.as_ref()));
            }
            Ok((rows, updates::eligible_count(conn, id)?))
        })
        .await?;
    let mut ctx = tera::Context::new();
    ctx.insert("campaign", &campaign_json(&campaign));
    ctx.insert("updates", &all);
    ctx.insert("eligible", &eligible);
    ctx.insert("limits", &json!({"subject": SUBJECT_MAX, "body": BODY_MAX}));
    let (values, errors) =
        refused.map(|(d, e)| (json!({"subject": d.subject, "body_md": d.body_md, "public": d.public}), e)).unwrap_or((json!({"subject": "", "body_md": "", "public": true}), FieldErrors::default()));
    ctx.insert("values", &values);
    ctx.insert("errors", &first_errors(&errors));
    ctx.insert("error_count", &errors.0.len());
    Ok(page(state, req, Some(&staff.0), status, "admin/updates.html", ctx))
}

#[get("/admin/campaigns/{slug}/updates")]
async fn list(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, slug: web::Path<String>) -> HttpResponse {
    respond(&state, list_page(&state, &req, &staff, &slug, StatusCode::OK, None).await)
}

#[post("/admin/campaigns/{slug}/updates")]
async fn create(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, slug: web::Path<String>, body: web::Payload) -> HttpResponse {
    let r = async {
        let input = form(&req, &state, body).await?;
        let campaign = load_campaign(&state, &slug).await?;
        let (d, errors) = UpdateForm::read(&input);
        if !errors.is_empty() {
            return list_page(&state, &req, &staff, &slug, StatusCode::UNPROCESSABLE_ENTITY, Some((d, errors))).await;
        }
        let (staff_id, staff_name) = (staff.0.id, staff.0.name.clone());
        let slug_for_log = campaign.slug.clone();
        let id = state
            .db
            .write(move |conn| {
                let now = now_ms();
                let id = updates::create(conn, campaign.id, &d.subject, &d.body_md, d.public, &staff_name, now)?;
                audit::record(conn, Some(staff_id), &staff_name, "update.create", &format!("{slug_for_log}: drafted update {id}"), now)?;
                Ok(id)
            })
            .await?;
        Ok(see_other(&format!("/admin/campaigns/{slug}/updates/{id}?done=created")))
    }
    .await;
    respond(&state, r)
}

async fn load(state: &AppState, slug: &str, id: i64) -> Result<(Campaign, Update), AppError> {
    let campaign = load_campaign(state, slug).await?;
    let cid = campaign.id;
    let update = state.db.read(move |conn| Ok(updates::find(conn, cid, id)?)).await?.ok_or_else(AppError::not_found)?;
    Ok((campaign, update))
}

/// One update's page: the editor while it is a draft, the progress once sent.
#[allow(clippy::too_many_arguments)]
async fn one_page(
    state: &AppState,
    req: &HttpRequest,
    staff: &CurrentStaff,
    slug: &str,
    id: i64,
    status: StatusCode,
    unsaved: Option<(UpdateForm, FieldErrors)>,
    notice: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let (campaign, update) = load(state, slug, id).await?;
    let cid = campaign.id;
    let (progress, eligible) = state.db.read(move |conn| Ok((updates::progress(conn, id, UPDATE_EMAIL)?, updates::eligible_count(conn, cid)?))).await?;
    let mut ctx = tera::Context::new();
    ctx.insert("campaign", &campaign_json(&campaign));
    ctx.insert("update", &update_json(&update, (update.state != updates::DRAFT).then_some(&progress)));
    ctx.insert("eligible", &eligible);
    ctx.insert("limits", &json!({"subject": SUBJECT_MAX, "body": BODY_MAX}));
    ctx.insert("notice", &notice);
    let (values, errors) = match unsaved {
        Some((d, e)) => (json!({"subject": d.subject, "body_md": d.body_md, "public": d.public}), e),
        None => (json!({"subject": update.subject, "body_md": update.body_md, "public": update.public}), FieldErrors::default()),
    };
    // The preview is of what is in the form: the saved draft, or what was just typed.
    ctx.insert("preview", &(!errors.0.contains_key("subject") && !errors.0.contains_key("body_md")));
    ctx.insert("values", &values);
    ctx.insert("errors", &first_errors(&errors));
    ctx.insert("error_count", &errors.0.len());
    ctx.insert("sending", &(update.state == updates::SENDING || (update.state == updates::SENT && progress.waiting > 0)));
    Ok(page(state, req, Some(&staff.0), status, "admin/update.html", ctx))
}

#[get("/admin/campaigns/{slug}/updates/{id}")]
async fn show(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, path: web::Path<(String, i64)>, done: web::Query<Done>) -> HttpResponse {
    let (slug, id) = path.into_inner();
    respond(&state, one_page(&state, &req, &staff, &slug, id, StatusCode::OK, None, done.notice()).await)
}

fn not_a_draft() -> AppError {
    AppError::Conflict("already_sent", "This update has been sent, so it can no longer be changed.".into())
}

#[post("/admin/campaigns/{slug}/updates/{id}")]
async fn save(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, path: web::Path<(String, i64)>, body: web::Payload) -> HttpResponse {
    let (slug, id) = path.into_inner();
    let r = async {
        let input = form(&req, &state, body).await?;
        let (_, update) = load(&state, &slug, id).await?;
        let (d, errors) = UpdateForm::read(&input);
        if !errors.is_empty() {
            return one_page(&state, &req, &staff, &slug, id, StatusCode::UNPROCESSABLE_ENTITY, Some((d, errors)), None).await;
        }
        let changed = state.db.write(move |conn| Ok(updates::edit_draft(conn, update.id, &d.subject, &d.body_md, d.public, now_ms())?)).await?;
        if changed == 0 {
            return Err(not_a_draft());
        }
        Ok(see_other(&format!("/admin/campaigns/{slug}/updates/{id}?done=saved")))
    }
    .await;
    respond(&state, r)
}

/// Shows the preview of what is in the form, saving nothing.
#[post("/admin/campaigns/{slug}/updates/{id}/preview")]
async fn preview(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, path: web::Path<(String, i64)>, body: web::Payload) -> HttpResponse {
    let (slug, id) = path.into_inner();
    let r = async {
        let input = form(&req, &state, body).await?;
        let (d, errors) = UpdateForm::read(&input);
        let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::UNPROCESSABLE_ENTITY };
        one_page(&state, &req, &staff, &slug, id, status, Some((d, errors)), Some("Preview only: nothing has been saved.")).await
    }
    .await;
    respond(&state, r)
}

/// Sends the saved draft to the staff member alone, straight away (not through the outbox, so
/// they see at once whether it went).
#[post("/admin/campaigns/{slug}/updates/{id}/test")]
async fn test(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, path: web::Path<(String, i64)>, body: web::Payload) -> HttpResponse {
    let (slug, id) = path.into_inner();
    let r = async {
        form(&req, &state, body).await?;
        let (campaign, update) = load(&state, &slug, id).await?;
        let public_url = &state.config.public_url;
        let example = format!("{public_url}/privacy");
        let ctx = context(&update, &campaign, &staff.0.name, public_url, &example, &example, true);
        let to = crate::services::mailer::mailbox(Some(&staff.0.name), &staff.0.email)?;
        // No List-Unsubscribe on a test: a mail program's one-click button would reach nothing.
        let email = Draft { list_unsubscribe: None, ..draft(to, ctx, example) }.render()?;
        if let Err(e) = state.mailer.send(&state.mail_from, email).await {
            tracing::warn!(error = %e, "could not send a test update");
            return Err(AppError::Unavailable("mail_unavailable", "The test copy could not be sent just now: the mail server did not take it. Try again in a few minutes.".into()));
        }
        Ok(see_other(&format!("/admin/campaigns/{slug}/updates/{id}?done=test-sent")))
    }
    .await;
    respond(&state, r)
}

#[post("/admin/campaigns/{slug}/updates/{id}/send")]
async fn send(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, path: web::Path<(String, i64)>, body: web::Payload) -> HttpResponse {
    let (slug, id) = path.into_inner();
    let r = async {
        let mut input = form(&req, &state, body).await?;
        let (campaign, update) = load(&state, &slug, id).await?;
        if update.state != updates::DRAFT {
            return Err(not_a_draft());
        }
        if !input.flag("confirm") {
            let mut errors = FieldErrors::default();
            errors.add("confirm", "Tick the box to say you have checked the update and want to send it to everyone listed.");
            let d = UpdateForm { subject: update.subject, body_md: update.body_md, public: update.public };
            return one_page(&state, &req, &staff, &slug, id, StatusCode::UNPROCESSABLE_ENTITY, Some((d, errors)), None).await;
        }
        let (staff_id, staff_name) = (staff.0.id, staff.0.name.clone());
        let started = state
            .db
            .write(move |conn| {
                let now = now_ms();
                if !updates::start(conn, id, campaign.id, now)? {
                    return Ok(false);
                }
                audit::record(conn, Some(staff_id), &staff_name, "update.send", &format!("{}: sent update {id} to the signers who asked for updates", campaign.slug), now)?;
                Ok(true)
            })
            .await?;
        if !started {
            return Err(not_a_draft());
        }
        Ok(see_other(&format!("/admin/campaigns/{slug}/updates/{id}?done=sending")))
    }
    .await;
    respond(&state, r)
}
