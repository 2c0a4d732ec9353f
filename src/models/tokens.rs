//! Single-purpose links sent by email. Only a SHA-256 of each token is stored, so a copy of the
//! database cannot be used to confirm or delete anything.
use base64::Engine;
use diesel::prelude::*;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::db::schema::tokens;
use crate::db::DbConn;

pub const CONFIRM_SIGNATURE: &str = "confirm_signature";

#[derive(Queryable, Selectable, Clone, Debug)]
#[diesel(table_name = tokens)]
pub struct Token {
    pub id: i64,
    pub token_hash: String,
    pub purpose: String,
    pub subject_id: i64,
    pub created_at: i64,
    pub expires_at: i64,
    pub used_at: Option<i64>,
}

pub fn hash(raw: &str) -> String {
    hex::encode(Sha256::digest(raw.as_bytes()))
}

/// Creates a token and returns the only copy of its raw value, for the email being written.
pub fn issue(conn: &mut DbConn, purpose: &str, subject_id: i64, now: i64, lifetime_ms: i64) -> QueryResult<String> {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    diesel::insert_into(tokens::table)
        .values((
            tokens::token_hash.eq(hash(&raw)),
            tokens::purpose.eq(purpose),
            tokens::subject_id.eq(subject_id),
            tokens::created_at.eq(now),
            tokens::expires_at.eq(now + lifetime_ms),
        ))
        .execute(conn)?;
    Ok(raw)
}

/// Looks a raw token up; anything that is not a plausible token is simply not found.
pub fn find(conn: &mut DbConn, raw: &str) -> QueryResult<Option<Token>> {
    if raw.is_empty() || raw.len() > 100 {
        return Ok(None);
    }
    tokens::table.filter(tokens::token_hash.eq(hash(raw))).select(Token::as_select()).first(conn).optional()
}

pub fn mark_used(conn: &mut DbConn, id: i64, now: i64) -> QueryResult<usize> {
    diesel::update(tokens::table.find(id).filter(tokens::used_at.is_null())).set(tokens::used_at.eq(now)).execute(conn)
}

/// Removes tokens that expired before `cutoff`: they can no longer do anything.
pub fn delete_expired_before(conn: &mut DbConn, cutoff: i64) -> QueryResult<usize> {
    diesel::delete(tokens::table.filter(tokens::expires_at.lt(cutoff))).execute(conn)
}

pub const CONFIRM_LETTER: &str = "confirm_letter";
