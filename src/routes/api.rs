//! The JSON API of DESIGN.md.
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::clock::{now_ms, DAY};
use crate::domain::UkPostcode;
use crate::error::{AppError, ErrorBody, FieldErrors};
use crate::models::campaigns;
use crate::models::postcodes::{self as cache, CachedPostcode};
use crate::petition::{confirm, progress, sign};
use crate::routes::input::Input;
use crate::state::AppState;
use crate::workers::backfill;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_campaigns).service(get_campaign).service(create_signature).service(create_confirmation).service(lookup_postcode);
}

fn fresh_json<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Ok().insert_header(("Cache-Control", "public, max-age=1")).json(body)
}

#[get("/api/campaigns")]
async fn list_campaigns(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let list = state
        .db
        .read(|conn| campaigns::list_public(conn)?.iter().map(|c| progress::summary(conn, c)).collect::<Result<Vec<_>, _>>())
        .await?;
    Ok(fresh_json(&list))
}

#[get("/api/campaigns/{slug}")]
async fn get_campaign(state: web::Data<AppState>, slug: web::Path<String>) -> Result<HttpResponse, AppError> {
    let slug = slug.into_inner();
    let detail = state
        .db
        .read(move |conn| {
            let c = campaigns::find_by_slug(conn, &slug)?.filter(|c| c.state != "draft").ok_or_else(AppError::campaign_not_found)?;
            progress::detail(conn, &c)
        })
        .await?;
    Ok(fresh_json(&detail))
}

#[post("/api/campaigns/{slug}/signatures")]
async fn create_signature(
    state: web::Data<AppState>,
    slug: web::Path<String>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, AppError> {
    let mut input = Input::json(&req, body).await?;
    let request = sign::SignatureRequest::parse(&mut input).map_err(AppError::Validation)?;
    sign::sign(&state, &slug, request).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({"status": "pending_confirmation"})))
}

#[post("/api/confirmations")]
async fn create_confirmation(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> Result<HttpResponse, AppError> {
    let mut input = Input::json(&req, body).await?;
    let token = input.text("token");
    if !input.errors.is_empty() {
        return Err(AppError::Validation(input.errors));
    }
    if token.trim().is_empty() {
        let mut fields = FieldErrors::default();
        fields.add("token", "Give the token from the confirmation link.");
        return Err(AppError::Validation(fields));
    }
    let done = confirm::confirm(&state, token.trim().to_string()).await?;
    Ok(HttpResponse::Ok().json(done))
}

#[derive(Serialize)]
struct PostcodeAnswer {
    postcode: String,
    constituency: ConstituencyRef,
    mp: Option<MpRef>,
}

#[derive(Serialize)]
struct ConstituencyRef {
    ons_code: String,
    name: String,
}

#[derive(Serialize)]
struct MpRef {
    name: String,
    party: Option<String>,
    email: Option<String>,
}

/// Postcodes rarely move between constituencies; a cached answer is used for this long.
const POSTCODE_FRESH_MS: i64 = 30 * DAY;

#[get("/api/postcodes/{postcode}")]
async fn lookup_postcode(state: web::Data<AppState>, raw: web::Path<String>) -> Result<HttpResponse, AppError> {
    let postcode = match UkPostcode::parse(&raw) {
        Ok(p) => p,
        Err(problem) => {
            let mut fields = FieldErrors::default();
            fields.add("postcode", problem);
            return Ok(HttpResponse::UnprocessableEntity().json(ErrorBody {
                error: "invalid_postcode",
                message: "That is not a UK postcode. Enter one like SW1A 1AA.".into(),
                fields: Some(&fields.0),
            }));
        }
    };
    let key = postcode.as_str().to_string();
    let cached = {
        let key = key.clone();
        state.db.read(move |conn| Ok(cache::get(conn, &key)?)).await?
    };
    let fresh = cached.as_ref().is_some_and(|c| now_ms() - c.fetched_at < POSTCODE_FRESH_MS);
    let row: CachedPostcode = if fresh {
        cached.expect("checked")
    } else {
        match state.postcodes.lookup(&postcode).await {
            Ok(lookup) => {
                let key2 = key.clone();
                state
                    .db
                    .write(move |conn| {
                        backfill::record(conn, &key2, &lookup)?;
                        Ok(cache::get(conn, &key2)?)
                    })
                    .await?
                    .ok_or_else(|| AppError::internal(anyhow::anyhow!("postcode cache row vanished")))?
            }
            // A cached answer, even an old one, beats no answer while postcodes.io is down.
            Err(e) => match cached {
                Some(c) => c,
                None => {
                    tracing::warn!(error = %e, "postcode lookup unavailable");
                    return Err(AppError::Unavailable(
                        "lookup_unavailable",
                        "We can't look postcodes up right now. Please try again in a few minutes.".into(),
                    ));
                }
            },
        }
    };
    match (row.status.as_str(), row.ons_code) {
        (cache::FOUND, Some(code)) => {
            let answer = state
                .db
                .read(move |conn| {
                    let mut names = crate::models::constituencies::names_and_mps(conn, std::slice::from_ref(&code))?;
                    let (name, _) = names.remove(&code).unwrap_or_else(|| (code.clone(), None));
                    let mp = crate::models::constituencies::current_mp(conn, &code)?
                        .map(|(name, party, email)| MpRef { name, party, email });
                    Ok(PostcodeAnswer { postcode: key, constituency: ConstituencyRef { ons_code: code, name }, mp })
                })
                .await?;
            Ok(HttpResponse::Ok().insert_header(("Cache-Control", "public, max-age=3600")).json(answer))
        }
        (cache::TERMINATED, _) => Err(AppError::NotFound("postcode_terminated", "That postcode is no longer in use. Try the postcode you use now.".into())),
        _ => Err(AppError::NotFound("postcode_not_found", "We couldn't find that postcode. Check it and try again.".into())),
    }
}

