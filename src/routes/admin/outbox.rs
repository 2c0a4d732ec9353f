//! The outbox as staff see it: how many emails are queued, being sent, sent, refused, given up
//! or cancelled, each with its attempts and last error, and a way to retry or cancel one.
//!
//! Rows are shown by kind and ids only. Staff fixing a stuck queue do not need to know who an
//! email was for, and many recipients are victim-survivors: no address, name or message text is
//! shown, and email addresses inside an error (SMTP servers quote the recipient) are hidden.
use std::sync::LazyLock;

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::clock::now_ms;
use crate::error::AppError;
use crate::letters::write::{CONFIRM_EMAIL as LETTER_CONFIRM_EMAIL, COPY_EMAIL, DELIVERY};
use crate::models::outbox::{self, OutboxRow, View};
use crate::models::{audit, letters};
use crate::petition::sign::{ALREADY_SIGNED_EMAIL, CONFIRM_EMAIL};
use crate::routes::admin::audit::{stamp, Stamp};
use crate::routes::admin::{fail, form, page, see_other};
use crate::staff::session::CurrentStaff;
use crate::state::AppState;

const PER_PAGE: i64 = 50;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(retry).service(cancel);
}

/// What an email is, for people, and what its subject id points at.
fn describe(kind: &str) -> (&'static str, &'static str) {
    match kind {
        CONFIRM_EMAIL => ("Signature confirmation", "signature"),
        ALREADY_SIGNED_EMAIL => ("“Already signed” note", "signature"),
        LETTER_CONFIRM_EMAIL => ("Letter confirmation", "letter"),
        DELIVERY => ("Letter to its target", "letter"),
        COPY_EMAIL => ("Copy of a letter to its writer", "letter"),
        crate::workers::milestones::REACHED_EMAIL => ("Milestone notice to staff", "milestone"),
        crate::workers::updates::UPDATE_EMAIL => ("Update to a signer", "update delivery"),
        crate::workers::reply_survey::ASK_EMAIL => ("“Did your MP reply?” question", "letter"),
        crate::workers::reply_survey::REMINDER_EMAIL => ("“Did your MP reply?” reminder", "letter"),
        crate::workers::mp_digest::DIGEST_EMAIL => ("Weekly digest to an MP's office", "digest"),
        _ => ("Other email", "item"),
    }
}

