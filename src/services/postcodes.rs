//! A client for postcodes.io (or a self-hosted copy), which maps a postcode to its
//! parliamentary constituency.
use std::time::Duration;

use serde::Deserialize;

use crate::domain::UkPostcode;
use crate::services::breaker::{Breaker, Guarded};

#[derive(Clone)]
pub struct PostcodesClient {
    http: reqwest::Client,
    base: String,
    breaker: Breaker,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PostcodeLookup {
    Found { constituency_code: String, constituency_name: String },
    /// postcodes.io does not recognise the postcode's shape.
    Invalid,
    NotFound,
    /// The postcode existed once and has been retired.
    Terminated,
}

#[derive(Debug, thiserror::Error)]
#[error("postcodes.io lookup failed: {0}")]
pub struct UpstreamError(String);

#[derive(Deserialize)]
struct Envelope {
    status: u16,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    result: Option<PostcodeResult>,
    #[serde(default)]
    terminated: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct PostcodeResult {
    #[serde(default)]
    parliamentary_constituency: Option<String>,
    #[serde(default)]
    parliamentary_constituency_2024: Option<String>,
    #[serde(default)]
    codes: Codes,
}

#[derive(Deserialize, Default)]
struct Codes {
    #[serde(default)]
    parliamentary_constituency: Option<String>,
    #[serde(default)]
    parliamentary_constituency_2024: Option<String>,
}

impl PostcodesClient {
    pub fn new(base: &str) -> Self {
        // Short timeouts: a signature never waits on this, and a lookup page should fail fast.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(4))
            .user_agent(concat!("Rally/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("reqwest client");
        PostcodesClient { http, base: base.trim_end_matches('/').to_string(), breaker: Breaker::new("postcodes") }
    }

    pub async fn lookup(&self, postcode: &UkPostcode) -> Result<PostcodeLookup, UpstreamError> {
        match self.breaker.call(self.fetch(postcode)).await {
            Ok(found) => Ok(found),
            Err(Guarded::Failed(e)) => {
                crate::metrics::upstream_error("postcodes");
                Err(e)
            }
            Err(Guarded::Open) => Err(UpstreamError("not called: it failed several times in a row just now".into())),
        }
    }

    async fn fetch(&self, postcode: &UkPostcode) -> Result<PostcodeLookup, UpstreamError> {
        let mut url = url::Url::parse(&self.base).map_err(|e| UpstreamError(e.to_string()))?;
        url.path_segments_mut().map_err(|_| UpstreamError("bad base URL".into()))?.pop_if_empty().push("postcodes").push(postcode.as_str());
        let res = self.http.get(url).send().await.map_err(|e| UpstreamError(e.without_url().to_string()))?;
        let status = res.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(UpstreamError(format!("status {status}")));
        }
        let body: Envelope = res.json().await.map_err(|e| UpstreamError(format!("unreadable answer: {}", e.without_url())))?;
        match body.status {
            200 => {
                let r = body.result.ok_or_else(|| UpstreamError("answer had no result".into()))?;
                // Since the 2024 boundary change postcodes.io names the current constituency in both
                // fields; take the unsuffixed one and fall back to the `_2024` one.
                let name = r.parliamentary_constituency.or(r.parliamentary_constituency_2024);
                let code = r.codes.parliamentary_constituency.or(r.codes.parliamentary_constituency_2024);
                match (code, name) {
                    (Some(constituency_code), Some(constituency_name)) => Ok(PostcodeLookup::Found { constituency_code, constituency_name }),
                    // Crown dependencies and some special postcodes have no constituency.
                    _ => Ok(PostcodeLookup::NotFound),
                }
            }
            404 if body.terminated.is_some() => Ok(PostcodeLookup::Terminated),
            404 if body.error.as_deref().is_some_and(|e| e.eq_ignore_ascii_case("invalid postcode")) => Ok(PostcodeLookup::Invalid),
            404 => Ok(PostcodeLookup::NotFound),
            other => Err(UpstreamError(format!("status {other} in body"))),
        }
    }
}
