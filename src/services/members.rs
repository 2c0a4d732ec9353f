//! A client for the UK Parliament Members API (placeholder: filled in with `mps sync`).
#[derive(Clone)]
pub struct MembersClient {
    pub http: reqwest::Client,
    pub base: String,
}

impl MembersClient {
    pub fn new(base: &str) -> Self {
        MembersClient { http: reqwest::Client::new(), base: base.trim_end_matches('/').to_string() }
    }
}
