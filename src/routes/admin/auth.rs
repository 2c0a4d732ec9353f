//! Signing in and out. The same message answers a wrong email and a wrong password, and
//! attempts are limited per address and per account.
use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::Deserialize;

use crate::clock::now_ms;
use crate::error::AppError;
use crate::models::{audit, staff};
use crate::rate_limit::Action;
use crate::routes::admin::{fail, form, page, see_other};
use crate::staff::accounts::{dummy_hash, verify_password};
use crate::staff::session::{self, CurrentStaff};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(login_page).service(login).service(logout);
}

#[derive(Deserialize)]
struct Next {
    next: Option<String>,
}

/// Only paths inside /admin are followed after sign-in, so the link cannot send staff elsewhere.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with("/admin") && !n.starts_with("//") && !n.contains("://") && !n.contains('\\') => n.to_string(),
        _ => "/admin".to_string(),
    }
}

#[get("/admin/login")]
async fn login_page(state: web::Data<AppState>, req: HttpRequest, next: Option<web::Query<Next>>) -> HttpResponse {
    let mut ctx = tera::Context::new();
    ctx.insert("next", &safe_next(next.as_ref().and_then(|n| n.next.as_deref())));
    page(&state, &req, None, StatusCode::OK, "admin/login.html", ctx)
}

#[post("/admin/login")]
async fn login(state: web::Data<AppState>, req: HttpRequest, body: web::Payload) -> HttpResponse {
    let input = match form(&req, &state, body).await {
        Ok(i) => i,
        Err(e) => return fail(&state, e),
    };
    let email = input.raw("email").unwrap_or("").trim().to_string();
    let password = input.raw("password").unwrap_or("").to_string();
    let next = safe_next(input.raw("next"));
    let refuse = |message: &str, status: StatusCode| {
        let mut ctx = tera::Context::new();
        ctx.insert("next", &next);
        ctx.insert("email", &email);
        ctx.insert("error", message);
        page(&state, &req, None, status, "admin/login.html", ctx)
    };
    if let Err(AppError::RateLimited { retry_after_secs }) = state.limits.check(Action::StaffSignIn, &req).and_then(|_| state.limits.check_account(&email)) {
        let mut res = refuse(&format!("Too many attempts. Please wait {retry_after_secs} seconds and try again."), StatusCode::TOO_MANY_REQUESTS);
        res.headers_mut().insert(actix_web::http::header::RETRY_AFTER, retry_after_secs.to_string().parse().expect("digits"));
        return res;
    }
    let lookup = email.clone();
    let member = match state.db.read(move |conn| Ok(staff::find_by_email(conn, &lookup)?)).await {
        Ok(m) => m,
        Err(e) => return fail(&state, e),
    };
    // Hash checking is slow on purpose; keep it off the async workers.
    let hash = member.as_ref().map(|m| m.password_hash.clone()).unwrap_or_else(|| dummy_hash().to_string());
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash)).await.unwrap_or(false);
    match member {
        Some(m) if ok && m.disabled_at.is_none() => {
            let (id, name) = (m.id, m.name.clone());
            let _ = state.db.write(move |conn| Ok(audit::record(conn, Some(id), &name, "staff.sign_in", "signed in", now_ms())?)).await;
            let mut res = see_other(&next);
            session::start(&mut res, &state, m.id);
            res
        }
        _ => refuse("That email and password don't match an account. Check them and try again.", StatusCode::UNPROCESSABLE_ENTITY),
    }
}

#[post("/admin/logout")]
async fn logout(state: web::Data<AppState>, req: HttpRequest, body: web::Payload, _staff: CurrentStaff) -> HttpResponse {
    if let Err(e) = form(&req, &state, body).await {
        return fail(&state, e);
    }
    let mut res = see_other("/admin/login");
    session::end(&mut res);
    res
}

#[cfg(test)]
mod tests {
    #[test]
    fn next_stays_inside_admin() {
        assert_eq!(super::safe_next(Some("/admin/campaigns")), "/admin/campaigns");
        for bad in ["https://evil.example/admin", "//evil.example", "/public", "/admin\\..\\x"] {
            assert_eq!(super::safe_next(Some(bad)), "/admin");
        }
    }
}
