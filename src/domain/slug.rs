use std::sync::LazyLock;

use regex::Regex;

/// A campaign's address part: lower-case words joined by hyphens, at most 64 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slug(String);

static SHAPE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z0-9]+(-[a-z0-9]+)*$").expect("slug regex"));

impl Slug {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.is_empty() || raw.len() > 64 || !SHAPE.is_match(raw) {
            return Err("Use 1–64 lower-case letters, digits and single hyphens.".into());
        }
        Ok(Slug(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
