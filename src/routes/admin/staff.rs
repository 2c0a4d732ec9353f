//! Managing staff (admins only): the list, adding someone, and for each account its role,
//! whether it may sign in, and a new password set by the admin. Every change is audited.
//!
//! An admin cannot demote or disable themselves, so there is always at least one admin who can
//! sign in: the last admin can only be demoted by another admin, who stays one.
use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::clock::now_ms;
use crate::error::{AppError, FieldErrors};
use crate::models::audit;
use crate::models::staff::{self as table, StaffMember, ADMIN, EDITOR};
use crate::routes::admin::audit::{stamp, Stamp};
use crate::routes::admin::{fail, form, page, require_admin, see_other};
use crate::staff::accounts::{self, check_password_rules, hash_password, parse_role};
use crate::staff::session::CurrentStaff;
use crate::state::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list).service(add).service(show).service(change_role).service(disable).service(enable).service(set_password);
}

const SELF_ROLE: &str = "You can't change your own role. Another admin can.";
const SELF_DISABLE: &str = "You can't disable your own account. Another admin can.";

#[derive(Serialize)]
struct Person {
    id: i64,
    name: String,
    email: String,
    role: String,
    created: Stamp,
    disabled: Option<Stamp>,
    is_self: bool,
}

impl Person {
    fn new(m: &StaffMember, me: &StaffMember) -> Person {
        Person { id: m.id, name: m.name.clone(), email: m.email.clone(), role: m.role.clone(), created: stamp(m.created_at), disabled: m.disabled_at.map(stamp), is_self: m.id == me.id }
    }
}

#[derive(Deserialize)]
struct Notice {
    notice: Option<String>,
}

fn notice_text(key: Option<&str>) -> Option<&'static str> {
    match key? {
        "added" => Some("The account was added. Give them their password in person or by phone, not by email."),
        "role" => Some("The role was changed."),
        "disabled" => Some("The account was disabled; it is signed out at its next request."),
        "enabled" => Some("The account can sign in again."),
        "password" => Some("The new password is set. Give it to them in person or by phone, not by email."),
        _ => None,
    }
}

/// The first problem of each field, for showing next to it.
fn first_errors(errors: &FieldErrors) -> BTreeMap<String, String> {
    errors.0.iter().filter_map(|(field, problems)| problems.first().map(|p| (field.clone(), p.clone()))).collect()
}

fn one_error(field: &str, problem: &str) -> FieldErrors {
    let mut e = FieldErrors::default();
    e.add(field, problem);
    e
}

// ---------------------------------------------------------------------------------------------
// The list and adding someone
// ---------------------------------------------------------------------------------------------

async fn list_page(state: &AppState, req: &HttpRequest, me: &StaffMember, status: StatusCode, values: BTreeMap<&str, String>, errors: &FieldErrors, notice: Option<&str>) -> HttpResponse {
    let everyone = match state.db.read(|c| Ok(table::list(c)?)).await {
        Ok(all) => all,
        Err(e) => return fail(state, e),
    };
    let people: Vec<Person> = everyone.iter().map(|m| Person::new(m, me)).collect();
    let mut ctx = tera::Context::new();
    ctx.insert("people", &people);
    ctx.insert("values", &values);
    ctx.insert("errors", &first_errors(errors));
    ctx.insert("error_count", &errors.0.len());
    ctx.insert("notice", &notice_text(notice));
    ctx.insert("roles", &[EDITOR, ADMIN]);
    ctx.insert("password_min", &accounts::PASSWORD_MIN);
    page(state, req, Some(me), status, "admin/staff.html", ctx)
}

#[get("/admin/staff")]
async fn list(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, q: web::Query<Notice>) -> HttpResponse {
    if let Err(e) = require_admin(&staff.0) {
        return fail(&state, e);
    }
    let values = BTreeMap::from([("role", EDITOR.to_string())]);
    list_page(&state, &req, &staff.0, StatusCode::OK, values, &FieldErrors::default(), q.notice.as_deref()).await
}

