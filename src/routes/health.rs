//! Operations: health and metrics.
use actix_web::{get, web, HttpResponse};
use diesel::connection::SimpleConnection;

use crate::clock::now_ms;
use crate::error::AppError;
use crate::metrics::{self, METRICS};
use crate::models::{outbox, signatures};
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz).service(prometheus_metrics);
}

/// 200 when the database answers a query.
#[get("/healthz")]
async fn healthz(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    state.db.read(|conn| Ok(conn.batch_execute("SELECT 1")?)).await?;
    Ok(HttpResponse::Ok().insert_header(("Cache-Control", "no-store")).json(serde_json::json!({"status": "ok"})))
}

#[get("/metrics")]
async fn prometheus_metrics(state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    let (by_state, (depth, oldest)) = state.db.read(|conn| Ok((signatures::count_by_state(conn)?, outbox::depth(conn)?))).await?;
    METRICS.signatures.reset();
    for (s, n) in by_state {
        METRICS.signatures.with_label_values(&[&s]).set(n);
    }
    METRICS.outbox.with_label_values(&["depth"]).set(depth);
    METRICS.outbox.with_label_values(&["oldest_age_seconds"]).set(oldest.map(|t| (now_ms() - t).max(0) / 1000).unwrap_or(0));
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").insert_header(("Cache-Control", "no-store")).body(metrics::render()))
}
