//! Public privacy routes: `/forget/{token}` (see and delete everything) and `/unsubscribe/{token}`.
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use lettre::message::Mailbox;

use crate::error::AppError;
use crate::privacy::forget::{self, Held};
use crate::rate_limit::Action;
use crate::routes::pages::{error_page, no_store, render};
use crate::services::mailer::OutgoingEmail;
use crate::state::AppState;
use crate::templates::render_email;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(forget_page).service(forget_submit).service(unsubscribe_page).service(unsubscribe_submit);
}

#[get("/forget/{token}")]
async fn forget_page(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    let token = token.into_inner();
    no_store(match forget::describe(&state, token.clone()).await {
        Ok(held) => {
            let mut ctx = tera::Context::new();
            ctx.insert("held", &held);
            ctx.insert("token", &token);
            render(&state, StatusCode::OK, "forget.html", ctx)
        }
        Err(e) => error_page(&state, &e),
    })
}

#[post("/forget/{token}")]
async fn forget_submit(state: web::Data<AppState>, token: web::Path<String>, req: HttpRequest) -> HttpResponse {
    let r = async {
        state.limits.check(Action::Confirm, &req)?;
        let held = forget::forget(&state, token.into_inner()).await?;
        // Sent directly rather than through the outbox: keeping the address to retry would
        // defeat the point. If it fails, the deletion still stands.
        if let Err(e) = send_goodbye(&state, &held).await {
            tracing::warn!(error = %e, "could not send the deletion confirmation");
        }
        state.outbox_wake.notify_one();
        Ok::<_, AppError>(render(&state, StatusCode::OK, "forgotten.html", tera::Context::new()))
    }
    .await;
    no_store(r.unwrap_or_else(|e| error_page(&state, &e)))
}

async fn send_goodbye(state: &AppState, held: &Held) -> anyhow::Result<()> {
    if held.email.is_empty() {
        return Ok(());
    }
    let mut ctx = tera::Context::new();
    ctx.insert("email", &held.email);
    ctx.insert("signatures", &held.signatures.len());
    ctx.insert("letters", &held.letters.len());
    let (subject, body) = render_email("emails/forgotten.txt", &ctx)?;
    let to = Mailbox::new(None, held.email.parse()?);
    state.mailer.send(&state.mail_from, OutgoingEmail::plain(to, subject, body)).await.map_err(|e| anyhow::anyhow!("{e}"))
}

#[get("/unsubscribe/{token}")]
async fn unsubscribe_page(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    let token = token.into_inner();
    no_store(match forget::unsubscribe_campaign(&state, token.clone()).await {
        Ok(campaign) => {
            let mut ctx = tera::Context::new();
            ctx.insert("token", &token);
            ctx.insert("campaign", &campaign);
            ctx.insert("done", &false);
            render(&state, StatusCode::OK, "unsubscribe.html", ctx)
        }
        Err(e) => error_page(&state, &e),
    })
}

/// Also the target of `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
#[post("/unsubscribe/{token}")]
async fn unsubscribe_submit(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    no_store(match forget::unsubscribe(&state, token.into_inner()).await {
        Ok(campaign) => {
            let mut ctx = tera::Context::new();
            ctx.insert("done", &true);
            ctx.insert("campaign", &campaign);
            render(&state, StatusCode::OK, "unsubscribe.html", ctx)
        }
        Err(e) => error_page(&state, &e),
    })
}
