//! "Did your MP reply?": two weeks after a letter reaches an MP, its writer is asked (by email,
//! with one link per answer) whether the MP replied; if they have not answered a week later they
//! are reminded once, and never again. The answers, counted per MP and per party, show on the
//! staff campaign dashboard. The queries live here too, beside the worker that needs them.
//!
//! Times: what is *due* follows `state.clock` (tests move it); outbox rows are queued at the
//! wall-clock time, because the sender compares `run_at` with the wall clock.
use std::collections::HashMap;
use std::time::Duration;

use diesel::prelude::*;
use serde::Serialize;

use crate::clock::{format_date, now_ms, DAY};
use crate::db::schema::{constituencies, letters as letters_t, members, outbox as outbox_t};
use crate::db::DbConn;
use crate::error::AppError;
use crate::letters::write::MP;
use crate::models::{campaigns, letters, outbox, settings, tokens};
use crate::services::mailer::Draft;
use crate::state::AppState;

pub const ASK_EMAIL: &str = "reply_survey";
pub const REMINDER_EMAIL: &str = "reply_survey_reminder";
/// The purpose of the answer links' tokens.
pub const TOKEN_PURPOSE: &str = "reply_survey";
/// MPs can take a couple of months to answer; the links keep working that long.
pub const LINK_LIFETIME_MS: i64 = 90 * DAY;
pub const ASK_AFTER_MS: i64 = 14 * DAY;
pub const REMIND_AFTER_MS: i64 = 7 * DAY;
/// Letters delivered longer ago than this are never asked about, so switching the feature on
/// (or a worker that was down a long time) does not email people about letters long past.
pub const TOO_OLD_MS: i64 = 90 * DAY;
const BATCH: i64 = 500;
const EVERY: Duration = Duration::from_secs(60);

/// The four answers a writer can give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Replied,
    NotAddressed,
    Acknowledgement,
    NoReply,
}

impl Answer {
    pub const ALL: [Answer; 4] = [Answer::Replied, Answer::NotAddressed, Answer::Acknowledgement, Answer::NoReply];

    pub fn parse(s: &str) -> Option<Answer> {
        Answer::ALL.into_iter().find(|a| a.as_str() == s.trim())
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Answer::Replied => "replied",
            Answer::NotAddressed => "not_addressed",
            Answer::Acknowledgement => "acknowledgement",
            Answer::NoReply => "no_reply",
        }
    }

    /// How the answer reads on the page, in the writer's words.
    pub fn label(self) -> &'static str {
        match self {
            Answer::Replied => "Yes, they replied",
            Answer::NotAddressed => "They replied, but did not address the issue",
            Answer::Acknowledgement => "I only got an acknowledgement",
            Answer::NoReply => "No reply",
        }
    }
}

pub async fn run(state: AppState) {
    let mut moved = state.clock.moved();
    loop {
        if let Err(e) = queue_due(&state).await {
            tracing::warn!(error = %e, "could not queue the reply questionnaires");
        }
        tokio::select! {
            changed = moved.changed() => {
                // The clock lives as long as the state, so this only guards against a busy loop.
                if changed.is_err() {
                    tokio::time::sleep(EVERY).await;
                }
            }
            _ = tokio::time::sleep(EVERY) => {}
        }
    }
}

/// Queues every ask and reminder that is due by the app's clock; returns how many were queued.
pub async fn queue_due(state: &AppState) -> Result<usize, AppError> {
    let mut queued = 0;
    for kind in [ASK_EMAIL, REMINDER_EMAIL] {
        loop {
            let now = state.clock.now();
            let (seen, n) = state.db.write_background(move |conn| Ok(queue_batch(conn, kind, now, now_ms())?)).await?;
            if n > 0 {
                state.outbox_wake.notify_one();
            }
            queued += n;
            if seen < BATCH as usize {
                break;
            }
        }
    }
    Ok(queued)
}

/// When this Rally first asked (wall clock), stored the first time. Letters written before then
/// were written under a privacy notice that did not mention the question, so they are not asked.
fn asking_since(conn: &mut DbConn, wall_now: i64) -> QueryResult<i64> {
    const KEY: &str = "reply_survey.since";
    if let Some(v) = settings::get(conn, KEY)?.and_then(|v| v.parse().ok()) {
        return Ok(v);
    }
    settings::put(conn, KEY, &wall_now.to_string())?;
    Ok(wall_now)
}

