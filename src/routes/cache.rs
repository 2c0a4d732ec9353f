//! Public pages and JSON kept for a moment, so a rush of readers costs one render a second
//! instead of one each, with `ETag` and `Cache-Control` so a CDN in front can take the reads too.
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

use crate::error::AppError;

/// Served while nothing it shows has changed (the counts' version), and at most this long, so
/// other edits (a campaign's text) show within it.
const FRESH: Duration = Duration::from_secs(1);
pub const CACHE_CONTROL: &str = "public, max-age=1";

pub struct Built {
    pub body: Bytes,
    pub content_type: &'static str,
}

struct Entry {
    built: Built,
    etag: String,
    made: Instant,
    version: u64,
}

#[derive(Default)]
pub struct PublicCache {
    entries: RwLock<HashMap<String, Arc<Entry>>>,
}

impl PublicCache {
    /// Answers from the cache when the entry for `key` is fresh for `version` (the state of what
    /// the response shows), else builds it. Errors are never cached.
    pub async fn respond<F, Fut>(&self, req: &HttpRequest, key: String, version: u64, build: F) -> Result<HttpResponse, AppError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Built, AppError>>,
    {
        let hit = self.entries.read().expect("cache lock").get(&key).cloned().filter(|e| {
            e.version == version && e.made.elapsed() < FRESH
        });
        let entry = match hit {
            Some(e) => e,
            None => {
                let built = build().await?;
                // Weak: the compression middleware may send the same content gzipped.
                let etag = format!("W/\"{}\"", hex::encode(&Sha256::digest(&built.body)[..12]));
                let e = Arc::new(Entry { built, etag, made: Instant::now(), version });
                self.entries.write().expect("cache lock").insert(key, e.clone());
                e
            }
        };
        Ok(answer(req, &entry))
    }
}

impl PublicCache {
    /// Drops everything, for changes the counts' version does not track (staff edits).
    pub fn clear(&self) {
        self.entries.write().expect("cache lock").clear();
    }
}

fn answer(req: &HttpRequest, e: &Entry) -> HttpResponse {
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').map(|t| t.trim().trim_start_matches("W/")).any(|t| t == "*" || t == e.etag.trim_start_matches("W/")));
    let mut res = if matches { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    res.insert_header((header::ETAG, e.etag.as_str())).insert_header((header::CACHE_CONTROL, CACHE_CONTROL));
    if e.built.content_type.starts_with("application/json") {
        // Public numbers: any site may read them (the count widget does), without cookies.
        res.insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"));
    }
    if matches {
        res.finish()
    } else {
        res.content_type(e.built.content_type).body(e.built.body.clone())
    }
}