/// Hides email addresses in an error message; the rest (status codes, reasons) stays.
fn redact(error: &str) -> String {
    static ADDRESS: LazyLock<Option<regex::Regex>> = LazyLock::new(|| regex::Regex::new(r#"[^\s<>"'(),;:\[\]]+@[^\s<>"'(),;:\[\]]+"#).ok());
    match ADDRESS.as_ref() {
        Some(re) => re.replace_all(error, "[address]").into_owned(),
        // Unreachable with this fixed pattern; if it were, showing nothing beats leaking.
        None => "(hidden)".into(),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    page: Option<String>,
    notice: Option<String>,
}

/// The view and page to return to, from a query or a form; unknown values fall back to defaults.
fn view_and_page(state: Option<&str>, page: Option<&str>) -> (View, i64) {
    let view = state.and_then(View::parse).unwrap_or(View::All);
    let page = page.and_then(|p| p.trim().parse::<i64>().ok()).filter(|p| (1..=1_000_000).contains(p)).unwrap_or(1);
    (view, page)
}

fn back_to(view: View, page: i64, notice: &str) -> String {
    format!("/admin/outbox?state={}&page={page}&notice={notice}", view.key())
}

#[derive(Serialize)]
struct Count {
    key: &'static str,
    label: &'static str,
    n: i64,
    current: bool,
}

#[derive(Serialize)]
struct Row {
    id: i64,
    kind: String,
    kind_label: &'static str,
    subject: String,
    state: &'static str,
    attempts: i64,
    created: Stamp,
    /// When it is (or was) due; only meaningful while queued.
    run_at: Option<Stamp>,
    sent_at: Option<Stamp>,
    last_error: Option<String>,
    can_retry: bool,
    can_cancel: bool,
}

impl Row {
    fn from(r: OutboxRow, now: i64) -> Row {
        let view = View::of(&r, now);
        let (kind_label, subject_kind) = describe(&r.kind);
        Row {
            id: r.id,
            kind_label,
            subject: format!("{subject_kind} {}", r.subject_id),
            kind: r.kind,
            state: view.label(),
            attempts: r.attempts,
            created: stamp(r.created_at),
            run_at: matches!(view, View::Queued).then(|| stamp(r.run_at)),
            sent_at: r.sent_at.filter(|_| view == View::Sent).map(stamp),
            last_error: r.last_error.as_deref().map(redact),
            can_retry: view.can_retry(),
            can_cancel: view.can_cancel(),
        }
    }
}

#[get("/admin/outbox")]
async fn list(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, query: web::Query<ListQuery>) -> HttpResponse {
    let (view, number) = view_and_page(query.state.as_deref(), query.page.as_deref());
    let now = now_ms();
    let offset = (number - 1) * PER_PAGE;
    let loaded = state.db.read(move |c| Ok((outbox::count_by_view(c, now)?, outbox::list(c, view, now, PER_PAGE + 1, offset)?))).await;
    let (counts, mut rows) = match loaded {
        Ok(x) => x,
        Err(e) => return fail(&state, e),
    };
    let older = rows.len() as i64 > PER_PAGE;
    rows.truncate(PER_PAGE as usize);
    let counts: Vec<Count> = counts.into_iter().map(|(v, n)| Count { key: v.key(), label: v.label(), n, current: v == view }).collect();
    let rows: Vec<Row> = rows.into_iter().map(|r| Row::from(r, now)).collect();
    let notice = match query.notice.as_deref() {
        Some("retried") => Some("The email is queued again and will be sent shortly."),
        Some("cancelled") => Some("The email was cancelled; it will not be sent unless someone retries it."),
        _ => None,
    };
    let mut ctx = tera::Context::new();
    ctx.insert("counts", &counts);
    ctx.insert("rows", &rows);
    ctx.insert("view", view.key());
    ctx.insert("view_label", view.label());
    ctx.insert("page", &number);
    ctx.insert("older", &older);
    ctx.insert("notice", &notice);
    page(&state, &req, Some(&staff.0), StatusCode::OK, "admin/outbox.html", ctx)
}

#[post("/admin/outbox/{id}/retry")]
async fn retry(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, id: web::Path<i64>, body: web::Payload) -> HttpResponse {
    change(state, req, staff, id.into_inner(), body, Change::Retry).await
}

#[post("/admin/outbox/{id}/cancel")]
async fn cancel(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, id: web::Path<i64>, body: web::Payload) -> HttpResponse {
    change(state, req, staff, id.into_inner(), body, Change::Cancel).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Change {
    Retry,
    Cancel,
}

async fn change(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, id: i64, body: web::Payload, what: Change) -> HttpResponse {
    let input = match form(&req, &state, body).await {
        Ok(i) => i,
        Err(e) => return fail(&state, e),
    };
    let (view, number) = view_and_page(input.raw("state"), input.raw("page"));
    let (staff_id, staff_name) = (staff.0.id, staff.0.name.clone());
    let result = state
        .db
        .write(move |c| {
            let now = now_ms();
            let Some(row) = outbox::find(c, id)? else {
                return Err(AppError::NotFound("not_found", "There is no such email in the outbox.".into()));
            };
            let (label, subject_kind) = describe(&row.kind);
            let about = format!("email #{id} ({label}, {subject_kind} {})", row.subject_id);
            match what {
                Change::Retry => {
                    if outbox::requeue(c, id, now)? == 0 {
                        return Err(AppError::Conflict("not_retryable", "Only failed or cancelled emails can be retried; this one has moved on. Reload the outbox to see where it is.".into()));
                    }
                    audit::record(c, Some(staff_id), &staff_name, "outbox.retry", &format!("retried {about}, which was {}", View::of(&row, now).label().to_lowercase()), now)?;
                }
                Change::Cancel => {
                    if outbox::cancel(c, id, now)? == 0 {
                        return Err(AppError::Conflict("not_cancellable", "Only queued emails can be cancelled; this one is being sent or has moved on. Reload the outbox to see where it is.".into()));
                    }
                    // A letter whose delivery is cancelled will not arrive: say so on the letter
                    // too, rather than leave it looking queued. A retry sends it as usual.
                    if row.kind == DELIVERY {
                        letters::set_state(c, row.subject_id, letters::FAILED)?;
                    }
                    audit::record(c, Some(staff_id), &staff_name, "outbox.cancel", &format!("cancelled {about}"), now)?;
                }
            }
            Ok(())
        })
        .await;
    match result {
        Ok(()) => {
            if what == Change::Retry {
                state.outbox_wake.notify_one();
            }
            see_other(&back_to(view, number, if what == Change::Retry { "retried" } else { "cancelled" }))
        }
        Err(e) => fail(&state, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_lose_addresses_but_keep_reasons() {
        assert_eq!(redact("550 5.1.1 <someone.private@example.org>: Recipient address rejected"), "550 5.1.1 <[address]>: Recipient address rejected");
        assert_eq!(redact("refused permanently: 550 mailbox unavailable"), "refused permanently: 550 mailbox unavailable");
        assert_eq!(redact("to a.b+c@x.co.uk, then"), "to [address], then");
    }

    #[test]
    fn unknown_views_and_pages_fall_back() {
        assert_eq!(view_and_page(Some("given_up"), Some("2")), (View::GivenUp, 2));
        assert_eq!(view_and_page(Some("<script>"), Some("-1")), (View::All, 1));
        assert_eq!(back_to(View::Refused, 3, "retried"), "/admin/outbox?state=failed&page=3&notice=retried");
    }
}
