//! Public pages, server-rendered; every form works without JavaScript.
use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Serialize;

use crate::clock::{format_date, now_ms};
use crate::domain::PersonName;
use crate::error::{AppError, FieldErrors};
use crate::models::campaigns::{self, Campaign, CampaignState};
use crate::models::{constituencies, signatures};
use crate::confirmations;
use crate::petition::{progress, sign};
use crate::rate_limit::Action;
use crate::routes::cache::Built;
use crate::routes::input::Input;
use crate::services::markdown;
use crate::state::AppState;
use crate::templates::TEMPLATES;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(index)
        .service(campaign_page)
        .service(share_image)
        .service(constituencies_page)
        .service(sign_form)
        .service(check_email)
        .service(signers)
        .service(confirm_page)
        .service(confirm_submit)
        .service(privacy);
}

/// Renders a page with what every page needs (quick exit, site name).
pub fn render(state: &AppState, status: StatusCode, template: &str, ctx: tera::Context) -> HttpResponse {
    match page_html(state, template, ctx) {
        Ok(html) => HttpResponse::build(status).content_type("text/html; charset=utf-8").body(html),
        Err(e) => {
            tracing::error!(template, error = ?e, "page failed to render");
            HttpResponse::InternalServerError().content_type("text/plain; charset=utf-8").body("Something went wrong on our side.")
        }
    }
}

/// A page's HTML, with what every page needs (the quick exit).
fn page_html(state: &AppState, template: &str, mut ctx: tera::Context) -> tera::Result<String> {
    ctx.insert("quick_exit_url", &state.config.quick_exit_url);
    TEMPLATES.render(template, &ctx)
}

/// An error as a page, with the same words the API would use.
pub fn error_page(state: &AppState, err: &AppError) -> HttpResponse {
    use actix_web::ResponseError;
    if let AppError::Internal(cause) = err {
        tracing::error!(error.cause_chain = ?cause, "internal error");
    }
    let mut ctx = tera::Context::new();
    let status = err.status_code();
    ctx.insert("title", match status {
        StatusCode::NOT_FOUND => "Page not found",
        StatusCode::CONFLICT => "This petition has closed",
        StatusCode::TOO_MANY_REQUESTS => "Please slow down",
        StatusCode::SERVICE_UNAVAILABLE => "Temporarily unavailable",
        _ if status.is_client_error() => "There was a problem with that request",
        _ => "Something went wrong",
    });
    ctx.insert("message", &err.message());
    let mut res = render(state, status, "error.html", ctx);
    if let AppError::RateLimited { retry_after_secs } = err {
        res.headers_mut().insert(header::RETRY_AFTER, retry_after_secs.to_string().parse().expect("digits"));
    }
    res
}

fn page_result(state: &AppState, r: Result<HttpResponse, AppError>) -> HttpResponse {
    r.unwrap_or_else(|e| error_page(state, &e))
}

#[derive(Serialize)]
struct CampaignCard {
    slug: String,
    title: String,
    summary: String,
    signature_count: i64,
    target: i64,
    percent: i64,
}

fn percent(count: i64, target: i64) -> i64 {
    if target <= 0 {
        return 100;
    }
    (count * 100 / target).clamp(0, 100)
}

#[get("/")]
async fn index(state: web::Data<AppState>) -> HttpResponse {
    let r = async {
        let counts = state.counts.clone();
        let cards = state
            .db
            .read(move |conn| {
                let now = now_ms();
                let mut cards = Vec::new();
                for c in campaigns::list_public(conn)? {
                    if c.effective_state(now) != CampaignState::Open {
                        continue;
                    }
                    let s = progress::summary(conn, &c, &counts)?;
                    cards.push(CampaignCard {
                        percent: percent(s.signature_count, s.target),
                        slug: c.slug,
                        title: c.title,
                        summary: c.summary,
                        signature_count: s.signature_count,
                        target: s.target,
                    });
                }
                Ok(cards)
            })
            .await?;
        let mut ctx = tera::Context::new();
        ctx.insert("campaigns", &cards);
        Ok(render(&state, StatusCode::OK, "index.html", ctx))
    }
    .await;
    page_result(&state, r)
}

