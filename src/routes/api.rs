//! The JSON API of DESIGN.md.
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::clock::{now_ms, DAY};
use crate::domain::UkPostcode;
use crate::error::{AppError, ErrorBody, FieldErrors};
use crate::models::campaigns;
use crate::models::postcodes::{self as cache, CachedPostcode};
use crate::petition::{confirm, progress, sign};
use crate::rate_limit::Action;
use crate::routes::input::Input;
use crate::state::AppState;
use crate::workers::backfill;

/// A signature, as documented for clients (the handler reads fields one by one so each problem is named).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct SignatureBody {
    /// 1–100 characters, no control characters.
    name: String,
    /// At most 254 characters.
    email: String,
    /// A UK postcode.
    postcode: String,
    /// Must be true: the signer agrees to the privacy notice.
    consent: bool,
    updates_opt_in: Option<bool>,
    show_name: Option<bool>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ConfirmationBody {
    token: String,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct Pending {
    /// Always `pending_confirmation`.
    status: String,
}

/// Every error has this shape; `fields` only for validation errors.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct ApiError {
    error: String,
    message: String,
    fields: Option<std::collections::HashMap<String, Vec<String>>>,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_campaigns).service(get_campaign).service(create_signature).service(create_confirmation).service(lookup_postcode).service(openapi_json);
}

fn fresh_json<T: Serialize>(body: &T) -> HttpResponse {
    HttpResponse::Ok().insert_header(("Cache-Control", "public, max-age=1")).json(body)
}

#[utoipa::path(get, path = "/api/campaigns", tag = "campaigns",
    responses((status = 200, description = "Open and closed campaigns", body = [progress::CampaignSummary])))]
#[get("/api/campaigns")]
async fn list_campaigns(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let list = state
        .db
        .read(|conn| campaigns::list_public(conn)?.iter().map(|c| progress::summary(conn, c)).collect::<Result<Vec<_>, _>>())
        .await?;
    Ok(fresh_json(&list))
}

#[utoipa::path(get, path = "/api/campaigns/{slug}", tag = "campaigns",
    params(("slug" = String, Path, description = "The campaign's slug")),
    responses((status = 200, body = progress::CampaignDetail), (status = 404, body = ApiError)))]
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

#[utoipa::path(post, path = "/api/campaigns/{slug}/signatures", tag = "signatures",
    params(("slug" = String, Path, description = "The campaign's slug")),
    request_body = SignatureBody,
    responses(
        (status = 202, description = "Stored; a confirmation email is on its way (the same answer for a repeat signer)", body = Pending),
        (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 409, description = "campaign_closed", body = ApiError),
        (status = 413, body = ApiError), (status = 415, body = ApiError), (status = 422, description = "validation_failed, with fields", body = ApiError),
        (status = 429, description = "rate_limited, with Retry-After", body = ApiError)))]
#[post("/api/campaigns/{slug}/signatures")]
async fn create_signature(
    state: web::Data<AppState>,
    slug: web::Path<String>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, AppError> {
    state.limits.check(Action::Sign, &req)?;
    let mut input = Input::json(&req, body).await?;
    let request = sign::SignatureRequest::parse(&mut input).map_err(AppError::Validation)?;
    sign::sign(&state, &slug, request).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({"status": "pending_confirmation"})))
}

#[utoipa::path(post, path = "/api/confirmations", tag = "signatures",
    request_body = ConfirmationBody,
    responses((status = 200, body = confirm::Confirmed), (status = 404, description = "Unknown or expired token", body = ApiError), (status = 422, body = ApiError)))]
#[post("/api/confirmations")]
async fn create_confirmation(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> Result<HttpResponse, AppError> {
    state.limits.check(Action::Confirm, &req)?;
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

#[derive(Serialize, utoipa::ToSchema)]
struct PostcodeAnswer {
    postcode: String,
    constituency: ConstituencyRef,
    mp: Option<MpRef>,
}

#[derive(Serialize, utoipa::ToSchema)]
struct ConstituencyRef {
    ons_code: String,
    name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
struct MpRef {
    name: String,
    party: Option<String>,
    email: Option<String>,
}

/// Postcodes rarely move between constituencies; a cached answer is used for this long.
const POSTCODE_FRESH_MS: i64 = 30 * DAY;

#[utoipa::path(get, path = "/api/postcodes/{postcode}", tag = "postcodes",
    params(("postcode" = String, Path, description = "A UK postcode, any spacing or case")),
    responses((status = 200, body = PostcodeAnswer), (status = 404, description = "postcode_not_found or postcode_terminated", body = ApiError),
        (status = 422, description = "invalid_postcode", body = ApiError), (status = 503, description = "lookup_unavailable", body = ApiError)))]
#[get("/api/postcodes/{postcode}")]
async fn lookup_postcode(state: web::Data<AppState>, raw: web::Path<String>, req: HttpRequest) -> Result<HttpResponse, AppError> {
    state.limits.check(Action::PostcodeLookup, &req)?;
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


#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Rally", description = "Petitions and letters to MPs for UK campaigns"),
    paths(list_campaigns, get_campaign, create_signature, create_confirmation, lookup_postcode),
    components(schemas(SignatureBody, ConfirmationBody, Pending, ApiError, PostcodeAnswer, ConstituencyRef, MpRef,
        progress::CampaignSummary, progress::CampaignDetail, progress::ConstituencyCount, confirm::Confirmed))
)]
pub struct ApiDoc;

#[get("/api/openapi.json")]
async fn openapi_json() -> HttpResponse {
    use utoipa::OpenApi;
    HttpResponse::Ok().content_type("application/json").body(ApiDoc::openapi().to_json().unwrap_or_default())
}
