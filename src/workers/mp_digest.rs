//! The weekly digest to MPs' offices, off unless staff turn it on for a campaign.
//!
//! Weeks start on Monday at 00:00 UTC and are numbered from the Unix epoch (`week_of`). A round
//! runs every minute, and at once when tests move the app's clock. The first round in a new week
//! (by `state.clock`) closes the week before for each campaign with the digest on: every
//! constituency with at least one new confirmed signature or delivered letter to its MP gets one
//! email to the MP, unless its office opted out or the MP has no email address. Each digest is a
//! row in `mp_digests`, written with its outbox row in one transaction; the unique key
//! (campaign, constituency, week) keeps it to one even with several instances running.
//!
//! "New" means since the campaign's previous digests, or since staff turned the digest on if
//! that is later; with no record of either, the last seven days. In normal running that is the
//! week just ended. It is counted this way, rather than by calendar dates, because signatures and
//! letters carry wall-clock times while the weeks follow the app's clock (which tests move), and
//! so that a server that was down over a Monday neither loses nor repeats anything.
//!
//! Campaigns count while open, and once more after they close (their last days), then stop.
//! The email holds counts and links only: never a name or an address of a supporter.
use std::collections::BTreeMap;
use std::time::Duration;

use diesel::dsl::{count_star, max};
use diesel::prelude::*;
use serde::Serialize;

use crate::clock::{format_date, now_ms, DAY};
use crate::db::schema::{letters, mp_digest_optouts, mp_digests, signatures};
use crate::db::{is_unique_violation, DbConn};
use crate::error::AppError;
use crate::letters::render::constituency_page_url;
use crate::letters::write::MP;
use crate::models::campaigns::{self, Campaign, CampaignState};
use crate::models::{constituencies, letters as letter_model, outbox, settings, signatures as sig_model, tokens};
use crate::services::mailer::{mailbox, Draft};
use crate::state::AppState;

pub const DIGEST_EMAIL: &str = "mp_digest";
/// Token purpose of the "stop these emails" link.
pub const STOP_TOKEN: &str = "mp_digest_stop";
const STOP_LINK_LIFETIME: i64 = 365 * DAY;
const WEEK: i64 = 7 * DAY;
/// 1970-01-01 was a Thursday; the first Monday began four days later.
const MONDAY_OFFSET: i64 = 4 * DAY;
const ROUND: Duration = Duration::from_secs(60);

/// The week `t` (Unix ms) falls in; week 0 began on Monday 5 January 1970.
pub fn week_of(t: i64) -> i64 {
    (t - MONDAY_OFFSET).div_euclid(WEEK)
}

/// When week `week` begins (Monday 00:00 UTC, Unix ms).
pub fn week_start(week: i64) -> i64 {
    week * WEEK + MONDAY_OFFSET
}

// Per-campaign bookkeeping, in the settings table: when staff last turned the digest on
// (wall clock), and the last week (app clock) whose digests were made.
fn since_key(campaign_id: i64) -> String {
    format!("mp_digest_since:{campaign_id}")
}

fn week_key(campaign_id: i64) -> String {
    format!("mp_digest_week:{campaign_id}")
}

fn read_number(conn: &mut DbConn, key: &str) -> QueryResult<Option<i64>> {
    Ok(settings::get(conn, key)?.and_then(|v| v.parse().ok()))
}

/// Called when staff turn the digest on: counting starts now, and the current week is not
/// closed early (the first digests come the following Monday).
pub fn turned_on(conn: &mut DbConn, campaign_id: i64, clock_now: i64, now: i64) -> QueryResult<()> {
    settings::put(conn, &since_key(campaign_id), &now.to_string())?;
    settings::put(conn, &week_key(campaign_id), &week_of(clock_now).to_string())?;
    Ok(())
}

pub async fn run(state: AppState) {
    let mut moved = state.clock.moved();
    loop {
        match round(&state).await {
            Ok(0) => {}
            Ok(_) => state.outbox_wake.notify_one(),
            Err(e) => tracing::warn!(error = %e, "could not prepare the MPs' digests"),
        }
        tokio::select! {
            _ = tokio::time::sleep(ROUND) => {}
            changed = moved.changed() => {
                if changed.is_err() {
                    tokio::time::sleep(ROUND).await;
                }
            }
        }
    }
}

