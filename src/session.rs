//! Rally's own cookies, encrypted and signed with the secret key: HttpOnly, SameSite=Strict,
//! Secure when served over HTTPS. Staff sessions, staff anti-forgery tokens and the
//! "confirmed in this browser a moment ago" cookie all use these two functions.
//!
//! That last cookie is set when a confirmation link's button is pressed, so a supporter who has
//! just confirmed their signature can send a letter without a second round trip to their inbox.
//! It holds only the mailbox key and the time, and lapses after 30 minutes.
use actix_web::cookie::{time::Duration as CookieDuration, Cookie, CookieJar, SameSite};
use actix_web::{HttpRequest, HttpResponse};

use crate::clock::{now_ms, MINUTE};
use crate::state::AppState;

const CONFIRMED: &str = "rally_confirmed";
const WINDOW_MS: i64 = 30 * MINUTE;

/// An encrypted cookie carrying `value`, ready to add to a response.
pub fn seal(state: &AppState, name: &str, value: String, max_age_ms: i64) -> Option<Cookie<'static>> {
    let mut cookie = Cookie::new(name.to_string(), value);
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Strict);
    cookie.set_secure(state.config.public_url.starts_with("https://"));
    cookie.set_path("/");
    cookie.set_max_age(CookieDuration::milliseconds(max_age_ms));
    let mut jar = CookieJar::new();
    jar.private_mut(&state.cookie_key).add(cookie);
    jar.get(name).cloned()
}

/// The value of one of our encrypted cookies, if it is present and genuine.
pub fn open(req: &HttpRequest, state: &AppState, name: &str) -> Option<String> {
    let cookie = req.cookie(name)?;
    let mut jar = CookieJar::new();
    jar.add_original(cookie);
    jar.private(&state.cookie_key).get(name).map(|c| c.value().to_string())
}

pub fn remember(res: &mut HttpResponse, state: &AppState, mailbox: &str) {
    if let Some(c) = seal(state, CONFIRMED, format!("{}|{mailbox}", now_ms()), WINDOW_MS) {
        let _ = res.add_cookie(&c);
    }
}

/// The mailbox key confirmed in this browser within the window, if any.
pub fn recently_confirmed(req: &HttpRequest, state: &AppState) -> Option<String> {
    let value = open(req, state, CONFIRMED)?;
    let (at, mailbox) = value.split_once('|')?;
    let at: i64 = at.parse().ok()?;
    (now_ms() - at < WINDOW_MS).then(|| mailbox.to_string())
}
