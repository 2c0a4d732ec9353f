//! Sends staff updates to a campaign's signers who asked for them. Each second the sender queues
//! the next batch of signers (at most `RALLY_UPDATE_RATE` a minute) into the outbox, which
//! delivers them like any other email. It holds back while the previous batch is still waiting,
//! so an update never fills the outbox ahead of people's confirmation emails. How far it has got
//! is stored with the update, so after a restart it carries on where it stopped, and each signer
//! has one delivery row per update, so nobody gets it twice.
use std::time::Duration;

use crate::clock::now_ms;
use crate::db::DbConn;
use crate::error::AppError;
use crate::models::{campaigns, signatures, updates};
use crate::services::mailer::Draft;
use crate::state::AppState;

pub const UPDATE_EMAIL: &str = "update";
const ROUND: Duration = Duration::from_secs(1);
/// Signers per statement at most, well inside both databases' limits on bound values.
const MOST_PER_ROUND: i64 = 1_000;

pub async fn run(state: AppState) {
    // Each second earns a sixtieth of the minute's rate; what is not spent carries over (up to a
    // second's worth more), so low rates are kept exactly and high ones are not exceeded.
    let per_second = state.config.update_rate_per_minute as f64 / 60.0;
    let mut credit = 0.0f64;
    loop {
        credit = (credit + per_second).min(per_second.max(1.0) * 2.0);
        let allowance = (credit.floor() as i64).min(MOST_PER_ROUND);
        if allowance >= 1 {
            match queue_round(&state, allowance).await {
                Ok(0) => credit = credit.min(per_second.max(1.0)),
                Ok(n) => {
                    credit -= n as f64;
                    state.outbox_wake.notify_one();
                }
                Err(e) => tracing::warn!(error = %e, "could not queue update emails"),
            }
        }
        tokio::time::sleep(ROUND).await;
    }
}

/// Queues up to `allowance` emails across the updates being sent; returns how many it queued.
pub async fn queue_round(state: &AppState, allowance: i64) -> Result<i64, AppError> {
    let per_round = allowance;
    // Most seconds nothing is being sent: find that out with a read, not a turn at the writer.
    if state.db.read(|conn| Ok(updates::sending(conn)?.is_empty())).await? {
        return Ok(0);
    }
    state
        .db
        .write_background(move |conn| {
            let sending = updates::sending(conn)?;
            if sending.is_empty() {
                return Ok(0);
            }
            // The mailer is behind: wait for it rather than pile up more.
            let mut room = 2 * per_round - updates::waiting(conn, UPDATE_EMAIL)?;
            let mut queued = 0;
            let now = now_ms();
            for update in sending {
                if room <= 0 {
                    break;
                }
                let n = updates::queue_batch(conn, &update, UPDATE_EMAIL, room.min(per_round), now)?;
                room -= n;
                queued += n;
            }
            Ok(queued)
        })
        .await
}

/// The email for one queued delivery, or `None` when the signer has since unsubscribed, been
/// removed or forgotten (they are skipped, not sent to).
pub fn compose(conn: &mut DbConn, delivery_id: i64, public_url: &str, now: i64) -> Result<Option<Draft>, AppError> {
    let Some((update_id, signature_id)) = updates::delivery(conn, delivery_id)? else { return Ok(None) };
    let Some(update) = updates::find_any(conn, update_id)? else { return Ok(None) };
    let Some(sig) = signatures::find(conn, signature_id)? else { return Ok(None) };
    if sig.state != signatures::CONFIRMED || !sig.updates_opt_in || sig.campaign_id != update.campaign_id {
        return Ok(None);
    }
    let Some(campaign) = campaigns::find(conn, update.campaign_id)? else { return Ok(None) };
    let (forget_url, unsubscribe_url) = crate::privacy::forget::links_for_signature(conn, sig.id, true, public_url, now)?;
    let unsubscribe_url = unsubscribe_url.unwrap_or_default();
    let ctx = context(&update, &campaign, &sig.name, public_url, &unsubscribe_url, &forget_url, false);
    let to = crate::services::mailer::mailbox(Some(&sig.name), &sig.email)?;
    Ok(Some(draft(to, ctx, unsubscribe_url)))
}

/// What the update templates need. `test` marks a copy sent to staff, whose links go nowhere.
pub fn context(update: &updates::Update, campaign: &campaigns::Campaign, name: &str, public_url: &str, unsubscribe_url: &str, forget_url: &str, test: bool) -> tera::Context {
    let mut ctx = tera::Context::new();
    ctx.insert("name", name);
    ctx.insert("subject", &update.subject);
    ctx.insert("body_md", &update.body_md);
    ctx.insert("campaign_title", &campaign.title);
    ctx.insert("campaign_url", &format!("{public_url}/campaigns/{}", campaign.slug));
    ctx.insert("privacy_url", &format!("{public_url}/privacy"));
    ctx.insert("unsubscribe_url", unsubscribe_url);
    ctx.insert("forget_url", forget_url);
    ctx.insert("test", &test);
    ctx
}

pub fn draft(to: lettre::message::Mailbox, ctx: tera::Context, unsubscribe_url: String) -> Draft {
    Draft { list_unsubscribe: Some(unsubscribe_url), html_template: Some("emails/update.html"), ..Draft::new(to, "emails/update.txt", ctx) }
}
