//! Builds the application once (database, mailer, clients, templates) and runs the web server
//! with its background workers. Tests bind port 0 and read the port back.
use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::{Server, Service};
use actix_web::middleware::{Compress, DefaultHeaders};
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use tokio::sync::Notify;

use crate::config::Config;
use crate::db::Db;
use crate::routes;
use crate::seed;
use crate::services::mailer::{DkimSettings, Mailer};
use crate::services::members::MembersClient;
use crate::services::postcodes::PostcodesClient;
use crate::state::AppState;
use crate::workers;

pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
}

/// Headers on every response: no framing, no sniffing, no referrer, and only Rally's own assets;
/// HSTS when Rally is served over HTTPS.
fn security_headers(https: bool) -> DefaultHeaders {
    let headers = if https { DefaultHeaders::new().add(("Strict-Transport-Security", "max-age=31536000; includeSubDomains")) } else { DefaultHeaders::new() };
    headers
        .add((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
        ))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Frame-Options", "DENY"))
        .add(("Permissions-Policy", "camera=(), microphone=(), geolocation=(), interest-cohort=()"))
}

/// Opens the database, migrates it, and loads the shipped campaigns if it is empty.
pub fn prepare_database(config: &Config) -> anyhow::Result<Db> {
    let db = Db::connect(&config.database_url)?;
    db.migrate()?;
    let mut conn = db.writer_blocking().map_err(|e| anyhow::anyhow!("{e}"))?;
    let loaded = seed::load_if_empty(&mut conn)?;
    if loaded > 0 {
        tracing::info!(loaded, "loaded the shipped campaigns into an empty database");
    }
    Ok(db)
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let db = prepare_database(&config)?;
        let mail_from: lettre::message::Mailbox =
            config.mail_from.parse().with_context(|| format!("RALLY_MAIL_FROM `{}` is not an address", config.mail_from))?;
        let dkim = match (&config.dkim_selector, &config.dkim_key_file) {
            (Some(selector), Some(file)) => Some(DkimSettings {
                selector: selector.clone(),
                key: std::fs::read_to_string(file).with_context(|| format!("could not read RALLY_DKIM_KEY_FILE {}", file.display()))?,
                domain: mail_from.email.domain().to_string(),
            }),
            _ => None,
        };
        let mailer = Mailer::from_config(config.smtp_url.as_deref(), &config.mail_dir, dkim)?;
        let cookie_key = crate::secret::load_or_create(&db, config.secret_key.as_deref())?;
        let limits = Arc::new(crate::rate_limit::RateLimits::new(config.rate_limits, config.trusted_proxies.clone()));
        let counts = {
            let mut conn = db.writer_blocking().map_err(|e| anyhow::anyhow!("{e}"))?;
            crate::petition::counts::Counts::load(&mut conn).map_err(|e| anyhow::anyhow!("could not count the signatures: {e}"))?
        };
        let state = AppState {
            limits,
            cookie_key,
            postcodes: PostcodesClient::new(&config.postcodes_url),
            members: MembersClient::new(&config.members_api_url),
            config: Arc::new(config),
            db,
            mailer,
            mail_from,
            outbox_wake: Arc::new(Notify::new()),
            backfill_wake: Arc::new(Notify::new()),
            counts,
            breakdowns: Arc::default(),
            sign_lookups: Arc::default(),
            public_cache: Arc::new(crate::routes::cache::PublicCache::default()),
            clock: crate::clock::Clock::default(),
        };
        let listener = TcpListener::bind(&state.config.listen).with_context(|| format!("could not listen on {}", state.config.listen))?;
        let port = listener.local_addr()?.port();
        let data = web::Data::new(state.clone());
        let https = state.config.public_url.starts_with("https://");
        let mut server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .wrap(Compress::default())
                .wrap(security_headers(https))
                .wrap_fn(|req, srv| {
                    // Metrics by route pattern, never by path: paths carry tokens.
                    let start = std::time::Instant::now();
                    let method = req.method().to_string();
                    let fut = srv.call(req);
                    async move {
                        let res = fut.await?;
                        let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
                        crate::metrics::observe_request(&route, &method, res.status().as_u16(), start.elapsed());
                        // A staff change (a campaign published, retitled, its ladder moved) shows on
                        // public pages at once, not after the cache's second.
                        if method != "GET" && route.starts_with("/admin/") && !res.status().is_client_error() && !res.status().is_server_error() {
                            if let Some(state) = res.request().app_data::<web::Data<AppState>>() {
                                state.public_cache.clear();
                                state.sign_lookups.clear();
                            }
                        }
                        Ok(res)
                    }
                })
                .wrap_fn(|mut req, srv| {
                    // HEAD is GET without the body (uptime monitors and link checkers use it).
                    let head = req.method() == actix_web::http::Method::HEAD;
                    if head {
                        req.head_mut().method = actix_web::http::Method::GET;
                    }
                    let fut = srv.call(req);
                    async move {
                        let res = fut.await?;
                        Ok(if head { res.map_body(|_, _| actix_web::body::BoxBody::new(())) } else { res.map_into_boxed_body() })
                    }
                })
                .configure(routes::configure)
                .default_service(web::to(routes::pages::not_found))
        })
        .listen(listener)?
        .shutdown_timeout(5);
        if let Some(n) = state.config.workers {
            server = server.workers(n);
        }
        Ok(Application { port, server: server.run(), state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until the server stops (Ctrl-C or SIGTERM), with the outbox sender, the
    /// constituency backfill and the retention job running beside it.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let sender = tokio::spawn(workers::outbox::run(self.state.clone(), stopping));
        let backfill = tokio::spawn(workers::backfill::run(self.state.clone()));
        let retention = tokio::spawn(workers::retention::run(self.state.db.clone(), workers::retention::Retention::from_config(&self.state.config)));
        let counts = tokio::spawn(crate::petition::counts::run(self.state.db.clone(), self.state.counts.clone()));
        let milestones = tokio::spawn(workers::milestones::run(self.state.clone()));
        let updates = tokio::spawn(workers::updates::run(self.state.clone()));
        let reply_survey = tokio::spawn(workers::reply_survey::run(self.state.clone()));
        let mp_digest = tokio::spawn(workers::mp_digest::run(self.state.clone()));
        let limits = self.state.limits.clone();
        let forget = tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                limits.forget_idle();
            }
        });
        // The server stops on SIGTERM or Ctrl-C after finishing the requests in flight.
        let result = self.server.await;
        let _ = stop.send(true);
        if tokio::time::timeout(std::time::Duration::from_secs(15), sender).await.is_err() {
            tracing::warn!("the outbox sender did not finish its batch in time; its rows are retried after the lease");
        }
        backfill.abort();
        retention.abort();
        counts.abort();
        milestones.abort();
        updates.abort();
        reply_survey.abort();
        mp_digest.abort();
        forget.abort();
        result
    }
}