/// Everything the campaign page shows, read in one go.
async fn campaign_context(state: &AppState, slug: String) -> Result<(Campaign, tera::Context), AppError> {
    let (counts, tables) = (state.counts.clone(), state.breakdowns.clone());
    let (campaign, detail, updates) = state
        .db
        .read(move |conn| {
            let c = campaigns::find_by_slug(conn, &slug)?.filter(|c| c.state != "draft").ok_or_else(AppError::campaign_not_found)?;
            let d = progress::public_detail(conn, &c, &counts, &tables)?;
            let u = crate::models::updates::published(conn, c.id, 10)?;
            Ok((c, d, u))
        })
        .await?;
    let mut ctx = tera::Context::new();
    let updates: Vec<_> = updates
        .iter()
        .map(|u| serde_json::json!({"id": u.id, "subject": u.subject, "body_md": u.body_md, "date": crate::clock::format_date(u.started_at.unwrap_or(u.created_at))}))
        .collect();
    ctx.insert("updates", &updates);
    ctx.insert("campaign", &serde_json::json!({
        "slug": campaign.slug,
        "title": campaign.title,
        "summary": campaign.summary,
        "content_note": campaign.content_note,
        "open": detail.state == "open",
    }));
    ctx.insert("body_html", &markdown::to_safe_html(&campaign.body_md));
    ctx.insert("public_url", &state.config.public_url);
    ctx.insert("share", &share_text(&state.config.public_url, &campaign));
    ctx.insert("count", &detail.signature_count);
    ctx.insert("target", &detail.target);
    ctx.insert("percent", &percent(detail.signature_count, detail.target));
    ctx.insert("top_constituencies", &detail.signatures_by_constituency.iter().take(10).collect::<Vec<_>>());
    ctx.insert("values", &serde_json::json!({}));
    ctx.insert("errors", &serde_json::json!({}));
    Ok((campaign, ctx))
}

/// What the share links carry (the page URL-encodes each part): plain text, so a visitor sees
/// exactly what they would send.
fn share_text(public_url: &str, campaign: &Campaign) -> serde_json::Value {
    let url = format!("{public_url}/campaigns/{}", campaign.slug);
    let text = format!("Sign the petition: {}", campaign.title);
    let summary = campaign.summary.trim();
    // mailto bodies break lines with CRLF (RFC 6068).
    let body = if summary.is_empty() { format!("{text}\r\n{url}") } else { format!("{summary}\r\n\r\n{text}\r\n{url}") };
    serde_json::json!({"url": url, "text": text, "text_and_url": format!("{text} {url}"), "subject": campaign.title, "body": body})
}

/// The same for every visitor (nothing personal on it), so it is cached for a moment.
#[get("/campaigns/{slug}")]
async fn campaign_page(state: web::Data<AppState>, slug: web::Path<String>, req: HttpRequest) -> HttpResponse {
    let slug = slug.into_inner();
    let version = state.counts.version();
    let r = state
        .public_cache
        .respond(&req, format!("page:campaign:{slug}"), version, || async {
            let (_, ctx) = campaign_context(&state, slug).await?;
            let html = page_html(&state, "campaign.html", ctx).map_err(|e| AppError::internal(anyhow::anyhow!("campaign page failed to render: {e:?}")))?;
            Ok(Built { body: html.into(), content_type: "text/html; charset=utf-8" })
        })
        .await;
    page_result(&state, r)
}

