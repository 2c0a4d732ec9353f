//! Staff pages under /admin: server-rendered, working without JavaScript. Every page needs a
//! signed-in staff member (the `CurrentStaff` extractor sends anyone else to /admin/login), and
//! every form carries an anti-forgery token checked on POST.
pub mod audit;
pub mod auth;
pub mod campaigns;
pub mod dashboard;
pub mod letter_templates;
pub mod mps;
pub mod outbox;
pub mod signatures;
pub mod staff;
pub mod updates;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};

use crate::error::AppError;
use crate::models::staff::StaffMember;
use crate::routes::input::Input;
use crate::routes::pages::error_page;
use crate::staff::csrf;
use crate::state::AppState;
use crate::templates::TEMPLATES;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(auth::configure)
        .configure(dashboard::configure)
        .configure(campaigns::configure)
        .configure(letter_templates::configure)
        .configure(signatures::configure)
        .configure(mps::configure)
        .configure(outbox::configure)
        .configure(audit::configure)
        .configure(staff::configure)
        .configure(updates::configure);
}

/// Renders an admin page with the staff member, the navigation and this browser's
/// anti-forgery token (as `csrf_token`, for every form). Never cached.
pub fn page(state: &AppState, req: &HttpRequest, staff: Option<&StaffMember>, status: StatusCode, template: &str, mut ctx: tera::Context) -> HttpResponse {
    let (token, cookie) = csrf::token(req, state);
    ctx.insert("csrf_token", &token);
    if let Some(s) = staff {
        ctx.insert("staff", &serde_json::json!({"id": s.id, "name": s.name, "email": s.email, "role": s.role, "is_admin": s.is_admin()}));
    }
    let mut res = match TEMPLATES.render(template, &ctx) {
        Ok(html) => HttpResponse::build(status).content_type("text/html; charset=utf-8").body(html),
        Err(e) => {
            tracing::error!(template, error = ?e, "admin page failed to render");
            return HttpResponse::InternalServerError().content_type("text/plain; charset=utf-8").body("Something went wrong on our side.");
        }
    };
    res.headers_mut().insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    csrf::set(&mut res, cookie);
    res
}

/// Reads a staff form, refusing it (403) unless its anti-forgery token matches this browser's.
pub async fn form(req: &HttpRequest, state: &AppState, body: web::Payload) -> Result<Input, AppError> {
    let input = Input::form_limited(req, body, crate::routes::input::STAFF_BODY_LIMIT).await?;
    csrf::verify(req, state, input.raw(csrf::FIELD).unwrap_or(""))?;
    Ok(input)
}

/// Admins only (managing staff, for instance).
pub fn require_admin(staff: &StaffMember) -> Result<(), AppError> {
    if staff.is_admin() {
        Ok(())
    } else {
        Err(AppError::Forbidden("Only admins can do that.".into()))
    }
}

/// A redirect after a successful POST (post/redirect/get), with an optional notice in the query.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location.to_string())).finish()
}

/// Errors on admin pages are shown with the public error page.
pub fn fail(state: &AppState, e: AppError) -> HttpResponse {
    error_page(state, &e)
}

/// A handler's page, or its error shown as a page.
pub fn respond(state: &AppState, r: Result<HttpResponse, AppError>) -> HttpResponse {
    r.unwrap_or_else(|e| fail(state, e))
}
