//! The JSON API of DESIGN.md.
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::domain::UkPostcode;
use crate::error::{AppError, ErrorBody, FieldErrors};
use crate::models::campaigns;
use crate::confirmations;
use crate::petition::{progress, sign};
use crate::rate_limit::Action;
use crate::routes::cache::Built;
use crate::routes::input::Input;
use crate::state::AppState;
use crate::letters::write;
use crate::lookup::{self, Place};
use crate::mps::{self, MpStatus};

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
    cfg.service(list_campaigns).service(get_campaign).service(create_signature).service(create_confirmation).service(lookup_postcode).service(preview_letter).service(create_letter).service(openapi_json);
}


#[utoipa::path(get, path = "/api/campaigns", tag = "campaigns",
    responses((status = 200, description = "Open and closed campaigns", body = [progress::CampaignSummary])))]
#[get("/api/campaigns")]
async fn list_campaigns(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, AppError> {
    let version = state.counts.version();
    state
        .public_cache
        .respond(&req, "api:campaigns".into(), version, || async {
            let counts = state.counts.clone();
            let list = state
                .db
                .read(move |conn| campaigns::list_public(conn)?.iter().map(|c| progress::summary(conn, c, &counts)).collect::<Result<Vec<_>, _>>())
                .await?;
            json_body(&list)
        })
        .await
}

#[utoipa::path(get, path = "/api/campaigns/{slug}", tag = "campaigns",
    params(("slug" = String, Path, description = "The campaign's slug")),
    responses((status = 200, body = progress::CampaignDetail), (status = 404, body = ApiError)))]
#[get("/api/campaigns/{slug}")]
async fn get_campaign(state: web::Data<AppState>, slug: web::Path<String>, req: HttpRequest) -> Result<HttpResponse, AppError> {
    let slug = slug.into_inner();
    let version = state.counts.version();
    state
        .public_cache
        .respond(&req, format!("api:campaign:{slug}"), version, || async {
            let (counts, tables) = (state.counts.clone(), state.breakdowns.clone());
            let detail = state
                .db
                .read(move |conn| {
                    let c = campaigns::find_by_slug(conn, &slug)?.filter(|c| c.state != "draft").ok_or_else(AppError::campaign_not_found)?;
                    progress::public_detail(conn, &c, &counts, &tables)
                })
                .await?;
            json_body(&detail)
        })
        .await
}

fn json_body<T: Serialize>(value: &T) -> Result<Built, AppError> {
    Ok(Built { body: serde_json::to_vec(value).map_err(AppError::internal)?.into(), content_type: "application/json" })
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
    responses((status = 200, body = confirmations::Confirmed), (status = 404, description = "Unknown or expired token", body = ApiError), (status = 422, body = ApiError)))]
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
    let done = confirmations::confirm(&state, token.trim().to_string()).await?;
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
    match lookup::constituency_for(&state, &postcode).await? {
        Place::Found { ons_code, name } => {
            // The MP is extra: if the Members API is down, the constituency still answers.
            let mp = match mps::mp_for(&state, &ons_code).await {
                Ok(MpStatus::Known(mp)) => Some(MpRef { name: mp.name, party: mp.party, email: mp.email }),
                Ok(_) => None,
                Err(e) => {
                    tracing::warn!(error = %e, "MP lookup failed; answering without the MP");
                    None
                }
            };
            let answer = PostcodeAnswer { postcode: postcode.as_str().to_string(), constituency: ConstituencyRef { ons_code, name }, mp };
            Ok(HttpResponse::Ok().insert_header(("Cache-Control", "public, max-age=3600")).json(answer))
        }
        Place::Terminated => Err(AppError::NotFound("postcode_terminated", "That postcode is no longer in use. Try the postcode you use now.".into())),
        Place::NotFound => Err(AppError::NotFound("postcode_not_found", "We couldn't find that postcode. Check it and try again.".into())),
    }
}

/// The letter as a client sends it (documented shape; read field by field so each problem is named).
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct LetterBody {
    /// `mp`, or the key of one of the campaign's fixed targets (e.g. `justice-secretary`).
    target: String,
    name: String,
    email: String,
    postcode: String,
    address: AddressBody,
    /// Up to 2,000 characters, inserted verbatim.
    personal_edit: Option<String>,
}

#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct AddressBody {
    line1: String,
    line2: Option<String>,
    town: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Recipient {
    name: String,
    email: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LetterPreview {
    to: Recipient,
    subject: String,
    body: String,
    /// False when the letter is the template alone; a personal sentence carries more weight.
    personalised: bool,
}

#[utoipa::path(post, path = "/api/campaigns/{slug}/letters/preview", tag = "letters",
    params(("slug" = String, Path, description = "The campaign's slug")),
    request_body = LetterBody,
    responses((status = 200, body = LetterPreview), (status = 404, body = ApiError), (status = 409, body = ApiError),
        (status = 422, body = ApiError), (status = 429, body = ApiError), (status = 503, description = "lookup_unavailable", body = ApiError)))]
#[post("/api/campaigns/{slug}/letters/preview")]
async fn preview_letter(state: web::Data<AppState>, slug: web::Path<String>, req: HttpRequest, body: web::Payload) -> Result<HttpResponse, AppError> {
    state.limits.check(Action::Letter, &req)?;
    let mut input = Input::json(&req, body).await?;
    let request = write::LetterRequest::parse(&mut input).map_err(AppError::Validation)?;
    let p = write::prepare(&state, &slug, &request).await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(LetterPreview {
        to: Recipient { name: p.to_name, email: p.to_email },
        subject: p.subject,
        body: p.body,
        personalised: p.personalised,
    }))
}

#[utoipa::path(post, path = "/api/campaigns/{slug}/letters", tag = "letters",
    params(("slug" = String, Path, description = "The campaign's slug")),
    request_body = LetterBody,
    responses((status = 202, description = "Stored; a confirmation email is on its way", body = Pending), (status = 404, body = ApiError),
        (status = 409, description = "already_written or campaign_closed", body = ApiError), (status = 422, body = ApiError),
        (status = 429, body = ApiError), (status = 503, description = "lookup_unavailable", body = ApiError)))]
#[post("/api/campaigns/{slug}/letters")]
async fn create_letter(state: web::Data<AppState>, slug: web::Path<String>, req: HttpRequest, body: web::Payload) -> Result<HttpResponse, AppError> {
    state.limits.check(Action::Letter, &req)?;
    let mut input = Input::json(&req, body).await?;
    let request = write::LetterRequest::parse(&mut input).map_err(AppError::Validation)?;
    // API clients always confirm by email: the browser cookie is the pages' convenience only.
    write::submit(&state, &slug, request, None).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({"status": "pending_confirmation"})))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Rally", description = "Petitions and letters to MPs for UK campaigns"),
    paths(list_campaigns, get_campaign, create_signature, create_confirmation, lookup_postcode, preview_letter, create_letter),
    components(schemas(LetterBody, AddressBody, Recipient, LetterPreview, SignatureBody, ConfirmationBody, Pending, ApiError, PostcodeAnswer, ConstituencyRef, MpRef,
        progress::CampaignSummary, progress::CampaignDetail, progress::ConstituencyCount, confirmations::Confirmed))
)]
pub struct ApiDoc;

#[get("/api/openapi.json")]
async fn openapi_json() -> HttpResponse {
    use utoipa::OpenApi;
    HttpResponse::Ok().content_type("application/json").body(ApiDoc::openapi().to_json().unwrap_or_default())
}