#[post("/admin/staff")]
async fn add(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, body: web::Payload) -> HttpResponse {
    if let Err(e) = require_admin(&staff.0) {
        return fail(&state, e);
    }
    let input = match form(&req, &state, body).await {
        Ok(i) => i,
        Err(e) => return fail(&state, e),
    };
    let field = |name: &str| input.raw(name).unwrap_or("").to_string();
    let (email, name, role, password) = (field("email"), field("name"), field("role"), field("password"));
    // accounts::create checks every field and a repeated email, and audits the addition.
    match accounts::create(&state.db, &email, &name, &password, &role, Some(&staff.0)).await {
        Ok(_) => see_other("/admin/staff?notice=added"),
        Err(AppError::Validation(errors)) => {
            // The form comes back filled in, except the password, which is never echoed.
            let values = BTreeMap::from([("email", email.trim().to_string()), ("name", name), ("role", role)]);
            list_page(&state, &req, &staff.0, StatusCode::UNPROCESSABLE_ENTITY, values, &errors, None).await
        }
        Err(e) => fail(&state, e),
    }
}

// ---------------------------------------------------------------------------------------------
// One account
// ---------------------------------------------------------------------------------------------

async fn find(state: &AppState, id: i64) -> Result<StaffMember, AppError> {
    state.db.read(move |c| Ok(table::find(c, id)?)).await?.ok_or_else(|| AppError::NotFound("not_found", "There is no such staff account.".into()))
}

fn person_page(state: &AppState, req: &HttpRequest, me: &StaffMember, member: &StaffMember, status: StatusCode, errors: &FieldErrors, notice: Option<&str>) -> HttpResponse {
    let mut ctx = tera::Context::new();
    ctx.insert("person", &Person::new(member, me));
    ctx.insert("errors", &first_errors(errors));
    ctx.insert("error_count", &errors.0.len());
    ctx.insert("notice", &notice_text(notice));
    ctx.insert("roles", &[EDITOR, ADMIN]);
    ctx.insert("password_min", &accounts::PASSWORD_MIN);
    page(state, req, Some(me), status, "admin/staff_person.html", ctx)
}

#[get("/admin/staff/{id}")]
async fn show(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, id: web::Path<i64>, q: web::Query<Notice>) -> HttpResponse {
    if let Err(e) = require_admin(&staff.0) {
        return fail(&state, e);
    }
    match find(&state, id.into_inner()).await {
        Ok(member) => person_page(&state, &req, &staff.0, &member, StatusCode::OK, &FieldErrors::default(), q.notice.as_deref()),
        Err(e) => fail(&state, e),
    }
}

/// What every change to one account starts with: an admin, a genuine form, an existing account.
async fn prepare(state: &AppState, req: &HttpRequest, staff: &StaffMember, id: i64, body: web::Payload) -> Result<(crate::routes::input::Input, StaffMember), AppError> {
    require_admin(staff)?;
    let input = form(req, state, body).await?;
    let member = find(state, id).await?;
    Ok((input, member))
}

/// After a change: back to the account's page with a notice, or the page with the problem
/// next to its field (422).
fn outcome(state: &AppState, req: &HttpRequest, me: &StaffMember, member: &StaffMember, result: Result<&str, AppError>) -> HttpResponse {
    match result {
        Ok(notice) => see_other(&format!("/admin/staff/{}?notice={notice}", member.id)),
        Err(AppError::Validation(errors)) => person_page(state, req, me, member, StatusCode::UNPROCESSABLE_ENTITY, &errors, None),
        Err(e) => fail(state, e),
    }
}