/// One batch of asks (or reminders): each letter is marked and its email queued together, and
/// only when the mark changed the row, so two instances never both send. Returns (letters
/// looked at, emails queued).
fn queue_batch(conn: &mut DbConn, kind: &str, now: i64, wall_now: i64) -> QueryResult<(usize, usize)> {
    let since = asking_since(conn, wall_now)?;
    let delivered_to_mps = letters_t::table
        .filter(letters_t::state.eq(letters::SENT))
        .filter(letters_t::target_key.eq(MP))
        .filter(letters_t::reply.is_null());
    let ids: Vec<i64> = if kind == ASK_EMAIL {
        delivered_to_mps
            .filter(letters_t::survey_asked_at.is_null())
            .filter(letters_t::sent_at.le(now - ASK_AFTER_MS))
            .filter(letters_t::sent_at.gt(now - TOO_OLD_MS))
            .filter(letters_t::created_at.ge(since))
            .order(letters_t::id)
            .select(letters_t::id)
            .limit(BATCH)
            .load(conn)?
    } else {
        delivered_to_mps
            .filter(letters_t::survey_reminded_at.is_null())
            .filter(letters_t::survey_asked_at.le(now - REMIND_AFTER_MS))
            // Only after the question itself went: not when it was refused or skipped.
            .filter(diesel::dsl::exists(
                outbox_t::table.filter(outbox_t::kind.eq(ASK_EMAIL)).filter(outbox_t::subject_id.eq(letters_t::id)).filter(outbox_t::state.eq(outbox::SENT)),
            ))
            .order(letters_t::id)
            .select(letters_t::id)
            .limit(BATCH)
            .load(conn)?
    };
    let mut queued = 0;
    for &id in &ids {
        let still_due = letters_t::table.find(id).filter(letters_t::reply.is_null());
        let changed = if kind == ASK_EMAIL {
            diesel::update(still_due.filter(letters_t::survey_asked_at.is_null())).set(letters_t::survey_asked_at.eq(now)).execute(conn)?
        } else {
            diesel::update(still_due.filter(letters_t::survey_reminded_at.is_null())).set(letters_t::survey_reminded_at.eq(now)).execute(conn)?
        };
        if changed == 1 {
            outbox::enqueue(conn, kind, id, wall_now)?;
            queued += 1;
        }
    }
    Ok((ids.len(), queued))
}

/// Writes the ask or the reminder for a letter (making its answer link now); `None` when there
/// is nothing to ask any more: the letter has gone or has been answered.
pub fn compose(conn: &mut DbConn, kind: &str, letter_id: i64, public_url: &str, now: i64) -> Result<Option<Draft>, AppError> {
    let Some(letter) = letters::find(conn, letter_id)? else { return Ok(None) };
    if letter.reply.is_some() || letter.state != letters::SENT || letter.target_key != MP || letter.writer_email.is_empty() {
        return Ok(None);
    }
    // The mark is set with the queued row; without it the row is about a deleted letter whose
    // id SQLite has since given to a new one.
    let marked = if kind == REMINDER_EMAIL { letter.survey_reminded_at } else { letter.survey_asked_at };
    if marked.is_none() {
        return Ok(None);
    }
    let Some(campaign) = campaigns::find(conn, letter.campaign_id)? else { return Ok(None) };
    let token = tokens::issue(conn, TOKEN_PURPOSE, letter.id, now, LINK_LIFETIME_MS)?;
    let mut ctx = tera::Context::new();
    ctx.insert("name", &letter.writer_name);
    ctx.insert("target_name", &letter.target_name);
    ctx.insert("campaign_title", &campaign.title);
    ctx.insert("sent_on", &letter.sent_at.map(format_date).unwrap_or_default());
    for answer in Answer::ALL {
        ctx.insert(format!("{}_url", answer.as_str()), &format!("{public_url}/replies/{token}?answer={}", answer.as_str()));
    }
    ctx.insert("privacy_url", &format!("{public_url}/privacy"));
    ctx.insert("forget_url", &crate::privacy::forget::link_for_letter(conn, letter.id, public_url, now)?);
    let template = if kind == REMINDER_EMAIL { "emails/reply_survey_reminder.txt" } else { "emails/reply_survey.txt" };
    let to = crate::services::mailer::mailbox(Some(&letter.writer_name), &letter.writer_email)?;
    Ok(Some(Draft::new(to, template, ctx)))
}

// ---------------------------------------------------------------------------------------------
// The answer page
// ---------------------------------------------------------------------------------------------

/// What the answer page shows about the letter a link belongs to.
#[derive(Debug, Clone)]
pub struct Survey {
    pub letter_id: i64,
    pub mp_name: String,
    pub constituency: Option<String>,
    pub campaign_slug: String,
    pub campaign_title: String,
    pub answer: Option<Answer>,
}

