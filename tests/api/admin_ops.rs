//! Staff operations pages: managing staff, the MP directory, the outbox and the audit log.
use std::time::Duration;

use diesel::prelude::*;
use rally::db::schema::{audit_log, outbox};
use rally::models::staff;
use serde_json::json;
use wiremock::matchers::{method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::*;
use crate::on_both_backends;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

async fn staff_id(app: &TestApp, email: &str) -> i64 {
    let email = email.to_string();
    app.db().read(move |c| Ok(staff::find_by_email(c, &email)?)).await.unwrap().expect("staff account").id
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    app.db().read(|c| Ok(audit_log::table.order(audit_log::id.asc()).select(audit_log::action).load::<String>(c)?)).await.unwrap()
}

/// (id, state) of every outbox row, oldest first.
async fn outbox_rows(app: &TestApp) -> Vec<(i64, String)> {
    app.db().read(|c| Ok(outbox::table.order(outbox::id.asc()).select((outbox::id, outbox::state)).load::<(i64, String)>(c)?)).await.unwrap()
}

async fn body(res: reqwest::Response) -> String {
    res.text().await.unwrap()
}

/// The public mp_lookup.csv layout: quoted fields, CRLF, more columns than needed.
fn mp_csv(rows: &[&str]) -> Vec<u8> {
    let mut text = String::from(r#""pcon_name","pcon_code","member_id","full_title","display_as","party_text","member_email","region_name""#);
    text.push_str("\r\n");
    for r in rows {
        text.push_str(r);
        text.push_str("\r\n");
    }
    text.into_bytes()
}

const ALDERSHOT: &str = r#""Aldershot","E14001063","5173","Alex Baker MP","Alex Baker","Labour","alex.baker.mp@parliament.uk","South East""#;
const YNYS_MON: &str = r#""Ynys Môn","W07000112","5085","Llinos Medi MP","Llinos Medi","Plaid Cymru","","Wales""#;
const VACANT: &str = r#""Vacant Town","E14009999","","","","","","Nowhere""#;
const BAD_CODE: &str = r#""Nowhere","E1400","5174","Some One MP","Some One","Labour","x@parliament.uk","Nowhere""#;

/// Posts the CSV upload form as a browser would (multipart), with this browser's token unless
/// `token` says otherwise.
async fn upload(b: &StaffBrowser, token: Option<&str>, filename: &str, content: &[u8]) -> reqwest::Response {
    let boundary = "----RallyTestBoundary7MA4YWxkTrZu0gW";
    let mut data = Vec::new();
    if let Some(t) = token {
        data.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{t}\r\n").as_bytes());
    }
    data.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{filename}\"\r\nContent-Type: text/csv\r\n\r\n").as_bytes());
    data.extend_from_slice(content);
    data.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    b.client.post(b.url("/admin/mps/import")).header("content-type", format!("multipart/form-data; boundary={boundary}")).body(data).send().await.unwrap()
}

// ---------------------------------------------------------------------------------------------
// Signed out, and editors
// ---------------------------------------------------------------------------------------------

on_both_backends!(signed_out_visitors_are_sent_to_sign_in_and_see_nothing, |app: TestApp| async move {
    let b = app.staff_browser();
    for page in ["/admin/mps", "/admin/mps?q=x", "/admin/mps/members/5173", "/admin/outbox", "/admin/outbox?state=failed", "/admin/audit", "/admin/staff", "/admin/staff/1"] {
        let res = b.get(page).await;
        assert_eq!(res.status(), 303, "GET {page}");
        assert!(res.headers()["location"].to_str().unwrap().starts_with("/admin/login?next="), "GET {page}");
        assert!(body(res).await.is_empty(), "GET {page} shows nothing");
    }
    for action in [
        "/admin/mps/sync",
        "/admin/mps/import",
        "/admin/mps/members/5173/email",
        "/admin/outbox/1/retry",
        "/admin/outbox/1/cancel",
        "/admin/staff",
        "/admin/staff/1/role",
        "/admin/staff/1/disable",
        "/admin/staff/1/password",
    ] {
        let res = b.client.post(b.url(action)).form(&[("x", "y")]).send().await.unwrap();
        assert_eq!(res.status(), 303, "POST {action}");
        assert_eq!(res.headers()["location"], "/admin/login?next=%2Fadmin", "POST {action}");
    }
});