#[post("/admin/staff/{id}/role")]
async fn change_role(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, id: web::Path<i64>, body: web::Payload) -> HttpResponse {
    let (input, member) = match prepare(&state, &req, &staff.0, id.into_inner(), body).await {
        Ok(x) => x,
        Err(e) => return fail(&state, e),
    };
    let result = async {
        let role = parse_role(input.raw("role").unwrap_or("")).map_err(|e| AppError::Validation(one_error("role", &e)))?;
        if member.id == staff.0.id {
            return Err(AppError::Validation(one_error("role", SELF_ROLE)));
        }
        if role == member.role {
            return Ok("role");
        }
        let (me_id, me_name, old, target_id, target) = (staff.0.id, staff.0.name.clone(), member.role.clone(), member.id, member.name.clone());
        state
            .db
            .write(move |c| {
                let now = now_ms();
                table::set_role(c, target_id, role)?;
                audit::record(c, Some(me_id), &me_name, "staff.role", &format!("changed the role of {target} (#{target_id}) from {old} to {role}"), now)?;
                Ok(())
            })
            .await?;
        Ok("role")
    }
    .await;
    outcome(&state, &req, &staff.0, &member, result)
}

#[post("/admin/staff/{id}/disable")]
async fn disable(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, id: web::Path<i64>, body: web::Payload) -> HttpResponse {
    set_access(state, req, staff, id.into_inner(), body, false).await
}

#[post("/admin/staff/{id}/enable")]
async fn enable(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, id: web::Path<i64>, body: web::Payload) -> HttpResponse {
    set_access(state, req, staff, id.into_inner(), body, true).await
}

async fn set_access(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, id: i64, body: web::Payload, enabled: bool) -> HttpResponse {
    let (_input, member) = match prepare(&state, &req, &staff.0, id, body).await {
        Ok(x) => x,
        Err(e) => return fail(&state, e),
    };
    let notice = if enabled { "enabled" } else { "disabled" };
    let result = async {
        if member.id == staff.0.id && !enabled {
            return Err(AppError::Validation(one_error("access", SELF_DISABLE)));
        }
        // Pressing the button twice (or two admins at once) changes nothing the second time.
        if member.disabled_at.is_none() == enabled {
            return Ok(notice);
        }
        let (me_id, me_name, target_id, target) = (staff.0.id, staff.0.name.clone(), member.id, member.name.clone());
        state
            .db
            .write(move |c| {
                let now = now_ms();
                table::set_disabled(c, target_id, (!enabled).then_some(now))?;
                audit::record(c, Some(me_id), &me_name, if enabled { "staff.enable" } else { "staff.disable" }, &format!("{notice} {target} (#{target_id})"), now)?;
                Ok(())
            })
            .await?;
        Ok(notice)
    }
    .await;
    outcome(&state, &req, &staff.0, &member, result)
}

#[post("/admin/staff/{id}/password")]
async fn set_password(state: web::Data<AppState>, req: HttpRequest, staff: CurrentStaff, id: web::Path<i64>, body: web::Payload) -> HttpResponse {
    let (input, member) = match prepare(&state, &req, &staff.0, id.into_inner(), body).await {
        Ok(x) => x,
        Err(e) => return fail(&state, e),
    };
    let result = async {
        let password = input.raw("password").unwrap_or("").to_string();
        check_password_rules(&password).map_err(|e| AppError::Validation(one_error("password", &e)))?;
        // Hashing is slow on purpose; keep it off the async workers.
        let hash = tokio::task::spawn_blocking(move || hash_password(&password)).await.map_err(AppError::internal)??;
        let (me_id, me_name, target_id, target) = (staff.0.id, staff.0.name.clone(), member.id, member.name.clone());
        state
            .db
            .write(move |c| {
                let now = now_ms();
                table::set_password(c, target_id, &hash)?;
                audit::record(c, Some(me_id), &me_name, "staff.password", &format!("set a new password for {target} (#{target_id})"), now)?;
                Ok(())
            })
            .await?;
        Ok("password")
    }
    .await;
    outcome(&state, &req, &staff.0, &member, result)
}
