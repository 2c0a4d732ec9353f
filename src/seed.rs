//! The campaigns shipped under `letters/`, loaded into an empty database so a new install shows
//! the default campaign at once. After that the database is the truth.
use anyhow::{bail, Context};
use include_dir::{include_dir, Dir};
use serde::Deserialize;

use crate::clock::now_ms;
use crate::db::DbConn;
use crate::domain::Slug;
use crate::models::campaigns::{self, CampaignState, NewCampaign};
use crate::models::{letter_templates, milestones, targets};

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

/// A shipped campaign: its definition, its Markdown body, and its letters as
/// (target key, subject template, body template).
pub struct ShippedCampaign {
    pub file: CampaignFile,
    pub body_md: String,
    pub letters: Vec<(String, String, String)>,
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
        let mut letters = Vec::new();
        for (key, spec) in &file.letters {
            let subject = spec
                .get("subject")
                .and_then(|v| v.as_str())
                .with_context(|| format!("letters/{name}/campaign.toml: [letters.{key}] needs a subject"))?;
            let body = dir
                .get_file(dir.path().join(format!("{key}.txt")))
                .and_then(|f| f.contents_utf8())
                .with_context(|| format!("letters/{name}/{key}.txt is missing"))?;
            if key != "mp" && !file.targets.iter().any(|t| &t.key == key) {
                bail!("letters/{name}: a letter to `{key}` but no target with that key");
            }
            letters.push((key.clone(), subject.to_string(), body.to_string()));
        }
        out.push(ShippedCampaign { file, body_md, letters });
    }
    out.sort_by(|a, b| a.file.slug.cmp(&b.file.slug));
    Ok(out)
}

/// Loads the shipped campaigns if the database has none, and the shipped letter templates of
/// any shipped campaign that has none yet (a database made before letters existed); returns
/// how many campaigns were loaded.
pub fn load_if_empty(conn: &mut DbConn) -> anyhow::Result<usize> {
    use diesel::Connection;
    conn.transaction(|conn| {
        // Instances starting together on one PostgreSQL take turns here, so the second sees
        // the first one's campaigns instead of inserting them again (released at commit).
        if let DbConn::Pg(_) = conn {
            use diesel::connection::SimpleConnection;
            conn.batch_execute("SELECT pg_advisory_xact_lock(727275)")?;
        }
        let all = shipped()?;
        let now = now_ms();
        for c in &all {
            if let Some(existing) = campaigns::find_by_slug(conn, &c.file.slug)? {
                if letter_templates::count_for_campaign(conn, existing.id)? == 0 {
                    for (key, subject, body) in &c.letters {
                        letter_templates::save(conn, existing.id, key, subject, body, Some("shipped with Rally"), now)?;
                    }
                }
            }
        }
        if campaigns::count(conn)? > 0 {
            return Ok(0);
        }
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
            for (key, subject, body) in &c.letters {
                letter_templates::save(conn, id, key, subject, body, Some("shipped with Rally"), now)?;
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
        let keys: Vec<&str> = c.letters.iter().map(|l| l.0.as_str()).collect();
        assert!(keys.contains(&"mp") && keys.contains(&"justice-secretary"));
    }
}
