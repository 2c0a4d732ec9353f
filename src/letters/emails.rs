//! The three emails of a letter: the confirmation link to the writer, the letter itself to the
//! recipient, and a copy of what was sent back to the writer.
use lettre::message::Mailbox;

use crate::db::DbConn;
use crate::error::AppError;
use crate::models::letters::Letter;
use crate::models::{campaigns, letters, tokens};
use crate::services::mailer::{Draft, OutgoingEmail};
use crate::workers::outbox::CONFIRM_LIFETIME_MS;

fn mailbox(name: &str, email: &str) -> Result<Mailbox, AppError> {
    crate::services::mailer::mailbox(Some(name), email)
}

fn context(letter: &Letter, campaign_title: &str, public_url: &str) -> tera::Context {
    let mut ctx = tera::Context::new();
    ctx.insert("name", &letter.writer_name);
    ctx.insert("target_name", &letter.target_name);
    ctx.insert("campaign_title", campaign_title);
    ctx.insert("subject", &letter.subject);
    ctx.insert("letter", &letter.body);
    ctx.insert("privacy_url", &format!("{public_url}/privacy"));
    ctx
}

fn load(conn: &mut DbConn, letter_id: i64) -> Result<Option<(Letter, String)>, AppError> {
    let Some(letter) = letters::find(conn, letter_id)? else { return Ok(None) };
    let Some(campaign) = campaigns::find(conn, letter.campaign_id)? else { return Ok(None) };
    Ok(Some((letter, campaign.title)))
}

/// To the writer: a link to confirm before anything is sent, with the letter to check.
pub fn confirmation(conn: &mut DbConn, letter_id: i64, public_url: &str, now: i64) -> Result<Option<Draft>, AppError> {
    let Some((letter, title)) = load(conn, letter_id)? else { return Ok(None) };
    if letter.state != letters::PENDING {
        return Ok(None);
    }
    let token = tokens::issue(conn, tokens::CONFIRM_LETTER, letter.id, now, CONFIRM_LIFETIME_MS)?;
    let mut ctx = context(&letter, &title, public_url);
    ctx.insert("forget_url", &crate::privacy::forget::link_for_letter(conn, letter.id, public_url, now)?);
    ctx.insert("confirm_url", &format!("{public_url}/confirm/{token}"));
    Ok(Some(Draft::new(mailbox(&letter.writer_name, &letter.writer_email)?, "emails/letter_confirm.txt", ctx)))
}

/// To the recipient: one plain-text message from the platform address under the writer's name,
/// replies going straight to the writer.
pub fn delivery(letter: &Letter) -> Result<OutgoingEmail, AppError> {
    Ok(OutgoingEmail {
        to: mailbox(&letter.target_name, &letter.target_email)?,
        subject: letter.subject.clone(),
        body: letter.body.clone(),
        reply_to: Some(mailbox(&letter.writer_name, &letter.writer_email)?),
        from_name: Some(letter.writer_name.clone()),
        also_to: Vec::new(),
        list_unsubscribe: None,
        html: None,
    })
}

/// To the writer, after delivery: exactly what was sent.
pub fn copy(conn: &mut DbConn, letter_id: i64, public_url: &str, now: i64) -> Result<Option<Draft>, AppError> {
    let Some((letter, title)) = load(conn, letter_id)? else { return Ok(None) };
    let mut ctx = context(&letter, &title, public_url);
    ctx.insert("forget_url", &crate::privacy::forget::link_for_letter(conn, letter.id, public_url, now)?);
    Ok(Some(Draft::new(mailbox(&letter.writer_name, &letter.writer_email)?, "emails/letter_copy.txt", ctx)))
}

/// To the writer, when the recipient's server refused the letter for good: their words back.
pub fn undeliverable(conn: &mut DbConn, letter_id: i64, public_url: &str, now: i64) -> Result<Option<Draft>, AppError> {
    let Some((letter, title)) = load(conn, letter_id)? else { return Ok(None) };
    let mut ctx = context(&letter, &title, public_url);
    ctx.insert("forget_url", &crate::privacy::forget::link_for_letter(conn, letter.id, public_url, now)?);
    ctx.insert("target_email", &letter.target_email);
    Ok(Some(Draft::new(mailbox(&letter.writer_name, &letter.writer_email)?, "emails/letter_undeliverable.txt", ctx)))
}
