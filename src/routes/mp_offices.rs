//! Pages for MPs' offices: a campaign's figures for one constituency (public, counts only, so an
//! office can check what it is told), and the link that stops the weekly digest.
use actix_web::http::{header, StatusCode};
use actix_web::{get, post, web, HttpResponse};
use serde_json::json;

use crate::clock::{format_date, now_ms};
use crate::db::is_unique_violation;
use crate::error::AppError;
use crate::models::campaigns::{self, CampaignState};
use crate::models::constituencies;
use crate::routes::pages::{error_page, no_store, render};
use crate::state::AppState;
use crate::workers::mp_digest;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(constituency_page).service(stop_page).service(stop_submit);
}

/// ONS constituency codes are a letter and eight digits (E14001063); anything far from that
/// shape is not looked up.
fn plausible_code(code: &str) -> bool {
    (1..=16).contains(&code.len()) && code.chars().all(|c| c.is_ascii_alphanumeric())
}

fn with_cache(mut res: HttpResponse, value: &'static str) -> HttpResponse {
    res.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static(value));
    res
}

/// "N of your constituents have signed; M wrote to you", with the current MP. Nothing about any
/// signer or writer is on it.
#[get("/campaigns/{slug}/constituencies/{ons_code}")]
async fn constituency_page(state: web::Data<AppState>, path: web::Path<(String, String)>) -> HttpResponse {
    let (slug, ons_code) = path.into_inner();
    let r = async {
        if !plausible_code(&ons_code) {
            return Err(AppError::not_found());
        }
        let (campaign, place, mp, totals) = state
            .db
            .read(move |conn| {
                let c = campaigns::find_by_slug(conn, &slug)?.filter(|c| c.state != CampaignState::Draft.as_str()).ok_or_else(AppError::campaign_not_found)?;
                let place = constituencies::get(conn, &ons_code)?.ok_or_else(AppError::not_found)?;
                let mp = constituencies::current_mp(conn, &ons_code)?;
                let totals = mp_digest::totals(conn, c.id, &ons_code)?;
                Ok((c, place, mp, totals))
            })
            .await?;
        let mut ctx = tera::Context::new();
        ctx.insert("campaign", &json!({
            "slug": campaign.slug,
            "title": campaign.title,
            "summary": campaign.summary,
            "open": campaign.effective_state(now_ms()) == CampaignState::Open,
        }));
        ctx.insert("constituency", &json!({"name": place.name, "ons_code": place.ons_code}));
        ctx.insert("mp", &mp.map(|(name, party, _)| json!({"name": name, "party": party})));
        ctx.insert("signatures", &totals.signatures);
        ctx.insert("letters", &totals.letters);
        // No date of the latest signature or letter: where there is only one, it would say when
        // a neighbour took part.
        ctx.insert("today", &format_date(now_ms()));
        Ok(render(&state, StatusCode::OK, "mp_office.html", ctx))
    }
    .await;
    match r {
        Ok(res) => with_cache(res, "public, max-age=60"),
        Err(e) => error_page(&state, &e),
    }
}

fn stop_link_gone() -> AppError {
    AppError::NotFound("not_found", "This link is not valid any more. If you still get weekly emails, use the link in the latest one.".into())
}

/// Shows a button: mail scanners that open links stop nothing.
#[get("/digests/{token}/stop")]
async fn stop_page(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    let token = token.into_inner();
    let r = async {
        let raw = token.clone();
        let link = state.db.read(move |conn| mp_digest::describe_stop(conn, &raw, now_ms())).await?.ok_or_else(stop_link_gone)?;
        let mut ctx = tera::Context::new();
        ctx.insert("token", &token);
        ctx.insert("link", &link);
        ctx.insert("done", &false);
        Ok(render(&state, StatusCode::OK, "digest_stop.html", ctx))
    }
    .await;
    no_store(r.unwrap_or_else(|e| error_page(&state, &e)))
}

/// The button, and the `List-Unsubscribe-Post: List-Unsubscribe=One-Click` target (RFC 8058):
/// mail programs post here without a form of ours, so the token alone is the proof.
#[post("/digests/{token}/stop")]
async fn stop_submit(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    let token = token.into_inner();
    let r = async {
        let attempt = || {
            let raw = token.clone();
            state.db.write(move |conn| mp_digest::stop(conn, &raw, now_ms()))
        };
        // Two clicks at once: the second finds the first's row when it tries again.
        let link = match attempt().await {
            Err(e) if is_unique_violation(&e) => attempt().await?,
            other => other?,
        }
        .ok_or_else(stop_link_gone)?;
        let mut ctx = tera::Context::new();
        ctx.insert("link", &link);
        ctx.insert("done", &true);
        Ok::<_, AppError>(render(&state, StatusCode::OK, "digest_stop.html", ctx))
    }
    .await;
    no_store(r.unwrap_or_else(|e| error_page(&state, &e)))
}
