//! The letter tool: postcode → "your MP is …" → the letter with a personal edit → preview →
//! confirm by email. Plain forms; no step needs JavaScript.
use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::domain::{UkPostcode, PERSONAL_EDIT_MAX};
use crate::error::{AppError, FieldErrors};
use crate::letters::write::{self, LetterRequest, MP};
use crate::lookup::{self, Place};
use crate::models::{campaigns, targets};
use crate::mps::{self, MpStatus};
use crate::rate_limit::Action;
use crate::routes::input::Input;
use crate::routes::pages::{error_page, render};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(write_page).service(preview).service(send).service(check_email).service(sent);
}

#[derive(Deserialize)]
struct Query {
    postcode: Option<String>,
}

/// The campaign and its fixed targets, for the page.
async fn campaign_and_targets(state: &AppState, slug: String) -> Result<(Value, Vec<Value>), AppError> {
    state
        .db
        .read(move |conn| {
            let c = campaigns::find_by_slug(conn, &slug)?.filter(|c| c.state != "draft").ok_or_else(AppError::campaign_not_found)?;
            let open = c.effective_state(crate::clock::now_ms()) == campaigns::CampaignState::Open;
            let list = targets::for_campaign(conn, c.id)?
                .into_iter()
                .map(|t| json!({"key": t.key, "name": t.name, "title": t.title}))
                .collect();
            Ok((json!({"slug": c.slug, "title": c.title, "open": open}), list))
        })
        .await
}

/// Finds the writer's constituency and MP for the page; problems become messages, not errors.
async fn place_and_mp(state: &AppState, raw: &str, ctx: &mut tera::Context) -> Result<(), AppError> {
    let postcode = match UkPostcode::parse(raw) {
        Ok(p) => p,
        Err(m) => {
            ctx.insert("postcode_error", &m);
            return Ok(());
        }
    };
    ctx.insert("postcode", postcode.as_str());
    match lookup::constituency_for(state, &postcode).await {
        Ok(Place::Found { ons_code, name }) => {
            ctx.insert("constituency", &name);
            match mps::mp_for(state, &ons_code).await {
                Ok(MpStatus::Known(mp)) => ctx.insert("mp", &json!({"name": mp.name, "party": mp.party, "email": mp.email, "contact_url": mp.contact_url})),
                Ok(MpStatus::Vacant) => ctx.insert("mp_vacant", &true),
                Ok(MpStatus::Unknown) | Err(_) => ctx.insert("mp_unknown", &true),
            }
        }
        Ok(Place::NotFound) => ctx.insert("postcode_error", "We couldn't find that postcode. Check it and try again."),
        Ok(Place::Terminated) => ctx.insert("postcode_error", "That postcode is no longer in use. Enter the postcode you use now."),
        Err(AppError::Unavailable(_, m)) => ctx.insert("postcode_error", &m),
        Err(e) => return Err(e),
    }
    Ok(())
}

async fn form_context(state: &AppState, slug: String, postcode: Option<&str>) -> Result<tera::Context, AppError> {
    let (campaign, fixed) = campaign_and_targets(state, slug).await?;
    let mut ctx = tera::Context::new();
    ctx.insert("campaign", &campaign);
    ctx.insert("targets", &fixed);
    ctx.insert("edit_max", &PERSONAL_EDIT_MAX);
    ctx.insert("values", &json!({}));
    ctx.insert("errors", &json!({}));
    if let Some(pc) = postcode.filter(|p| !p.trim().is_empty()) {
        place_and_mp(state, pc, &mut ctx).await?;
        if !ctx.contains_key("postcode") {
            ctx.insert("values", &json!({"postcode": pc}));
        }
    }
    // The MP first when Rally can write to them, otherwise the first fixed target.
    let mp_writable = ctx.get("mp").is_some_and(|m| m.get("email").is_some_and(|e| !e.is_null()));
    let first_fixed = fixed.first().and_then(|t| t.get("key")).and_then(Value::as_str).unwrap_or("").to_string();
    ctx.insert("chosen_target", if mp_writable { MP } else { &first_fixed });
    Ok(ctx)
}

#[get("/campaigns/{slug}/write")]
async fn write_page(state: web::Data<AppState>, slug: web::Path<String>, query: Option<web::Query<Query>>) -> HttpResponse {
    let postcode = query.and_then(|q| q.into_inner().postcode);
    match form_context(&state, slug.into_inner(), postcode.as_deref()).await {
        Ok(ctx) => render(&state, StatusCode::OK, "write.html", ctx),
        Err(e) => error_page(&state, &e),
    }
}

/// Puts what the writer typed back into the form.
fn keep_typed(ctx: &mut tera::Context, input: &Input) {
    let target = input.raw("target").unwrap_or("").to_string();
    if !target.is_empty() {
        ctx.insert("chosen_target", &target);
    }
    ctx.insert("values", &typed(input));
}

/// What the writer typed.
fn typed(input: &Input) -> Value {
    let v = |k: &str| input.raw(k).unwrap_or("").to_string();
    json!({
        "target": v("target"), "name": v("name"), "email": v("email"), "postcode": v("postcode"),
        "address_line1": v("address_line1"), "address_line2": v("address_line2"), "address_town": v("address_town"),
        "personal_edit": v("personal_edit"),
    })
}