/// Closes the week just ended for every campaign that has not closed it yet; returns how many
/// digests it queued.
pub async fn round(state: &AppState) -> Result<usize, AppError> {
    let clock_now = state.clock.now();
    let week = week_of(clock_now);
    let due = state
        .db
        .read(move |conn| {
            let mut due = Vec::new();
            for c in campaigns::with_mp_digest(conn)? {
                if read_number(conn, &week_key(c.id))?.is_none_or(|w| w < week) {
                    due.push(c.id);
                }
            }
            Ok(due)
        })
        .await?;
    let mut queued = 0;
    for campaign_id in due {
        match state.db.write_background(move |conn| close_week(conn, campaign_id, week, clock_now, now_ms())).await {
            Ok(n) => queued += n,
            // Another instance made the same digests a moment ago: the unique key did its job.
            Err(e) if is_unique_violation(&e) => {}
            Err(e) => tracing::warn!(campaign_id, error = %e, "could not prepare a campaign's MP digests"),
        }
    }
    Ok(queued)
}

/// Makes the digests of the week before `week` for one campaign, in one transaction.
fn close_week(conn: &mut DbConn, campaign_id: i64, week: i64, clock_now: i64, now: i64) -> Result<usize, AppError> {
    // Takes SQLite's write lock first, so another process writing meanwhile cannot fail us.
    constituencies::lock_for_writing(conn)?;
    let Some(c) = campaigns::find(conn, campaign_id)?.filter(|c| c.mp_digest && c.state != CampaignState::Draft.as_str()) else { return Ok(0) };
    match read_number(conn, &week_key(c.id))? {
        Some(w) if w >= week => return Ok(0),
        Some(_) => {
            settings::put(conn, &week_key(c.id), &week.to_string())?;
        }
        // Turned on without the form (say, in the database): counting starts from here.
        None => {
            settings::put(conn, &week_key(c.id), &week.to_string())?;
            return Ok(0);
        }
    }
    let ended = week - 1;
    let from = window_start(conn, &c, ended, now)?;
    let counts = c.effective_state(clock_now) == CampaignState::Open || c.closed_at.or(c.closes_at).is_some_and(|t| t >= from);
    if !counts {
        return Ok(0);
    }
    let mut queued = 0;
    for ons_code in activity(conn, c.id, from, now)?.into_keys() {
        if opted_out(conn, c.id, &ons_code)? || mp_email(conn, &ons_code)?.is_none() {
            continue;
        }
        let exists: i64 = mp_digests::table
            .filter(mp_digests::campaign_id.eq(c.id))
            .filter(mp_digests::ons_code.eq(&ons_code))
            .filter(mp_digests::week.eq(ended))
            .count()
            .get_result(conn)?;
        if exists > 0 {
            continue;
        }
        let id: i64 = diesel::insert_into(mp_digests::table)
            .values((mp_digests::campaign_id.eq(c.id), mp_digests::ons_code.eq(&ons_code), mp_digests::week.eq(ended), mp_digests::created_at.eq(now)))
            .returning(mp_digests::id)
            .get_result(conn)?;
        // Real time: the sender compares run_at with the wall clock.
        outbox::enqueue(conn, DIGEST_EMAIL, id, now)?;
        queued += 1;
    }
    Ok(queued)
}

/// Where the digests of `week` start counting (they end when they were made): after the
/// campaign's previous digests, and not before staff turned the digest on.
fn window_start(conn: &mut DbConn, c: &Campaign, week: i64, end: i64) -> Result<i64, AppError> {
    let previous: Option<i64> = mp_digests::table
        .filter(mp_digests::campaign_id.eq(c.id))
        .filter(mp_digests::week.lt(week))
        .select(max(mp_digests::created_at))
        .first(conn)?;
    let floor = read_number(conn, &since_key(c.id))?.unwrap_or(end - WEEK);
    Ok(previous.unwrap_or(i64::MIN).max(floor).min(end))
}

