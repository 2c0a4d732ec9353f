//! Anti-forgery tokens for staff forms: a random token kept in an encrypted SameSite=Strict
//! cookie and repeated in a hidden field; a POST whose field does not match gets 403.
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::clock::DAY;
use crate::error::AppError;
use crate::session;
use crate::state::AppState;

const COOKIE: &str = "rally_csrf";
pub const FIELD: &str = "csrf_token";

/// The token for this browser, and the cookie to set if it is new.
pub fn token(req: &HttpRequest, state: &AppState) -> (String, Option<actix_web::cookie::Cookie<'static>>) {
    if let Some(existing) = session::open(req, state, COOKIE).filter(|t| t.len() >= 32) {
        return (existing, None);
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let fresh = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let cookie = session::seal(state, COOKIE, fresh.clone(), DAY);
    (fresh, cookie)
}

pub fn set(res: &mut HttpResponse, cookie: Option<actix_web::cookie::Cookie<'static>>) {
    if let Some(c) = cookie {
        let _ = res.add_cookie(&c);
    }
}

/// Checks a submitted token against this browser's.
pub fn verify(req: &HttpRequest, state: &AppState, submitted: &str) -> Result<(), AppError> {
    match session::open(req, state, COOKIE) {
        Some(expected) if !submitted.is_empty() && bool::from(expected.as_bytes().ct_eq(submitted.as_bytes())) => Ok(()),
        _ => Err(AppError::Forbidden("This form has expired or did not come from Rally. Go back, reload the page and try again.".into())),
    }
}
