//! The campaigns shipped under `letters/`, loaded into an empty database so a new install shows
//! the default campaign at once. After that the database is the truth.
use anyhow::{bail, Context};
use include_dir::{include_dir, Dir};
use serde::Deserialize;

use crate::clock::now_ms;
use crate::db::DbConn;
use crate::domain::Slug;
use crate::models::campaigns::{self, CampaignState, NewCampaign};
use crate::models::{milestones, targets};

static LETTERS: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/letters");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignFile {
    pub slug: String,
    pub title: String,
    pub summary: String,
    pub state: String,
    #[serde(default)]
    pub milestones: Vec<i64>,
    #[serde(default)]
    pub content_note: Option<String>,
    #[serde(default)]
    pub targets: Vec<TargetFile>,
    #[serde(default)]
    pub letters: toml::Table,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetFile {
    pub key: String,
    pub name: String,
    pub title: String,
    pub salutation: String,
    pub email: String,
}

/// A shipped campaign: its definition and its Markdown body.
pub struct ShippedCampaign {
    pub file: CampaignFile,
    pub body_md: String,
}

pub fn shipped() -> anyhow::Result<Vec<ShippedCampaign>> {
    let mut out = Vec::new();
    for dir in LETTERS.dirs() {
        let name = dir.path().display().to_string();
        let toml_text = dir
            .get_file(dir.path().join("campaign.toml"))
            .and_then(|f| f.contents_utf8())
            .with_context(|| format!("letters/{name} has no campaign.toml"))?;
        let file: CampaignFile = toml::from_str(toml_text).with_context(|| format!("letters/{name}/campaign.toml"))?;
        Slug::parse(&file.slug).map_err(|e| anyhow::anyhow!("letters/{name}: slug: {e}"))?;
        if CampaignState::parse(&file.state).is_none() {
            bail!("letters/{name}: state must be draft, open or closed");
        }
        let body_md = dir.get_file(dir.path().join("body.md")).and_then(|f| f.contents_utf8()).unwrap_or("").to_string();
        out.push(ShippedCampaign { file, body_md });
    }
    out.sort_by(|a, b| a.file.slug.cmp(&b.file.slug));
    Ok(out)
}

/// Loads the shipped campaigns if the database has none; returns how many were loaded.
pub fn load_if_empty(conn: &mut DbConn) -> anyhow::Result<usize> {
    use diesel::Connection;
    conn.transaction(|conn| {
        if campaigns::count(conn)? > 0 {
            return Ok(0);
        }
        let all = shipped()?;
        let now = now_ms();
        for c in &all {
            let f = &c.file;
            let id = campaigns::insert(
                conn,
                &NewCampaign {
                    slug: &f.slug,
                    title: &f.title,
                    summary: &f.summary,
                    body_md: &c.body_md,
                    content_note: f.content_note.as_deref(),
                    state: &f.state,
                    closes_at: None,
                    created_at: now,
                    updated_at: now,
                },
            )?;
            for m in &f.milestones {
                milestones::insert(conn, id, *m)?;
            }
            for (i, t) in f.targets.iter().enumerate() {
                targets::insert(
                    conn,
                    &targets::NewTarget {
                        campaign_id: id,
                        key: &t.key,
                        name: &t.name,
                        title: &t.title,
                        salutation: &t.salutation,
                        email: &t.email,
                        position: i as i64,
                    },
                )?;
            }
        }
        Ok(all.len())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn shipped_campaigns_parse() {
        let all = super::shipped().unwrap();
        let c = all.iter().find(|c| c.file.slug == "legal-advocacy").expect("default campaign ships");
        assert_eq!(c.file.milestones.first(), Some(&1500));
        assert!(c.body_md.contains("12%") || c.body_md.contains("12 %"));
        assert!(c.file.targets.iter().any(|t| t.key == "justice-secretary"));
    }
}
