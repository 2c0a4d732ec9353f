//! HTTP routes: the JSON API, the public pages, health and static assets.
pub mod admin;
pub mod api;
pub mod assets;
pub mod cache;
pub mod health;
pub mod input;
pub mod mp_offices;
pub mod pages;
pub mod privacy;
pub mod replies;
pub mod write;

use actix_web::web;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::configure).configure(admin::configure).configure(api::configure).configure(assets::configure).configure(write::configure).configure(privacy::configure).configure(replies::configure).configure(mp_offices::configure).configure(pages::configure);
}
