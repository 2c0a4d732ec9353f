//! `/forget/{token}`: every email to a supporter carries a link that shows what Rally holds about
//! their mailbox and deletes all of it: signatures (taken off the counts), letters, links and
//! queued emails, in every campaign. Delivered letters cannot be recalled from their recipients.
use diesel::prelude::*;
use serde::Serialize;

use crate::clock::{format_date, now_ms, DAY};
use crate::db::schema::{campaigns, letters, outbox, signatures, tokens, update_deliveries};
use crate::db::DbConn;
use crate::error::AppError;
use crate::models::tokens as token_model;
use crate::state::AppState;

pub const FORGET_SIGNATURE: &str = "forget_signature";
pub const FORGET_LETTER: &str = "forget_letter";
pub const UNSUBSCRIBE: &str = "unsubscribe";
/// Links in emails keep working long after the email: a survivor may look for it much later.
pub const LINK_LIFETIME_MS: i64 = 365 * DAY;

#[derive(Debug, Clone, Serialize)]
pub struct HeldSignature {
    pub campaign: String,
    pub name: String,
    pub email: String,
    pub postcode: String,
    pub state: String,
    pub updates: bool,
    pub public_first_name: bool,
    pub signed: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeldLetter {
    pub campaign: String,
    pub to: String,
    pub state: String,
    pub written: String,
    pub sent: Option<String>,
    /// Whether the letter's text and the writer's address are still held.
    pub text_held: bool,
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct Held {
    pub email: String,
    pub signatures: Vec<HeldSignature>,
    pub letters: Vec<HeldLetter>,
}

fn not_found() -> AppError {
    AppError::NotFound("token_not_found", "This link is not valid any more. If you still want your details removed, reply to any email from us.".into())
}

/// The mailbox a forget link speaks for.
fn mailbox_of(conn: &mut DbConn, raw: &str) -> Result<String, AppError> {
    let token = token_model::find(conn, raw)?.ok_or_else(not_found)?;
    if token.expires_at < now_ms() {
        return Err(not_found());
    }
    let key: Option<String> = match token.purpose.as_str() {
        FORGET_SIGNATURE => signatures::table.find(token.subject_id).select(signatures::email_key).first(conn).optional()?,
        FORGET_LETTER => letters::table.find(token.subject_id).select(letters::writer_email_key).first(conn).optional()?,
        _ => None,
    };
    key.ok_or_else(not_found)
}

fn held(conn: &mut DbConn, key: &str) -> Result<Held, AppError> {
    let sigs: Vec<(String, String, String, String, String, bool, bool, i64)> = signatures::table
        .inner_join(campaigns::table)
        .filter(signatures::email_key.eq(key))
        .select((campaigns::title, signatures::name, signatures::email, signatures::postcode, signatures::state, signatures::updates_opt_in, signatures::show_name, signatures::created_at))
        .load(conn)?;
    let lets: Vec<(String, String, String, i64, Option<i64>, String, String)> = letters::table
        .inner_join(campaigns::table)
        .filter(letters::writer_email_key.eq(key))
        .select((campaigns::title, letters::target_name, letters::state, letters::created_at, letters::sent_at, letters::writer_email, letters::town))
        .load(conn)?;
    let email = sigs.first().map(|s| s.2.clone()).or_else(|| lets.first().map(|l| l.5.clone())).unwrap_or_default();
    Ok(Held {
        email,
        signatures: sigs
            .into_iter()
            .map(|(campaign, name, email, postcode, state, updates, public_first_name, at)| HeldSignature { campaign, name, email, postcode, state, updates, public_first_name, signed: format_date(at) })
            .collect(),
        letters: lets
            .into_iter()
            // The retention job blanks the town with the rest of the address and the text.
            .map(|(campaign, to, state, at, sent, _, town)| HeldLetter { campaign, to, state, written: format_date(at), sent: sent.map(format_date), text_held: !town.is_empty() })
            .collect(),
    })
}

/// What Rally holds about the link's mailbox.
pub async fn describe(state: &AppState, raw: String) -> Result<Held, AppError> {
    state.db.read(move |conn| {
        let key = mailbox_of(conn, &raw)?;
        held(conn, &key)
    })
    .await
}

/// Deletes everything held about the link's mailbox; returns what was held, so the
/// confirmation can be sent to the address before it is forgotten.
pub async fn forget(state: &AppState, raw: String) -> Result<Held, AppError> {
    let (was, uncounted) = state
        .db
        .write(move |conn| {
            let key = mailbox_of(conn, &raw)?;
            let was = held(conn, &key)?;
            // Confirmed signatures come off their campaigns' counts.
            let uncounted: Vec<i64> =
                signatures::table.filter(signatures::email_key.eq(&key)).filter(signatures::state.eq(crate::models::signatures::CONFIRMED)).select(signatures::campaign_id).load(conn)?;
            let sig_ids: Vec<i64> = signatures::table.filter(signatures::email_key.eq(&key)).select(signatures::id).load(conn)?;
            let letter_ids: Vec<i64> = letters::table.filter(letters::writer_email_key.eq(&key)).select(letters::id).load(conn)?;
            let sig_kinds = [crate::petition::sign::CONFIRM_EMAIL, crate::petition::sign::ALREADY_SIGNED_EMAIL];
            let letter_kinds = [
                crate::letters::write::CONFIRM_EMAIL,
                crate::letters::write::DELIVERY,
                crate::letters::write::COPY_EMAIL,
                crate::letters::write::FAILED_EMAIL,
                crate::workers::reply_survey::ASK_EMAIL,
                crate::workers::reply_survey::REMINDER_EMAIL,
            ];
            diesel::delete(outbox::table.filter(outbox::kind.eq_any(sig_kinds)).filter(outbox::subject_id.eq_any(&sig_ids))).execute(conn)?;
            // Updates queued for them, and the record that they were.
            let deliveries = update_deliveries::table.filter(update_deliveries::signature_id.eq_any(&sig_ids)).select(update_deliveries::id);
            diesel::delete(outbox::table.filter(outbox::kind.eq(crate::workers::updates::UPDATE_EMAIL)).filter(outbox::subject_id.eq_any(deliveries))).execute(conn)?;
            diesel::delete(update_deliveries::table.filter(update_deliveries::signature_id.eq_any(&sig_ids))).execute(conn)?;
            diesel::delete(outbox::table.filter(outbox::kind.eq_any(letter_kinds)).filter(outbox::subject_id.eq_any(&letter_ids))).execute(conn)?;
            diesel::delete(tokens::table.filter(tokens::purpose.eq_any([token_model::CONFIRM_SIGNATURE, FORGET_SIGNATURE, UNSUBSCRIBE])).filter(tokens::subject_id.eq_any(&sig_ids)))
                .execute(conn)?;
            diesel::delete(
                tokens::table
                    .filter(tokens::purpose.eq_any([token_model::CONFIRM_LETTER, FORGET_LETTER, crate::workers::reply_survey::TOKEN_PURPOSE]))
                    .filter(tokens::subject_id.eq_any(&letter_ids)),
            )
            .execute(conn)?;
            diesel::delete(signatures::table.filter(signatures::email_key.eq(&key))).execute(conn)?;
            diesel::delete(letters::table.filter(letters::writer_email_key.eq(&key))).execute(conn)?;
            crate::models::audit::record(
                conn,
                None,
                "a supporter",
                "supporter.forget",
                &format!("deleted {} signatures and {} letters at the supporter's request", sig_ids.len(), letter_ids.len()),
                now_ms(),
            )?;
            Ok((was, uncounted))
        })
        .await?;
    for campaign_id in uncounted {
        state.counts.add(campaign_id, -1);
    }
    Ok(was)
}

/// The campaign an unsubscribe link is about, for the page that asks to confirm; 404 for an
/// unknown or expired link, so a mistyped one does not pretend to work.
pub async fn unsubscribe_campaign(state: &AppState, raw: String) -> Result<String, AppError> {
    state
        .db
        .read(move |conn| Ok(unsubscribe_target(conn, &raw)?.1))
        .await
}

/// The signature a live unsubscribe link is for, and its campaign's title; 404 otherwise.
fn unsubscribe_target(conn: &mut DbConn, raw: &str) -> Result<(i64, String), AppError> {
    let token = token_model::find(conn, raw)?.filter(|t| t.purpose == UNSUBSCRIBE && t.expires_at >= now_ms()).ok_or_else(not_found)?;
    let title: Option<String> =
        signatures::table.inner_join(campaigns::table).filter(signatures::id.eq(token.subject_id)).select(campaigns::title).first(conn).optional()?;
    Ok((token.subject_id, title.ok_or_else(not_found)?))
}

/// One-click unsubscribe from campaign updates for one signature.
pub async fn unsubscribe(state: &AppState, raw: String) -> Result<String, AppError> {
    state
        .db
        .write(move |conn| {
            let (signature_id, title) = unsubscribe_target(conn, &raw)?;
            diesel::update(signatures::table.find(signature_id)).set(signatures::updates_opt_in.eq(false)).execute(conn)?;
            Ok(title)
        })
        .await
}

/// The links every email to a supporter carries: (forget URL, unsubscribe URL if they opted in).
pub fn links_for_signature(conn: &mut DbConn, signature_id: i64, opted_in: bool, public_url: &str, now: i64) -> QueryResult<(String, Option<String>)> {
    let forget = token_model::issue(conn, FORGET_SIGNATURE, signature_id, now, LINK_LIFETIME_MS)?;
    let unsubscribe = if opted_in { Some(format!("{public_url}/unsubscribe/{}", token_model::issue(conn, UNSUBSCRIBE, signature_id, now, LINK_LIFETIME_MS)?)) } else { None };
    Ok((format!("{public_url}/forget/{forget}"), unsubscribe))
}

pub fn link_for_letter(conn: &mut DbConn, letter_id: i64, public_url: &str, now: i64) -> QueryResult<String> {
    Ok(format!("{public_url}/forget/{}", token_model::issue(conn, FORGET_LETTER, letter_id, now, LINK_LIFETIME_MS)?))
}
