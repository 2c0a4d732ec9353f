//! Staff sessions: an encrypted, HttpOnly, SameSite=Strict cookie holding the account id and
//! when it was issued. Sessions last 8 hours; signing out removes the cookie, and disabling an
//! account ends its sessions at the next request.
use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::Cookie;
use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};

use crate::clock::{now_ms, HOUR};
use crate::models::staff::{self, StaffMember};
use crate::session::{open, seal};
use crate::state::AppState;

pub const COOKIE: &str = "rally_staff";
const LIFETIME_MS: i64 = 8 * HOUR;

pub fn start(res: &mut HttpResponse, state: &AppState, staff_id: i64) {
    if let Some(c) = seal(state, COOKIE, format!("{staff_id}|{}", now_ms()), LIFETIME_MS) {
        let _ = res.add_cookie(&c);
    }
}

pub fn end(res: &mut HttpResponse) {
    let mut gone = Cookie::new(COOKIE, "");
    gone.set_path("/");
    gone.make_removal();
    let _ = res.add_cookie(&gone);
}

/// The signed-in staff member. As an extractor it sends anyone else to the sign-in page,
/// before any data is read.
#[derive(Debug, Clone)]
pub struct CurrentStaff(pub StaffMember);

#[derive(Debug)]
pub struct SignInFirst(String);

impl std::fmt::Display for SignInFirst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("sign in first")
    }
}

impl ResponseError for SignInFirst {
    fn status_code(&self) -> StatusCode {
        StatusCode::SEE_OTHER
    }
    fn error_response(&self) -> HttpResponse {
        let next = url::form_urlencoded::byte_serialize(self.0.as_bytes()).collect::<String>();
        HttpResponse::SeeOther().insert_header((header::LOCATION, format!("/admin/login?next={next}"))).insert_header((header::CACHE_CONTROL, "no-store")).finish()
    }
}

impl FromRequest for CurrentStaff {
    type Error = SignInFirst;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            // Only a same-site path is kept for after sign-in; anything else is dropped.
            let here = if req.method() == actix_web::http::Method::GET { req.uri().path().to_string() } else { "/admin".to_string() };
            let deny = || SignInFirst(here.clone());
            let state = req.app_data::<web::Data<AppState>>().ok_or_else(deny)?.clone();
            let value = open(&req, &state, COOKIE).ok_or_else(deny)?;
            let (id, issued) = value.split_once('|').ok_or_else(deny)?;
            let (id, issued): (i64, i64) = (id.parse().map_err(|_| deny())?, issued.parse().map_err(|_| deny())?);
            if now_ms() - issued > LIFETIME_MS {
                return Err(deny());
            }
            let member = state.db.read(move |conn| Ok(staff::find(conn, id)?)).await.map_err(|_| deny())?.ok_or_else(deny)?;
            if member.disabled_at.is_some() || issued < member.sessions_valid_after {
                return Err(deny());
            }
            Ok(CurrentStaff(member))
        })
    }
}