/// The picture link previews show: the title and the count, drawn by Rally (no third party).
#[get("/campaigns/{slug}/share.svg")]
async fn share_image(state: web::Data<AppState>, slug: web::Path<String>, req: HttpRequest) -> HttpResponse {
    let slug = slug.into_inner();
    let version = state.counts.version();
    let r = state
        .public_cache
        .respond(&req, format!("share:{slug}"), version, || async {
            let counts = state.counts.clone();
            let summary = state
                .db
                .read(move |conn| {
                    let c = campaigns::find_by_slug(conn, &slug)?.filter(|c| c.state != "draft").ok_or_else(AppError::campaign_not_found)?;
                    progress::summary(conn, &c, &counts)
                })
                .await?;
            let mut lines: Vec<String> = textwrap::wrap(&summary.title, 34).into_iter().map(|l| l.into_owned()).collect();
            if lines.len() > 3 {
                lines.truncate(3);
                lines[2].push('…');
            }
            let mut ctx = tera::Context::new();
            ctx.insert("title", &summary.title);
            ctx.insert("title_lines", &lines);
            ctx.insert("count", &crate::templates::format_thousands(summary.signature_count));
            ctx.insert("target", &crate::templates::format_thousands(summary.target));
            let svg = TEMPLATES.render("share.svg", &ctx).map_err(|e| AppError::internal(anyhow::anyhow!("share image failed to render: {e:?}")))?;
            Ok(Built { body: svg.into(), content_type: "image/svg+xml" })
        })
        .await;
    page_result(&state, r)
}

#[derive(serde::Deserialize)]
struct ConstituencyQuery {
    postcode: Option<String>,
    q: Option<String>,
    sort: Option<String>,
}

#[derive(Serialize)]
struct NearYou {
    ons_code: String,
    name: String,
    count: i64,
    mp: Option<String>,
    party: Option<String>,
}

/// "How many people near me have signed, and who is my MP?", and every constituency's count,
/// sortable and searchable, all without JavaScript.
#[get("/campaigns/{slug}/constituencies")]
async fn constituencies_page(state: web::Data<AppState>, slug: web::Path<String>, query: web::Query<ConstituencyQuery>, req: HttpRequest) -> HttpResponse {
    let r = async {
        let (counts, tables) = (state.counts.clone(), state.breakdowns.clone());
        let wanted = slug.into_inner();
        let (campaign, detail) = state
            .db
            .read(move |conn| {
                let c = campaigns::find_by_slug(conn, &wanted)?.filter(|c| c.state != "draft").ok_or_else(AppError::campaign_not_found)?;
                let d = progress::public_detail(conn, &c, &counts, &tables)?;
                Ok((c, d))
            })
            .await?;
        let query = query.into_inner();
        let postcode_text = query.postcode.unwrap_or_default().chars().take(20).collect::<String>();
        let mut postcode_error = None;
        let mut found = None;
        if !postcode_text.trim().is_empty() {
            state.limits.check(Action::PostcodeLookup, &req)?;
            match crate::domain::UkPostcode::parse(&postcode_text) {
                Err(problem) => postcode_error = Some(problem),
                Ok(postcode) => match crate::lookup::constituency_for(&state, &postcode).await {
                    Ok(crate::lookup::Place::Found { ons_code, name }) => {
                        let count = detail.signatures_by_constituency.iter().find(|r| r.ons_code == ons_code).map_or(0, |r| r.signature_count);
                        let (mp, party) = match crate::mps::mp_for(&state, &ons_code).await {
                            Ok(crate::mps::MpStatus::Known(mp)) => (Some(mp.name), mp.party),
                            _ => (None, None),
                        };
                        found = Some(NearYou { ons_code, name, count, mp, party });
                    }
                    Ok(crate::lookup::Place::Terminated) => postcode_error = Some("That postcode is no longer in use. Try the postcode you use now.".into()),
                    Ok(crate::lookup::Place::NotFound) => postcode_error = Some("We couldn't find that postcode. Check it and try again.".into()),
                    Err(e) => postcode_error = Some(e.message()),
                },
            }
        }
        let q = query.q.unwrap_or_default().trim().chars().take(100).collect::<String>();
        let needle = q.to_lowercase();
        let mut rows: Vec<_> = detail
            .signatures_by_constituency
            .into_iter()
            .filter(|r| needle.is_empty() || r.name.to_lowercase().contains(&needle) || r.mp.as_deref().is_some_and(|m| m.to_lowercase().contains(&needle)))
            .collect();
        let (sort, sort_label) = match query.sort.as_deref() {
            Some("name") => ("name", "constituency name"),
            Some("mp") => ("mp", "MP's name"),
            _ => ("count", "number of signatures, most first"),
        };
        match sort {
            "name" => rows.sort_by(|a, b| a.name.cmp(&b.name)),
            "mp" => rows.sort_by(|a, b| a.mp.cmp(&b.mp).then_with(|| a.name.cmp(&b.name))),
            _ => {} // already most first
        }
        let mut ctx = tera::Context::new();
        ctx.insert("campaign", &serde_json::json!({"slug": campaign.slug, "title": campaign.title, "open": detail.state == "open"}));
        ctx.insert("count", &detail.signature_count);
        ctx.insert("postcode", &postcode_text);
        ctx.insert("postcode_error", &postcode_error);
        ctx.insert("found", &found);
        ctx.insert("q", &q);
        ctx.insert("sort", sort);
        ctx.insert("sort_label", sort_label);
        ctx.insert("rows", &rows);
        let status = if postcode_error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
        Ok(render(&state, status, "constituencies.html", ctx))
    }
    .await;
    page_result(&state, r)
}