/// The letter behind an answer link, if the link is real, unexpired and its letter still held.
pub fn survey_for_token(conn: &mut DbConn, raw: &str, now: i64) -> Result<Option<Survey>, AppError> {
    let Some(token) = tokens::find(conn, raw)? else { return Ok(None) };
    if token.purpose != TOKEN_PURPOSE || token.expires_at < now {
        return Ok(None);
    }
    let Some(letter) = letters::find(conn, token.subject_id)? else { return Ok(None) };
    // A link made before its letter existed belonged to a deleted letter whose id was reused.
    if letter.target_key != MP || token.created_at < letter.created_at {
        return Ok(None);
    }
    let Some(campaign) = campaigns::find(conn, letter.campaign_id)? else { return Ok(None) };
    let constituency = match &letter.ons_code {
        Some(code) => crate::models::constituencies::get(conn, code)?.map(|c| c.name),
        None => None,
    };
    Ok(Some(Survey {
        letter_id: letter.id,
        mp_name: letter.target_name,
        constituency,
        campaign_slug: campaign.slug,
        campaign_title: campaign.title,
        answer: letter.reply.as_deref().and_then(Answer::parse),
    }))
}

/// Records (or changes: the last answer wins, as a reply may come later) a writer's answer.
pub fn record_answer(conn: &mut DbConn, letter_id: i64, answer: Answer, now: i64) -> QueryResult<usize> {
    diesel::update(letters_t::table.find(letter_id))
        .set((letters_t::reply.eq(answer.as_str()), letters_t::replied_at.eq(now)))
        .execute(conn)
}

// ---------------------------------------------------------------------------------------------
// Results for the staff dashboard
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReplyCounts {
    pub delivered: i64,
    pub asked: i64,
    pub answered: i64,
    pub replied: i64,
    pub not_addressed: i64,
    pub acknowledgement: i64,
    pub no_reply: i64,
    /// Replies of either kind as a whole percentage of the answers; `None` before any answer.
    pub reply_rate: Option<i64>,
}

impl ReplyCounts {
    fn add_answers(&mut self, answer: Option<Answer>, n: i64) {
        match answer {
            Some(Answer::Replied) => self.replied += n,
            Some(Answer::NotAddressed) => self.not_addressed += n,
            Some(Answer::Acknowledgement) => self.acknowledgement += n,
            Some(Answer::NoReply) => self.no_reply += n,
            None => return,
        }
        self.answered += n;
    }

    fn add(&mut self, other: &ReplyCounts) {
        self.delivered += other.delivered;
        self.asked += other.asked;
        self.answered += other.answered;
        self.replied += other.replied;
        self.not_addressed += other.not_addressed;
        self.acknowledgement += other.acknowledgement;
        self.no_reply += other.no_reply;
    }

    fn finish(&mut self) {
        self.reply_rate = reply_rate(self.replied + self.not_addressed, self.answered);
    }
}

/// `replies` out of `answered` as a rounded percentage.
pub fn reply_rate(replies: i64, answered: i64) -> Option<i64> {
    (answered > 0).then(|| ((replies as f64) * 100.0 / (answered as f64)).round() as i64)
}

#[derive(Debug, Clone, Serialize)]
pub struct MpReplies {
    pub name: String,
    pub constituency: Option<String>,
    pub party: Option<String>,
    #[serde(flatten)]
    pub counts: ReplyCounts,
}

