//! The key that encrypts and signs Rally's cookies: `RALLY_SECRET_KEY` when set, otherwise made
//! on first run and kept in the database, so every instance on one database shares it.
use actix_web::cookie::Key;
use anyhow::Context;
use base64::Engine;
use rand::RngCore;

use crate::db::Db;
use crate::models::settings;

const SETTING: &str = "secret_key";

pub fn load_or_create(db: &Db, configured: Option<&str>) -> anyhow::Result<Key> {
    let b64 = base64::engine::general_purpose::STANDARD;
    if let Some(text) = configured {
        let bytes = b64.decode(text.trim()).context("RALLY_SECRET_KEY must be base64")?;
        anyhow::ensure!(bytes.len() >= 64, "RALLY_SECRET_KEY must hold at least 64 bytes (base64 of `head -c 64 /dev/urandom`)");
        return Ok(Key::from(&bytes));
    }
    let mut conn = db.writer_blocking().map_err(|e| anyhow::anyhow!("{e}"))?;
    use diesel::Connection;
    let stored = conn.transaction(|c| -> anyhow::Result<String> {
        if let Some(existing) = settings::get(c, SETTING)? {
            return Ok(existing);
        }
        let mut bytes = [0u8; 64];
        rand::rng().fill_bytes(&mut bytes);
        let fresh = b64.encode(bytes);
        settings::insert(c, SETTING, &fresh)?;
        Ok(fresh)
    });
    // Two instances starting together: the loser of the insert reads the winner's key.
    let stored = match stored {
        Ok(s) => s,
        Err(_) => settings::get(&mut conn, SETTING)?.context("secret key missing after a failed insert")?,
    };
    let bytes = b64.decode(stored).context("stored secret key is not base64")?;
    Ok(Key::from(&bytes))
}