/// New confirmed signatures and delivered letters to MPs per constituency in [from, to).
fn activity(conn: &mut DbConn, campaign_id: i64, from: i64, to: i64) -> QueryResult<BTreeMap<String, (i64, i64)>> {
    let signed: Vec<(Option<String>, i64)> = signatures::table
        .filter(signatures::campaign_id.eq(campaign_id))
        .filter(signatures::state.eq(sig_model::CONFIRMED))
        .filter(signatures::ons_code.is_not_null())
        .filter(signatures::confirmed_at.ge(from))
        .filter(signatures::confirmed_at.lt(to))
        .group_by(signatures::ons_code)
        .select((signatures::ons_code, count_star()))
        .load(conn)?;
    let wrote: Vec<(Option<String>, i64)> = letters::table
        .filter(letters::campaign_id.eq(campaign_id))
        .filter(letters::target_key.eq(MP))
        .filter(letters::state.eq(letter_model::SENT))
        .filter(letters::ons_code.is_not_null())
        .filter(letters::sent_at.ge(from))
        .filter(letters::sent_at.lt(to))
        .group_by(letters::ons_code)
        .select((letters::ons_code, count_star()))
        .load(conn)?;
    let mut by_place: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (code, n) in signed.into_iter().filter_map(|(c, n)| Some((c?, n))) {
        by_place.entry(code).or_default().0 += n;
    }
    for (code, n) in wrote.into_iter().filter_map(|(c, n)| Some((c?, n))) {
        by_place.entry(code).or_default().1 += n;
    }
    Ok(by_place)
}

fn opted_out(conn: &mut DbConn, campaign_id: i64, ons_code: &str) -> QueryResult<bool> {
    let n: i64 = mp_digest_optouts::table
        .filter(mp_digest_optouts::campaign_id.eq(campaign_id))
        .filter(mp_digest_optouts::ons_code.eq(ons_code))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// The current MP's name and email, when they have an email.
fn mp_email(conn: &mut DbConn, ons_code: &str) -> QueryResult<Option<(String, String)>> {
    Ok(constituencies::current_mp(conn, ons_code)?.and_then(|(name, _, email)| email.filter(|e| !e.trim().is_empty()).map(|e| (name, e))))
}

/// A campaign's figures for one constituency, as the public page and the digest show them.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    /// Confirmed signatures.
    pub signatures: i64,
    /// Letters delivered to the constituency's MP.
    pub letters: i64,
}

pub fn totals(conn: &mut DbConn, campaign_id: i64, ons_code: &str) -> QueryResult<Totals> {
    let signed: i64 = signatures::table
        .filter(signatures::campaign_id.eq(campaign_id))
        .filter(signatures::state.eq(sig_model::CONFIRMED))
        .filter(signatures::ons_code.eq(ons_code))
        .select(count_star())
        .first(conn)?;
    let wrote: i64 = letters::table
        .filter(letters::campaign_id.eq(campaign_id))
        .filter(letters::target_key.eq(MP))
        .filter(letters::state.eq(letter_model::SENT))
        .filter(letters::ons_code.eq(ons_code))
        .select(count_star())
        .first(conn)?;
    Ok(Totals { signatures: signed, letters: wrote })
}