#[post("/campaigns/{slug}/sign")]
async fn sign_form(state: web::Data<AppState>, slug: web::Path<String>, req: HttpRequest, body: web::Payload) -> HttpResponse {
    let slug = slug.into_inner();
    let r = async {
        state.limits.check(Action::Sign, &req)?;
        let mut input = Input::form(&req, body).await?;
        match sign::SignatureRequest::parse(&mut input) {
            Ok(request) => {
                sign::sign(&state, &slug, request).await?;
                Ok(HttpResponse::SeeOther().insert_header((header::LOCATION, format!("/campaigns/{slug}/check-email"))).finish())
            }
            Err(errors) => {
                let (_, mut ctx) = campaign_context(&state, slug.clone()).await?;
                ctx.insert("errors", &errors_for_page(&errors));
                ctx.insert("error_count", &errors.0.len());
                ctx.insert("values", &serde_json::json!({
                    "name": input.raw("name").unwrap_or(""),
                    "email": input.raw("email").unwrap_or(""),
                    "postcode": input.raw("postcode").unwrap_or(""),
                    "updates_opt_in": input.flag("updates_opt_in"),
                    "show_name": input.flag("show_name"),
                    "consent": input.flag("consent"),
                }));
                Ok(render(&state, StatusCode::UNPROCESSABLE_ENTITY, "campaign.html", ctx))
            }
        }
    }
    .await;
    page_result(&state, r)
}

/// The first problem per field, as the page shows one message next to each field.
fn errors_for_page(errors: &FieldErrors) -> serde_json::Map<String, serde_json::Value> {
    errors.0.iter().filter_map(|(k, v)| v.first().map(|m| (k.clone(), serde_json::Value::String(m.clone())))).collect()
}

#[get("/campaigns/{slug}/check-email")]
async fn check_email(state: web::Data<AppState>, slug: web::Path<String>) -> HttpResponse {
    let r = async {
        let (_, ctx) = campaign_context(&state, slug.into_inner()).await?;
        Ok(render(&state, StatusCode::OK, "check_email.html", ctx))
    }
    .await;
    page_result(&state, r)
}

#[derive(Serialize)]
struct PublicSigner {
    first_name: String,
    constituency: Option<String>,
    when: String,
}

