//! The petition's emails: the confirmation link, and "you have already signed".
use crate::db::DbConn;
use crate::error::AppError;
use crate::models::{campaigns, signatures, tokens};
use crate::petition::sign::CONFIRM_EMAIL;
use crate::services::mailer::Draft;
use crate::workers::outbox::CONFIRM_LIFETIME_MS;

/// Prepares the email (making its link token), or `None` if the signature no longer exists.
pub fn compose(conn: &mut DbConn, kind: &str, signature_id: i64, public_url: &str, now: i64) -> Result<Option<Draft>, AppError> {
    let Some(sig) = signatures::find(conn, signature_id)? else { return Ok(None) };
    let Some(campaign) = campaigns::find(conn, sig.campaign_id)? else { return Ok(None) };
    let mut ctx = tera::Context::new();
    ctx.insert("name", &sig.name);
    ctx.insert("campaign_title", &campaign.title);
    ctx.insert("campaign_url", &format!("{public_url}/campaigns/{}", campaign.slug));
    ctx.insert("write_url", &format!("{public_url}/campaigns/{}/write", campaign.slug));
    ctx.insert("privacy_url", &format!("{public_url}/privacy"));
    let (forget_url, unsubscribe_url) = crate::privacy::forget::links_for_signature(conn, sig.id, sig.updates_opt_in, public_url, now)?;
    ctx.insert("forget_url", &forget_url);
    ctx.insert("unsubscribe_url", &unsubscribe_url);
    let template = if kind == CONFIRM_EMAIL {
        let token = tokens::issue(conn, tokens::CONFIRM_SIGNATURE, sig.id, now, CONFIRM_LIFETIME_MS)?;
        ctx.insert("confirm_url", &format!("{public_url}/confirm/{token}"));
        "emails/signature_confirm.txt"
    } else {
        "emails/signature_already_confirmed.txt"
    };
    let to = crate::services::mailer::mailbox(Some(&sig.name), &sig.email)?;
    Ok(Some(Draft::new(to, template, ctx)))
}

/// To every active staff member: the campaign passed a milestone. `None` when there is no one to
/// tell or the rung has gone.
pub fn milestone(conn: &mut DbConn, milestone_id: i64, public_url: &str) -> Result<Option<Draft>, AppError> {
    use crate::models::{milestones, staff};
    let Some(m) = milestones::find(conn, milestone_id)? else { return Ok(None) };
    let Some(campaign) = campaigns::find(conn, m.campaign_id)? else { return Ok(None) };
    let mut recipients = Vec::new();
    for s in staff::list(conn)?.into_iter().filter(|s| s.disabled_at.is_none()) {
        recipients.push(crate::services::mailer::mailbox(Some(&s.name), &s.email)?);
    }
    if recipients.is_empty() {
        return Ok(None);
    }
    let ladder = milestones::ladder(conn, campaign.id)?;
    let mut ctx = tera::Context::new();
    ctx.insert("campaign_title", &campaign.title);
    ctx.insert("threshold", &crate::templates::format_thousands(m.threshold));
    ctx.insert("next_target", &crate::templates::format_thousands(milestones::current_target(&ladder, m.threshold)));
    ctx.insert("dashboard_url", &format!("{public_url}/admin/campaigns/{}/dashboard", campaign.slug));
    ctx.insert("campaign_url", &format!("{public_url}/campaigns/{}", campaign.slug));
    let to = recipients.remove(0);
    Ok(Some(Draft { also_to: recipients, ..Draft::new(to, "emails/milestone_reached.txt", ctx) }))
}
