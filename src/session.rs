//! "You confirmed your address in this browser a moment ago": an encrypted, HttpOnly cookie set
//! when a confirmation link's button is pressed, so a supporter who has just confirmed their
//! signature can send a letter without a second round trip to their inbox. It holds only the
//! mailbox key and the time, sealed with the secret key, and lapses after 30 minutes.
use actix_web::cookie::{time::Duration as CookieDuration, Cookie, CookieJar, Key, SameSite};
use actix_web::{HttpRequest, HttpResponse};

use crate::clock::{now_ms, MINUTE};

const COOKIE: &str = "rally_confirmed";
const WINDOW_MS: i64 = 30 * MINUTE;

pub fn remember(res: &mut HttpResponse, key: &Key, mailbox: &str, secure: bool) {
    let mut jar = CookieJar::new();
    let mut cookie = Cookie::new(COOKIE, format!("{}|{mailbox}", now_ms()));
    cookie.set_http_only(true);
    cookie.set_same_site(SameSite::Strict);
    cookie.set_secure(secure);
    cookie.set_path("/");
    cookie.set_max_age(CookieDuration::milliseconds(WINDOW_MS));
    jar.private_mut(key).add(cookie);
    if let Some(sealed) = jar.get(COOKIE) {
        let _ = res.add_cookie(sealed);
    }
}

/// The mailbox key confirmed in this browser within the window, if any.
pub fn recently_confirmed(req: &HttpRequest, key: &Key) -> Option<String> {
    let sealed = req.cookie(COOKIE)?;
    let mut jar = CookieJar::new();
    jar.add_original(sealed);
    let opened = jar.private(key).get(COOKIE)?;
    let (at, mailbox) = opened.value().split_once('|')?;
    let at: i64 = at.parse().ok()?;
    (now_ms() - at < WINDOW_MS).then(|| mailbox.to_string())
}