on_both_backends!(editors_cannot_manage_staff_or_read_the_audit_log, |app: TestApp| async move {
    let editor = app.signed_in("editor").await;
    for page in ["/admin/staff", "/admin/audit", "/admin/staff/1"] {
        let res = editor.get(page).await;
        assert_eq!(res.status(), 403, "GET {page}");
        assert!(body(res).await.contains("Only admins can do that."));
    }
    let res = editor.post("/admin/mps", "/admin/staff", &[("email", "sneaky@campaign.example"), ("name", "Sneaky"), ("role", "admin"), ("password", STAFF_PASSWORD)]).await;
    assert_eq!(res.status(), 403);
    let id = staff_id(&app, "editor@campaign.example").await;
    let res = editor.post("/admin/mps", &format!("/admin/staff/{id}/role"), &[("role", "admin")]).await;
    assert_eq!(res.status(), 403, "an editor cannot promote themselves");
    assert_eq!(app.db().read(move |c| Ok(staff::find(c, id)?)).await.unwrap().unwrap().role, "editor");
    // Editors do use the MP directory and the outbox.
    assert!(editor.page("/admin/mps").await.contains("Sync from the Members API now"));
    assert!(editor.page("/admin/outbox").await.contains("Outbox"));
    // Their nav does not offer admin pages.
    assert!(!editor.page("/admin/outbox").await.contains(r#"href="/admin/staff""#));
});

// ---------------------------------------------------------------------------------------------
// Staff
// ---------------------------------------------------------------------------------------------

on_both_backends!(admins_add_change_disable_and_reset_staff, |app: TestApp| async move {
    let admin = app.signed_in("admin").await;
    app.add_staff("existing@campaign.example", "Ex Isting", "editor").await;
    let list = admin.page("/admin/staff").await;
    assert!(list.contains("Test admin") && list.contains("existing@campaign.example"));

    // Bad input: each problem next to its field, the form refilled (never the password), nothing saved.
    let res = admin.post("/admin/staff", "/admin/staff", &[("email", "new.editor@campaign.example"), ("name", "Nia Newcomer"), ("role", "editor"), ("password", "short")]).await;
    assert_eq!(res.status(), 422);
    let html = body(res).await;
    assert!(html.contains(r#"id="password-error""#) && html.contains("at least 12 characters"), "{html}");
    assert!(html.contains(r#"aria-describedby="password-hint password-error""#));
    assert!(html.contains(r#"value="new.editor@campaign.example""#) && html.contains(r#"value="Nia Newcomer""#));
    assert!(!html.contains(r#"value="short""#));
    let lookup = || async { app.db().read(|c| Ok(staff::find_by_email(c, "new.editor@campaign.example")?)).await.unwrap() };
    assert!(lookup().await.is_none());

    let res = admin.post("/admin/staff", "/admin/staff", &[("email", "EXISTING@campaign.example"), ("name", "Someone Else"), ("role", "editor"), ("password", STAFF_PASSWORD)]).await;
    assert_eq!(res.status(), 422);
    let html = body(res).await;
    assert!(html.contains(r#"id="email-error""#) && html.contains("already a staff account"));

    let res = admin.post("/admin/staff", "/admin/staff", &[("email", "x@campaign.example"), ("name", "Xavier"), ("role", "owner"), ("password", STAFF_PASSWORD)]).await;
    assert_eq!(res.status(), 422);
    assert!(body(res).await.contains("The role must be admin or editor."));

    // Without the anti-forgery token: 403, nothing saved.
    let forged =
        admin.client.post(admin.url("/admin/staff")).form(&[("email", "new.editor@campaign.example"), ("name", "Nia Newcomer"), ("role", "admin"), ("password", STAFF_PASSWORD)]).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    assert!(lookup().await.is_none());

    // Added: they can sign in.
    let res = admin.post("/admin/staff", "/admin/staff", &[("email", "new.editor@campaign.example"), ("name", "Nia Newcomer"), ("role", "editor"), ("password", STAFF_PASSWORD)]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/staff?notice=added");
    assert!(admin.page("/admin/staff?notice=added").await.contains("Nia Newcomer"));
    let nia = app.staff_browser();
    assert_eq!(nia.login("new.editor@campaign.example", STAFF_PASSWORD).await.status(), 303);
    assert_eq!(nia.get("/admin").await.status(), 200);
    assert_eq!(nia.get("/admin/staff").await.status(), 403, "added as an editor");
    let nia_id = lookup().await.unwrap().id;
    let person = format!("/admin/staff/{nia_id}");

    // An admin cannot demote or disable themselves: said next to the field.
    let me = staff_id(&app, "admin@campaign.example").await;
    let mine = format!("/admin/staff/{me}");
    assert!(admin.page(&mine).await.contains("You can't change your own role."));
    let res = admin.post(&mine, &format!("{mine}/role"), &[("role", "editor")]).await;
    assert_eq!(res.status(), 422);
    let html = body(res).await;
    assert!(html.contains(r#"id="role-error""#) && html.contains(r#"aria-describedby="role-error" aria-invalid="true""#), "{html}");
    let res = admin.post(&mine, &format!("{mine}/disable"), &[]).await;
    assert_eq!(res.status(), 422);
    let html = body(res).await;
    assert!(html.contains(r#"id="access-error""#) && html.contains("You can&#x27;t disable your own account."));
    assert_eq!(admin.get("/admin/staff").await.status(), 200, "still an admin, still signed in");

    // Role: promoted, and the page says so.
    let res = admin.post(&person, &format!("{person}/role"), &[("role", "admin")]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(nia.get("/admin/staff").await.status(), 200, "now an admin");
    let res = admin.post(&person, &format!("{person}/role"), &[("role", "emperor")]).await;
    assert_eq!(res.status(), 422);
    assert!(body(res).await.contains(r#"id="role-error""#));

    // Disabled: the session they already have is refused at their next request.
    let res = admin.post(&person, &format!("{person}/disable"), &[]).await;
    assert_eq!(res.status(), 303);
    let res = nia.get("/admin").await;
    assert_eq!(res.status(), 303);
    assert!(res.headers()["location"].to_str().unwrap().starts_with("/admin/login"));
    assert_eq!(app.staff_browser().login("new.editor@campaign.example", STAFF_PASSWORD).await.status(), 422);
    assert!(admin.page("/admin/staff").await.contains("No, disabled"));

    // Enabled again: the old session stays dead (only a new sign-in works).
    assert_eq!(admin.post(&person, &format!("{person}/enable"), &[]).await.status(), 303);
    assert_eq!(nia.get("/admin").await.status(), 303, "an old cookie does not come back to life");
    let fresh = app.staff_browser();
    assert_eq!(fresh.login("new.editor@campaign.example", STAFF_PASSWORD).await.status(), 303);
    assert_eq!(fresh.get("/admin").await.status(), 200);
    let res = admin.post(&person, &format!("{person}/password"), &[("password", "too short")]).await;
    assert_eq!(res.status(), 422);
    let html = body(res).await;
    assert!(html.contains(r#"id="password-error""#) && html.contains("at least 12 characters"));
    let new_password = "a brand new long passphrase";
    assert_eq!(admin.post(&person, &format!("{person}/password"), &[("password", new_password)]).await.status(), 303);
    assert_eq!(fresh.get("/admin").await.status(), 303, "a password reset ends existing sessions");
    assert_eq!(app.staff_browser().login("new.editor@campaign.example", STAFF_PASSWORD).await.status(), 422);
    assert_eq!(app.staff_browser().login("new.editor@campaign.example", new_password).await.status(), 303);

    assert_eq!(admin.get("/admin/staff/99999").await.status(), 404);

    // Every change is in the audit log, which names who did it.
    let actions = audit_actions(&app).await;
    for a in ["staff.create", "staff.role", "staff.disable", "staff.enable", "staff.password"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    let log = admin.page("/admin/audit").await;
    assert!(log.contains("staff.role") && log.contains("changed the role of Nia Newcomer") && log.contains("from editor to admin"));
    assert!(log.contains("staff.disable") && log.contains("staff.password") && log.contains("Test admin"));
    assert!(!log.contains(new_password) && !log.contains(STAFF_PASSWORD), "no password in the log");
});

// ---------------------------------------------------------------------------------------------
// Outbox
// ---------------------------------------------------------------------------------------------

on_both_backends!(outbox_shows_errors_and_retries_and_cancels, |app: TestApp| async move {
    let supporter = "sam.private@example.org";
    assert_eq!(app.sign(&signer("Sam Private", supporter, "NE1 4ST")).await.status(), 202);
    app.wait_for_emails(supporter, 1).await;
    let b = app.signed_in("editor").await;
    let rows = outbox_rows(&app).await;
    assert_eq!(rows.len(), 1, "a signature makes one outbox row");
    let id = rows[0].0;
    app.eventually("the row is marked sent", || async { outbox_rows(&app).await[0].1 == "sent" }).await;

    let sent = b.page("/admin/outbox?state=sent").await;
    assert!(sent.contains("Signature confirmation") && sent.contains(&format!("id=\"email-{id}\"")));
    assert!(!sent.contains(supporter) && !sent.contains("Sam Private"), "no supporter's details on the outbox page");

    // Refused permanently: listed under failed with its error (the address in it hidden).
    app.sql(&format!("UPDATE outbox SET state = 'failed', attempts = 1, sent_at = NULL, last_error = 'refused permanently: 550 <{supporter}> mailbox unavailable' WHERE id = {id}")).await;
    let failed = b.page("/admin/outbox?state=failed").await;
    assert!(failed.contains("refused permanently: 550") && failed.contains("mailbox unavailable"), "{failed}");
    assert!(!failed.contains(supporter));
    assert!(failed.contains(&format!("action=\"/admin/outbox/{id}/retry\"")));
    assert!(!b.page("/admin/outbox?state=sent").await.contains(&format!("id=\"email-{id}\"")));
    assert!(!b.page("/admin/outbox?state=given_up").await.contains(&format!("id=\"email-{id}\"")));

    // Retry without the token: refused; with it: queued again and sent.
    assert_eq!(b.client.post(b.url(&format!("/admin/outbox/{id}/retry"))).form(&[("state", "failed")]).send().await.unwrap().status(), 403);
    let res = b.post("/admin/outbox?state=failed", &format!("/admin/outbox/{id}/retry"), &[("state", "failed"), ("page", "1")]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/outbox?state=failed&page=1&notice=retried");
    let got = app.wait_for_emails(supporter, 2).await;
    assert!(got[1].text().contains("/confirm/"), "the retried email is the confirmation");
    app.eventually("the retried row is sent", || async { outbox_rows(&app).await[0].1 == "sent" }).await;
    // A sent row cannot be retried.
    assert_eq!(b.post("/admin/outbox", &format!("/admin/outbox/{id}/retry"), &[]).await.status(), 409);

    // Given up after transient failures: its own state.
    app.sql(&format!("UPDATE outbox SET state = 'failed', last_error = 'gave up after 25 attempts: timed out' WHERE id = {id}")).await;
    let given_up = b.page("/admin/outbox?state=given_up").await;
    assert!(given_up.contains("gave up after 25 attempts") && given_up.contains(&format!("id=\"email-{id}\"")));

    // Cancel a queued row (due far in the future, so the sender does not take it first).
    app.sql(&format!("UPDATE outbox SET state = 'pending', run_at = 99999999999999, lease_until = NULL, sent_at = NULL WHERE id = {id}")).await;
    let queued = b.page("/admin/outbox?state=queued").await;
    assert!(queued.contains(&format!("action=\"/admin/outbox/{id}/cancel\"")));
    let res = b.post("/admin/outbox?state=queued", &format!("/admin/outbox/{id}/cancel"), &[("state", "queued")]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(outbox_rows(&app).await[0].1, "cancelled");
    // Now due, but cancelled rows are never sent.
    app.sql(&format!("UPDATE outbox SET run_at = 0 WHERE id = {id}")).await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(app.emails_to(supporter).len(), 2, "a cancelled email is not sent");
    assert!(b.page("/admin/outbox?state=cancelled").await.contains(&format!("id=\"email-{id}\"")));
    assert_eq!(b.post("/admin/outbox", &format!("/admin/outbox/{id}/cancel"), &[]).await.status(), 409, "cancelling twice");
    assert_eq!(b.post("/admin/outbox", "/admin/outbox/999999/retry", &[]).await.status(), 404);

    // Counts by state, and an unknown filter is just the whole list.
    let all = b.page("/admin/outbox?state=nonsense").await;
    assert!(all.contains("Cancelled <span class=\"count-badge\">1</span>"), "{all}");

    let actions = audit_actions(&app).await;
    assert!(actions.iter().any(|a| a == "outbox.retry") && actions.iter().any(|a| a == "outbox.cancel"), "{actions:?}");
    let admin = app.signed_in("admin").await;
    let log = admin.page("/admin/audit").await;
    assert!(log.contains(&format!("retried email #{id} (Signature confirmation")) && log.contains(&format!("cancelled email #{id}")));
    assert!(!log.contains(supporter));
});

// ---------------------------------------------------------------------------------------------
// MP directory
// ---------------------------------------------------------------------------------------------

on_both_backends!(mp_directory_upload_search_and_edit, |app: TestApp| async move {
    let b = app.signed_in("editor").await;
    let empty = b.page("/admin/mps").await;
    assert!(empty.contains("Never"), "nothing synced or imported yet");

    // Upload: the report with bad rows by line, and the MPs listed.
    let token = b.csrf("/admin/mps").await;
    let res = upload(&b, Some(&token), "mp_lookup.csv", &mp_csv(&[ALDERSHOT, YNYS_MON, VACANT, BAD_CODE])).await;
    assert_eq!(res.status(), 200);
    let html = body(res).await;
    assert!(html.contains("Imported 3 constituencies") && html.contains("1 row was skipped."), "{html}");
    assert!(html.contains("Line 5: pcon_code `E1400` is not a constituency code"), "{html}");
    assert!(html.contains("Alex Baker") && html.contains("Llinos Medi") && html.contains("Vacant Town"));
    let page = b.page("/admin/mps").await;
    assert!(page.contains("Last CSV import") && page.contains("Imported 3 constituencies"));
    assert!(page.contains(r#"<th scope="row">With an MP</th><td class="num">2</td>"#), "{page}");
    assert!(page.contains(r#"<th scope="row">MPs without an email</th><td class="num"><a href="/admin/mps?show=no_email">1</a></td>"#));

    // Search ignores case and accents.
    let found = b.page("/admin/mps?q=ynys+mon").await;
    assert!(found.contains("Llinos Medi") && !found.contains("Alex Baker"));
    let no_email = b.page("/admin/mps?show=no_email").await;
    assert!(no_email.contains("Llinos Medi") && !no_email.contains("Alex Baker"));

    // Not a CSV, missing columns, no file: said next to the field, nothing imported.
    let res = upload(&b, Some(&token), "mps.xlsx", b"PK\x03\x04\x14\x00\x06\x00binary").await;
    assert_eq!(res.status(), 422);
    let html = body(res).await;
    assert!(html.contains(r#"id="file-error""#) && html.contains("spreadsheet, not a CSV file"), "{html}");
    assert!(html.contains(r#"aria-describedby="file-hint file-error""#));
    let res = upload(&b, Some(&token), "other.csv", b"name,code\r\nAldershot,E14001063\r\n").await;
    assert_eq!(res.status(), 422);
    let html = body(res).await;
    assert!(html.contains(r#"id="file-error""#) && html.contains("pcon_code"), "{html}");
    let res = upload(&b, Some(&token), "", b"").await;
    assert_eq!(res.status(), 422);
    assert!(body(res).await.contains("Choose the CSV file"));
    // Without the token: 403, nothing imported.
    assert_eq!(upload(&b, None, "mp_lookup.csv", &mp_csv(&[BAD_CODE])).await.status(), 403);
    assert_eq!(upload(&b, Some("forged"), "mp_lookup.csv", &mp_csv(&[BAD_CODE])).await.status(), 403);
    let not_multipart = b.client.post(b.url("/admin/mps/import")).form(&[("file", "pcon_code")]).send().await.unwrap();
    assert_eq!(not_multipart.status(), 403, "no token, whatever the encoding");

    // Edit one MP's email: a supporter's lookup shows it.
    app.postcode_exists("GU11 1AA", "E14001063", "Aldershot").await;
    let res = b.post("/admin/mps?q=alder", "/admin/mps/members/5173/email", &[("email", "alex@newoffice.example.org"), ("q", "alder"), ("page", "1")]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/mps?q=alder&page=1&notice=email#member-5173");
    assert_eq!(app.get_json("/api/postcodes/GU111AA").await["mp"]["email"], "alex@newoffice.example.org");

    // A bad email: 422 next to the field, the value kept, nothing saved.
    let res = b.post("/admin/mps", "/admin/mps/members/5173/email", &[("email", "not an email")]).await;
    assert_eq!(res.status(), 422);
    let html = body(res).await;
    assert!(html.contains(r#"id="email-error""#) && html.contains(r#"aria-describedby="email-hint email-error""#) && html.contains(r#"value="not an email""#), "{html}");
    assert_eq!(app.get_json("/api/postcodes/GU111AA").await["mp"]["email"], "alex@newoffice.example.org");
    // Without the token: 403.
    let forged = b.client.post(b.url("/admin/mps/members/5173/email")).form(&[("email", "evil@example.org")]).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    // Blank: no email.
    assert_eq!(b.post("/admin/mps/members/5173", "/admin/mps/members/5173/email", &[("email", "  ")]).await.status(), 303);
    assert!(app.get_json("/api/postcodes/GU111AA").await["mp"]["email"].is_null());
    assert_eq!(b.post("/admin/mps", "/admin/mps/members/424242/email", &[("email", "a@b.example")]).await.status(), 404);

    // A sync from here runs in the background; this test's Members API is unreachable, so it
    // fails, says so, and changes nothing.
    let res = b.post("/admin/mps", "/admin/mps/sync", &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/mps?notice=sync_started");
    let mut last = String::new();
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        last = b.page("/admin/mps").await;
        if last.contains("failed, so nothing was changed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(last.contains("failed, so nothing was changed") && last.contains("could not list current MPs"), "{last}");
    assert!(b.page("/admin/mps").await.contains("Alex Baker"));

    let actions = audit_actions(&app).await;
    for a in ["mps.import", "member.email", "mps.sync"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    let log = app.signed_in("admin").await.page("/admin/audit").await;
    assert!(log.contains("changed the email of Alex Baker (member 5173, Aldershot) from alex.baker.mp@parliament.uk to alex@newoffice.example.org"), "{log}");
    assert!(log.contains("imported MPs from an uploaded CSV") && log.contains("sync of MPs failed"));
});

/// A sync against a Members API stub that knows one new MP for Aldershot.
async fn sync_replaces_the_mp(backend: Backend) {
    let api = MockServer::start().await;
    let member = json!({"value": {"id": 9001, "nameDisplayAs": "New Person", "latestParty": {"name": "Independent"},
        "latestHouseMembership": {"membershipFrom": "Aldershot", "house": 1}}, "links": []});
    Mock::given(method("GET"))
        .and(path("/api/Members/Search"))
        .and(query_param("skip", "0"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"items": [member], "totalResults": 1, "skip": 0, "take": 20})))
        .mount(&api)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/Members/9001/Contact"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"value": [{"type": "Parliamentary office", "isPreferred": true, "email": "new.person.mp@parliament.uk"}]})))
        .mount(&api)
        .await;
    let uri = api.uri();
    let Some(app) = spawn_app_with(backend, |s| {
        s.insert("RALLY_MEMBERS_API_URL".into(), uri);
    })
    .await
    else {
        return;
    };
    let b = app.signed_in("admin").await;
    let token = b.csrf("/admin/mps").await;
    assert_eq!(upload(&b, Some(&token), "mps.csv", &mp_csv(&[ALDERSHOT])).await.status(), 200);
    let res = b.post("/admin/mps", "/admin/mps/sync", &[]).await;
    assert_eq!(res.status(), 303);
    let mut page = String::new();
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_secs(20) {
        page = b.page("/admin/mps").await;
        if page.contains("Checked 1 current MP") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(page.contains("Last sync from the Members API") && page.contains("Checked 1 current MP against 1 known constituency"), "{page}");
    assert!(page.contains("New Person") && page.contains("new.person.mp@parliament.uk") && !page.contains("Alex Baker"));
    assert!(!page.contains("is running"));
    app.postcode_exists("GU11 1AA", "E14001063", "Aldershot").await;
    assert_eq!(app.get_json("/api/postcodes/GU111AA").await["mp"]["name"], "New Person");
    assert!(b.page("/admin/audit").await.contains("sync of MPs finished"));
}

mod sync_from_the_members_api {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        sync_replaces_the_mp(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        sync_replaces_the_mp(Backend::Postgres).await;
    }
}