#[derive(Debug, Clone, Serialize)]
pub struct PartyReplies {
    pub party: Option<String>,
    #[serde(flatten)]
    pub counts: ReplyCounts,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplyResults {
    pub by_mp: Vec<MpReplies>,
    pub by_party: Vec<PartyReplies>,
}

/// A campaign's delivered letters to MPs and their writers' answers, per MP (as named on the
/// letter, in its constituency) and per party, most letters first.
pub fn results(conn: &mut DbConn, campaign_id: i64) -> QueryResult<ReplyResults> {
    let mine = letters_t::table
        .filter(letters_t::campaign_id.eq(campaign_id))
        .filter(letters_t::state.eq(letters::SENT))
        .filter(letters_t::target_key.eq(MP));
    let by_answer: Vec<(String, Option<String>, Option<String>, i64)> = mine
        .group_by((letters_t::target_name, letters_t::ons_code, letters_t::reply))
        .select((letters_t::target_name, letters_t::ons_code, letters_t::reply, diesel::dsl::count_star()))
        .load(conn)?;
    let asked: Vec<(String, Option<String>, i64)> = mine
        .filter(letters_t::survey_asked_at.is_not_null())
        .group_by((letters_t::target_name, letters_t::ons_code))
        .select((letters_t::target_name, letters_t::ons_code, diesel::dsl::count_star()))
        .load(conn)?;

    let mut per_mp: HashMap<(String, Option<String>), ReplyCounts> = HashMap::new();
    for (name, code, reply, n) in by_answer {
        let c = per_mp.entry((name, code)).or_default();
        c.delivered += n;
        c.add_answers(reply.as_deref().and_then(Answer::parse), n);
    }
    for (name, code, n) in asked {
        per_mp.entry((name, code)).or_default().asked += n;
    }

    let codes: Vec<String> = per_mp.keys().filter_map(|(_, c)| c.clone()).collect();
    let names: Vec<String> = per_mp.keys().map(|(n, _)| n.clone()).collect();
    let seats: HashMap<String, String> =
        constituencies::table.filter(constituencies::ons_code.eq_any(&codes)).select((constituencies::ons_code, constituencies::name)).load(conn)?.into_iter().collect();
    // Newest first, so the first match per key below is the freshest.
    let known: Vec<(Option<String>, String, Option<String>)> = members::table
        .filter(members::ons_code.eq_any(&codes).or(members::name.eq_any(&names)))
        .order(members::updated_at.desc())
        .select((members::ons_code, members::name, members::party))
        .load(conn)?;

    let mut by_mp: Vec<MpReplies> = per_mp
        .into_iter()
        .map(|((name, code), mut counts)| {
            counts.finish();
            MpReplies { party: party_of(&known, &name, code.as_deref()), constituency: code.as_ref().and_then(|c| seats.get(c).cloned()), name, counts }
        })
        .collect();
    by_mp.sort_by(|a, b| b.counts.delivered.cmp(&a.counts.delivered).then_with(|| a.name.to_lowercase().cmp(&b.name.to_lowercase())));

    let mut per_party: HashMap<Option<String>, ReplyCounts> = HashMap::new();
    for mp in &by_mp {
        per_party.entry(mp.party.clone()).or_default().add(&mp.counts);
    }
    let mut by_party: Vec<PartyReplies> = per_party
        .into_iter()
        .map(|(party, mut counts)| {
            counts.finish();
            PartyReplies { party, counts }
        })
        .collect();
    // "Not known" goes last among equals.
    by_party.sort_by(|a, b| b.counts.delivered.cmp(&a.counts.delivered).then_with(|| a.party.is_none().cmp(&b.party.is_none())).then_with(|| a.party.cmp(&b.party)));
    Ok(ReplyResults { by_mp, by_party })
}

/// The party of the MP a letter went to: the member sitting for the letter's constituency under
/// the same name; failing that, a member of that name (one who has since lost the seat keeps
/// their row). Matching the name as well as the seat keeps a new MP's party off their
/// predecessor's letters.
fn party_of(known: &[(Option<String>, String, Option<String>)], name: &str, code: Option<&str>) -> Option<String> {
    let same_name = |m: &&(Option<String>, String, Option<String>)| m.1.trim().eq_ignore_ascii_case(name.trim());
    known
        .iter()
        .filter(same_name)
        .find(|m| code.is_some() && m.0.as_deref() == code)
        .or_else(|| known.iter().find(same_name))
        .and_then(|m| m.2.clone())
        .filter(|p| !p.trim().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_parse_only_the_four_values() {
        for a in Answer::ALL {
            assert_eq!(Answer::parse(a.as_str()), Some(a));
        }
        assert_eq!(Answer::parse("yes"), None);
        assert_eq!(Answer::parse(""), None);
        assert_eq!(Answer::parse("REPLIED"), None);
    }

    #[test]
    fn reply_rate_counts_both_kinds_of_reply_over_answers() {
        assert_eq!(reply_rate(0, 0), None);
        assert_eq!(reply_rate(2, 3), Some(67));
        assert_eq!(reply_rate(1, 2), Some(50));
        let mut c = ReplyCounts::default();
        c.add_answers(Some(Answer::Replied), 1);
        c.add_answers(Some(Answer::NotAddressed), 1);
        c.add_answers(Some(Answer::NoReply), 2);
        c.add_answers(None, 5);
        c.finish();
        assert_eq!((c.answered, c.reply_rate), (4, Some(50)));
    }

    #[test]
    fn party_prefers_the_same_person_in_the_seat() {
        let known = vec![
            (Some("E1".to_string()), "New MP".to_string(), Some("Green".to_string())),
            (None, "Old MP".to_string(), Some("Labour".to_string())),
        ];
        assert_eq!(party_of(&known, "New MP", Some("E1")).as_deref(), Some("Green"));
        assert_eq!(party_of(&known, "Old MP", Some("E1")).as_deref(), Some("Labour"), "a former MP keeps their own party");
        assert_eq!(party_of(&known, "Someone Else", Some("E1")), None);
    }
}
