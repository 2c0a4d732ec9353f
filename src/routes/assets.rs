//! The few static files Rally serves, embedded in the binary. Every asset comes from Rally
//! itself: no CDN, font service or third-party script.
use actix_web::{get, web, HttpResponse};

const CSS: &str = include_str!("../../static/rally.css");
const JS: &str = include_str!("../../static/rally.js");
const WIDGET: &str = include_str!("../../static/count-widget.js");

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(css).service(js).service(widget);
}

fn asset(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok().content_type(content_type).insert_header(("Cache-Control", "public, max-age=3600")).body(body)
}

#[get("/static/rally.css")]
async fn css() -> HttpResponse {
    asset("text/css; charset=utf-8", CSS)
}

#[get("/static/rally.js")]
async fn js() -> HttpResponse {
    asset("text/javascript; charset=utf-8", JS)
}

/// Other sites embed this to show a count; it reads the CORS-enabled JSON.
#[get("/static/count-widget.js")]
async fn widget() -> HttpResponse {
    let mut res = asset("text/javascript; charset=utf-8", WIDGET);
    res.headers_mut().insert(actix_web::http::header::ACCESS_CONTROL_ALLOW_ORIGIN, actix_web::http::header::HeaderValue::from_static("*"));
    res
}
