//! What every request handler and worker shares, built once at start-up.
use std::sync::Arc;

use lettre::message::Mailbox;
use tokio::sync::Notify;

use crate::config::Config;
use crate::db::Db;
use crate::services::mailer::Mailer;
use crate::services::members::MembersClient;
use crate::services::postcodes::PostcodesClient;

#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub db: Db,
    pub mailer: Mailer,
    pub mail_from: Mailbox,
    pub postcodes: PostcodesClient,
    pub members: MembersClient,
    pub limits: Arc<crate::rate_limit::RateLimits>,
    /// Encrypts and signs cookies.
    pub cookie_key: actix_web::cookie::Key,
    /// Wakes the outbox sender as soon as something is queued.
    pub outbox_wake: Arc<Notify>,
    /// Wakes the constituency backfill when a signature arrives without one.
    pub backfill_wake: Arc<Notify>,
    /// Confirmed signatures per campaign, in memory.
    pub counts: Arc<crate::petition::counts::Counts>,
    /// Campaigns and postcodes as signing reads them, kept briefly.
    pub sign_lookups: Arc<crate::petition::sign::Lookups>,
    /// Signatures by constituency per campaign, kept for a second for public pages.
    pub breakdowns: Arc<crate::petition::progress::Breakdowns>,
    /// Public pages and JSON, kept for a moment so a rush of readers costs one render.
    pub public_cache: Arc<crate::routes::cache::PublicCache>,
    /// Time for the slow workers; tests move it.
    pub clock: crate::clock::Clock,
}