/// Field problems keyed for the page (`address.line1` → `address_line1`), first message each.
fn page_errors(errors: &FieldErrors) -> serde_json::Map<String, Value> {
    errors.0.iter().filter_map(|(k, v)| v.first().map(|m| (k.replace('.', "_"), Value::String(m.clone())))).collect()
}

async fn form_with_errors(state: &AppState, slug: String, input: &Input, errors: &FieldErrors) -> HttpResponse {
    match form_context(state, slug, input.raw("postcode")).await {
        Ok(mut ctx) => {
            keep_typed(&mut ctx, input);
            ctx.insert("errors", &page_errors(errors));
            ctx.insert("error_count", &errors.0.len());
            render(state, StatusCode::UNPROCESSABLE_ENTITY, "write.html", ctx)
        }
        Err(e) => error_page(state, &e),
    }
}

fn mailto(to: &str, subject: &str, body: &str) -> String {
    format!("mailto:{to}?subject={}&body={}", utf8_percent_encode(subject, NON_ALPHANUMERIC), utf8_percent_encode(body, NON_ALPHANUMERIC))
}

/// Reads the form; a field problem re-shows the form, anything else is an error page.
async fn read_request(state: &AppState, slug: &str, req: &HttpRequest, body: web::Payload) -> Result<Result<(LetterRequest, Input), HttpResponse>, AppError> {
    state.limits.check(Action::Letter, req)?;
    let mut input = Input::form(req, body).await?;
    match LetterRequest::parse(&mut input) {
        Ok(r) => Ok(Ok((r, input))),
        Err(errors) => Ok(Err(form_with_errors(state, slug.to_string(), &input, &errors).await)),
    }
}

#[post("/campaigns/{slug}/write/preview")]
async fn preview(state: web::Data<AppState>, slug: web::Path<String>, req: HttpRequest, body: web::Payload) -> HttpResponse {
    let slug = slug.into_inner();
    let (request, input) = match read_request(&state, &slug, &req, body).await {
        Ok(Ok(r)) => r,
        Ok(Err(page)) => return page,
        Err(e) => return error_page(&state, &e),
    };
    match write::prepare(&state, &slug, &request).await {
        Ok(p) => match form_context(&state, slug, input.raw("postcode")).await {
            Ok(mut ctx) => {
                keep_typed(&mut ctx, &input);
                ctx.insert("preview", &json!({
                    "to_name": p.to_name, "to_email": p.to_email, "subject": p.subject, "body": p.body,
                    "personalised": p.personalised, "mailto": mailto(&p.to_email, &p.subject, &p.body),
                }));
                let mut res = render(&state, StatusCode::OK, "write.html", ctx);
                res.headers_mut().insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
                res
            }
            Err(e) => error_page(&state, &e),
        },
        Err(AppError::Validation(errors)) => form_with_errors(&state, slug, &input, &errors).await,
        Err(e) => error_page(&state, &e),
    }
}

#[post("/campaigns/{slug}/write/send")]
async fn send(state: web::Data<AppState>, slug: web::Path<String>, req: HttpRequest, body: web::Payload) -> HttpResponse {
    let slug = slug.into_inner();
    let (request, input) = match read_request(&state, &slug, &req, body).await {
        Ok(Ok(r)) => r,
        Ok(Err(page)) => return page,
        Err(e) => return error_page(&state, &e),
    };
    let proven = crate::session::recently_confirmed(&req, &state);
    match write::submit(&state, &slug, request, proven).await {
        Ok(write::Submitted::AwaitingConfirmation) => {
            HttpResponse::SeeOther().insert_header((header::LOCATION, format!("/campaigns/{slug}/write/check-email"))).finish()
        }
        Ok(write::Submitted::Queued) => HttpResponse::SeeOther().insert_header((header::LOCATION, format!("/campaigns/{slug}/write/sent"))).finish(),
        Err(AppError::Validation(errors)) => form_with_errors(&state, slug, &input, &errors).await,
        Err(e) => error_page(&state, &e),
    }
}

#[get("/campaigns/{slug}/write/check-email")]
async fn check_email(state: web::Data<AppState>, slug: web::Path<String>) -> HttpResponse {
    match campaign_and_targets(&state, slug.into_inner()).await {
        Ok((campaign, _)) => {
            let mut ctx = tera::Context::new();
            ctx.insert("campaign", &campaign);
            render(&state, StatusCode::OK, "write_check_email.html", ctx)
        }
        Err(e) => error_page(&state, &e),
    }
}


/// After a letter went straight to the queue (the writer confirmed in this browser moments ago).
#[get("/campaigns/{slug}/write/sent")]
async fn sent(state: web::Data<AppState>, slug: web::Path<String>) -> HttpResponse {
    match campaign_and_targets(&state, slug.into_inner()).await {
        Ok((campaign, _)) => {
            let mut ctx = tera::Context::new();
            ctx.insert("campaign", &campaign);
            render(&state, StatusCode::OK, "letter_confirmed.html", ctx)
        }
        Err(e) => error_page(&state, &e),
    }
}