/// Recent signers who chose to be shown: first name and constituency only.
#[get("/campaigns/{slug}/signers")]
async fn signers(state: web::Data<AppState>, slug: web::Path<String>) -> HttpResponse {
    let slug = slug.into_inner();
    let r = async {
        let (ctx_campaign, rows) = {
            let slug = slug.clone();
            state
                .db
                .read(move |conn| {
                    let c = campaigns::find_by_slug(conn, &slug)?.filter(|c| c.state != "draft").ok_or_else(AppError::campaign_not_found)?;
                    let rows = signatures::recent_public(conn, c.id, 50)?;
                    let codes: Vec<String> = rows.iter().filter_map(|r| r.1.clone()).collect();
                    let names = constituencies::names_and_mps(conn, &codes)?;
                    let list: Vec<PublicSigner> = rows
                        .into_iter()
                        .map(|(name, code, at)| PublicSigner {
                            first_name: PersonName::parse(&name).map(|n| n.first_name().to_string()).unwrap_or_default(),
                            constituency: code.and_then(|c| names.get(&c).map(|(n, _)| n.clone())),
                            when: at.map(format_date).unwrap_or_default(),
                        })
                        .collect();
                    Ok((serde_json::json!({"slug": c.slug, "title": c.title}), list))
                })
                .await?
        };
        let mut ctx = tera::Context::new();
        ctx.insert("campaign", &ctx_campaign);
        ctx.insert("signers", &rows);
        Ok(render(&state, StatusCode::OK, "signers.html", ctx))
    }
    .await;
    page_result(&state, r)
}

/// For pages reached by a personal link: never kept by a browser or a proxy.
pub fn no_store(mut res: HttpResponse) -> HttpResponse {
    res.headers_mut().insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    res
}

/// Shows a button; opening the link confirms nothing by itself.
#[get("/confirm/{token}")]
async fn confirm_page(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    let token = token.into_inner();
    let r = async {
        let pending = confirmations::describe(&state, token.clone()).await?;
        let mut ctx = tera::Context::new();
        ctx.insert("token", &token);
        ctx.insert("kind", pending.kind);
        ctx.insert("recipient", &pending.recipient);
        ctx.insert("campaign", &serde_json::json!({"slug": pending.campaign_slug, "title": pending.campaign_title}));
        Ok(render(&state, StatusCode::OK, "confirm.html", ctx))
    }
    .await;
    no_store(page_result(&state, r))
}

#[post("/confirm/{token}")]
async fn confirm_submit(state: web::Data<AppState>, token: web::Path<String>, req: HttpRequest) -> HttpResponse {
    let r = async {
        state.limits.check(Action::Confirm, &req)?;
        let done = confirmations::confirm(&state, token.into_inner()).await?;
        let (_, mut ctx) = campaign_context(&state, done.campaign).await?;
        ctx.insert("public_url", &state.config.public_url);
        let page = if done.kind == "letter" { "letter_confirmed.html" } else { "confirmed.html" };
        let mut res = render(&state, StatusCode::OK, page, ctx);
        crate::session::remember(&mut res, &state, &done.mailbox);
        Ok(res)
    }
    .await;
    no_store(page_result(&state, r))
}

#[get("/privacy")]
async fn privacy(state: web::Data<AppState>) -> HttpResponse {
    render(&state, StatusCode::OK, "privacy.html", tera::Context::new())
}

/// Unknown paths: JSON under /api, a page elsewhere.
pub async fn not_found(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    use actix_web::ResponseError;
    // A known address asked with the wrong method is 405, not "page not found".
    let err = if req.resource_map().has_resource(req.path()) {
        AppError::MethodNotAllowed(format!("{} is not supported at this address.", req.method()))
    } else {
        AppError::not_found()
    };
    if req.path().starts_with("/api/") {
        err.error_response()
    } else {
        error_page(&state, &err)
    }
}