/// The email for one digest, or `None` when it should no longer go (the office opted out since,
/// the MP has no email address now, or the campaign is gone or the digest turned off).
pub fn compose(conn: &mut DbConn, digest_id: i64, public_url: &str, now: i64) -> Result<Option<Draft>, AppError> {
    let Some((campaign_id, ons_code, week, made_at)) = mp_digests::table
        .find(digest_id)
        .select((mp_digests::campaign_id, mp_digests::ons_code, mp_digests::week, mp_digests::created_at))
        .first::<(i64, String, i64, i64)>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let Some(c) = campaigns::find(conn, campaign_id)?.filter(|c| c.mp_digest && c.state != CampaignState::Draft.as_str()) else { return Ok(None) };
    if opted_out(conn, campaign_id, &ons_code)? {
        return Ok(None);
    }
    let Some((mp_name, email)) = mp_email(conn, &ons_code)? else { return Ok(None) };
    let Some(place) = constituencies::get(conn, &ons_code)? else { return Ok(None) };
    let from = window_start(conn, &c, week, made_at)?;
    let new = activity(conn, campaign_id, from, made_at)?.remove(&ons_code).unwrap_or_default();
    let all = totals(conn, campaign_id, &ons_code)?;
    let token = tokens::issue(conn, STOP_TOKEN, digest_id, now, STOP_LINK_LIFETIME)?;
    let stop_url = format!("{public_url}/digests/{token}/stop");
    let mut ctx = tera::Context::new();
    ctx.insert("mp_name", &mp_name);
    ctx.insert("constituency", &place.name);
    ctx.insert("campaign_title", &c.title);
    ctx.insert("campaign_url", &format!("{public_url}/campaigns/{}", c.slug));
    ctx.insert("page_url", &constituency_page_url(public_url, &c.slug, &ons_code));
    ctx.insert("since", &format_date(from));
    ctx.insert("new_signatures", &new.0);
    ctx.insert("new_letters", &new.1);
    ctx.insert("total_signatures", &all.signatures);
    ctx.insert("total_letters", &all.letters);
    ctx.insert("stop_url", &stop_url);
    let to = mailbox(Some(&mp_name), &email)?;
    Ok(Some(Draft { list_unsubscribe: Some(stop_url), ..Draft::new(to, "emails/mp_digest.txt", ctx) }))
}

/// What a stop link is about, for its page.
#[derive(Debug, Clone, Serialize)]
pub struct StopLink {
    pub campaign_title: String,
    pub constituency: String,
    /// Whether the office has already stopped this campaign's digests.
    pub stopped: bool,
}

/// Reads a stop link; `None` for an unknown or expired one.
fn stop_link(conn: &mut DbConn, raw: &str, now: i64) -> Result<Option<(i64, String, StopLink)>, AppError> {
    let Some(t) = tokens::find(conn, raw)?.filter(|t| t.purpose == STOP_TOKEN && t.expires_at > now) else { return Ok(None) };
    let Some((campaign_id, ons_code)) =
        mp_digests::table.find(t.subject_id).select((mp_digests::campaign_id, mp_digests::ons_code)).first::<(i64, String)>(conn).optional()?
    else {
        return Ok(None);
    };
    let Some(c) = campaigns::find(conn, campaign_id)? else { return Ok(None) };
    let constituency = constituencies::get(conn, &ons_code)?.map(|p| p.name).unwrap_or_else(|| ons_code.clone());
    let stopped = opted_out(conn, campaign_id, &ons_code)?;
    Ok(Some((campaign_id, ons_code, StopLink { campaign_title: c.title, constituency, stopped })))
}

pub fn describe_stop(conn: &mut DbConn, raw: &str, now: i64) -> Result<Option<StopLink>, AppError> {
    Ok(stop_link(conn, raw, now)?.map(|(_, _, link)| link))
}

/// Stops a campaign's digests to one constituency's office. Doing it again changes nothing.
pub fn stop(conn: &mut DbConn, raw: &str, now: i64) -> Result<Option<StopLink>, AppError> {
    let Some((campaign_id, ons_code, mut link)) = stop_link(conn, raw, now)? else { return Ok(None) };
    if !link.stopped {
        diesel::insert_into(mp_digest_optouts::table)
            .values((mp_digest_optouts::campaign_id.eq(campaign_id), mp_digest_optouts::ons_code.eq(&ons_code), mp_digest_optouts::created_at.eq(now)))
            .execute(conn)?;
        link.stopped = true;
    }
    Ok(Some(link))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday_at_midnight_utc() {
        let monday = chrono::NaiveDate::from_ymd_opt(2026, 11, 23).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis();
        assert_eq!(week_start(week_of(monday)), monday);
        assert_eq!(week_of(monday - 1), week_of(monday) - 1, "Sunday 23:59:59.999 is the week before");
        assert_eq!(week_of(monday + WEEK - 1), week_of(monday));
        assert_eq!(week_of(MONDAY_OFFSET), 0);
        assert_eq!(week_of(0), -1, "the epoch was a Thursday");
    }
}
