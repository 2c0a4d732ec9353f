//! The campaign and letter editors, used as staff would: a cookie jar, the forms' anti-forgery
//! tokens, and the effect of each save on the public JSON, pages and letter tool.
use fantoccini::Locator;
use rally::models::audit::{self, AuditEntry};
use serde_json::{json, Value};

use crate::browser::{browser, until_page_shows};
use crate::helpers::*;
use crate::on_both_backends;

const PC: &str = "GU11 1AA";
const ONS: &str = "E14001063";
const SEAT: &str = "Aldershot";
const EDIT_PAGE: &str = "/admin/campaigns/legal-advocacy";

async fn audit_log(app: &TestApp) -> Vec<AuditEntry> {
    app.db().read(|c| Ok(audit::recent(c, 500, 0)?)).await.unwrap()
}

async fn audit_actions(app: &TestApp) -> Vec<String> {
    audit_log(app).await.into_iter().map(|e| e.action).collect()
}

/// Scalar from the database, for checks that nothing was saved.
async fn count(app: &TestApp, sql_count: &'static str) -> i64 {
    use diesel::prelude::*;
    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    app.db().read(move |c| Ok(diesel::sql_query(sql_count).get_result::<N>(c)?.n)).await.unwrap()
}

async fn listed(app: &TestApp, slug: &str) -> Option<Value> {
    app.get_json("/api/campaigns").await.as_array().unwrap().iter().find(|c| c["slug"] == slug).cloned()
}

fn details<'a>(title: &'a str, state: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("title", title),
        ("summary", "Everyone deserves a fair trial."),
        ("body_md", "## Why it matters\r\n\r\n* one\r\n\r\n<script>alert(1)</script>"),
        ("content_note", ""),
        ("state", state),
        ("closes_on", ""),
    ]
}

async fn html(res: reqwest::Response, status: u16) -> String {
    assert_eq!(res.status(), status);
    res.text().await.unwrap()
}

fn letter_request(target: &str) -> Value {
    json!({
        "target": target, "name": "Sam Writer", "email": "sam@example.com", "postcode": "gu111aa",
        "address": {"line1": "1 High Street", "town": "Aldershot"},
        "personal_edit": "My own words.",
    })
}

/// The writer's postcode known to postcodes.io, and its MP known to Rally.
async fn with_mp(app: &TestApp) {
    app.postcode_exists(PC, ONS, SEAT).await;
    app.sql(&format!(
        "INSERT INTO constituencies (ons_code, name, mp_checked_at) VALUES ('{ONS}', '{SEAT}', 0);
         INSERT INTO members (id, ons_code, name, party, email, updated_at) VALUES (5173, '{ONS}', 'Alex Baker', 'Labour', 'alex.baker.mp@parliament.uk', 0);"
    ))
    .await;
}

async fn preview(app: &TestApp, target: &str) -> reqwest::Response {
    app.post_json(&format!("/api/campaigns/{SLUG}/letters/preview"), &letter_request(target)).await
}

on_both_backends!(a_campaign_is_created_as_a_draft_then_published_and_edited, |app: TestApp| async move {
    let b = app.signed_in("editor").await;
    let list = b.page("/admin/campaigns").await;
    assert!(list.contains("/admin/campaigns/legal-advocacy") && list.contains("New campaign"));

    let mut form = details("Fair trials for all", "draft");
    form.extend([("slug", "fair-trials"), ("milestones", "250, 1000")]);
    let res = b.post("/admin/campaigns", "/admin/campaigns", &form).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/campaigns/fair-trials?done=created");

    // A draft is for staff only.
    assert!(listed(&app, "fair-trials").await.is_none());
    assert_eq!(app.get("/api/campaigns/fair-trials").await.status(), 404);
    assert_eq!(app.get("/campaigns/fair-trials").await.status(), 404);
    let list = b.page("/admin/campaigns").await;
    assert!(list.contains("Fair trials for all") && list.contains("draft"));
    let page = b.page("/admin/campaigns/fair-trials?done=created").await;
    assert!(page.contains("Campaign created") && page.contains(r#"value="250, 1000""#));

    // Opening it publishes it at once, with its target from its ladder.
    let page = "/admin/campaigns/fair-trials";
    let res = b.post(page, page, &details("Fair trials now", "open")).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/campaigns/fair-trials?done=saved");
    let c = listed(&app, "fair-trials").await.expect("listed once open");
    assert_eq!((c["title"].as_str(), c["state"].as_str(), c["target"].as_i64()), (Some("Fair trials now"), Some("open"), Some(250)));
    let detail = app.get_json("/api/campaigns/fair-trials").await;
    assert_eq!(detail["summary"], "Everyone deserves a fair trial.");
    let public = app.get("/campaigns/fair-trials").await.text().await.unwrap();
    assert!(public.contains("Fair trials now") && public.contains("<h2>Why it matters</h2>"));
    assert!(!public.contains("<script>alert"), "Markdown is rendered safely");

    // The ladder, title and summary of the shipped campaign change at once too.
    let res = b.post(EDIT_PAGE, &format!("{EDIT_PAGE}/milestones"), &[("milestones", "10 20,\r\n30")]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(app.get_json(&format!("/api/campaigns/{SLUG}")).await["target"], 10);
    assert!(b.page(EDIT_PAGE).await.contains(r#"value="10, 20, 30""#));
    let mut edit = details("A new title", "open");
    edit[1] = ("summary", "A new summary.");
    assert_eq!(b.post(EDIT_PAGE, EDIT_PAGE, &edit).await.status(), 303);
    let detail = app.get_json(&format!("/api/campaigns/{SLUG}")).await;
    assert_eq!((detail["title"].as_str(), detail["summary"].as_str()), (Some("A new title"), Some("A new summary.")));
    assert!(app.get(&format!("/campaigns/{SLUG}")).await.text().await.unwrap().contains("A new title"));

    // Saving the same again changes nothing and logs nothing.
    let before = audit_log(&app).await.len();
    let res = b.post(EDIT_PAGE, EDIT_PAGE, &edit).await;
    assert_eq!(res.headers()["location"], "/admin/campaigns/legal-advocacy?done=unchanged");
    assert_eq!(audit_log(&app).await.len(), before);

    // Closing records when; a closing date is kept as typed. Someone signs just before, so
    // signing has the open campaign in memory when staff close it.
    assert_eq!(app.sign(&signer("Early Signer", "early@example.com", "NE1 4ST")).await.status(), 202);
    let mut close = details("A new title", "closed");
    close[5] = ("closes_on", "2099-01-01");
    let res = b.post(EDIT_PAGE, EDIT_PAGE, &close).await;
    assert_eq!(res.status(), 422, "more than five years ahead");
    close[5] = ("closes_on", "");
    assert_eq!(b.post(EDIT_PAGE, EDIT_PAGE, &close).await.status(), 303);
    assert_eq!(app.get_json(&format!("/api/campaigns/{SLUG}")).await["state"], "closed");
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM campaigns WHERE slug = 'legal-advocacy' AND closed_at IS NOT NULL").await, 1);
    let res = app.sign(&signer("Late Signer", "late@example.com", "NE1 4ST")).await;
    assert_eq!(res.status(), 409, "a closed campaign takes no signatures");

    // Every change is in the audit log with who made it.
    let log = audit_log(&app).await;
    for (action, detail) in [
        ("campaign.create", "created campaign fair-trials (draft)"),
        ("campaign.update", "fair-trials: changed title"),
        ("campaign.milestones", "legal-advocacy: milestones 1500, 5000, 10000, 25000, 50000, 100000 → 10, 20, 30"),
        ("campaign.update", "state (open → closed)"),
    ] {
        assert!(log.iter().any(|e| e.action == action && e.detail.contains(detail) && e.staff_name == "Test editor" && e.staff_id.is_some()), "{action}: {detail} in {log:#?}");
    }
});

on_both_backends!(bad_campaign_input_is_shown_next_to_its_field_and_nothing_is_saved, |app: TestApp| async move {
    let b = app.signed_in("editor").await;
    let campaigns_before = count(&app, "SELECT COUNT(*) AS n FROM campaigns").await;
    let audit_before = audit_log(&app).await.len();

    // A slug already in use, and one that is not a slug.
    let mut form = details("Refilled title", "open");
    form.extend([("slug", SLUG), ("milestones", "100")]);
    let page = html(b.post("/admin/campaigns", "/admin/campaigns", &form).await, 422).await;
    assert!(page.contains(r#"id="slug-error""#) && page.contains("Another campaign already uses this address"));
    assert!(page.contains(r#"aria-describedby="slug-hint slug-error""#) && page.contains(r#"aria-invalid="true""#));
    assert!(page.contains(r#"value="Refilled title""#), "the form is refilled");
    assert!(page.contains("nothing was saved") && page.contains(r##"href="#slug""##));
    let mut bad = details("Refilled title", "open");
    bad.extend([("slug", "Not A Slug"), ("milestones", "")]);
    let page = html(b.post("/admin/campaigns", "/admin/campaigns", &bad).await, 422).await;
    assert!(page.contains("lower-case letters, digits and single hyphens") && page.contains(r#"id="milestones-error""#));

    // A ladder that goes down, an empty title, an unknown state.
    let page = html(b.post(EDIT_PAGE, &format!("{EDIT_PAGE}/milestones"), &[("milestones", "500, 100")]).await, 422).await;
    assert!(page.contains(r#"id="milestones-error""#) && page.contains("bigger than the one before it (100 comes after 500)"));
    assert!(page.contains(r#"value="500, 100""#));
    let page = html(b.post(EDIT_PAGE, &format!("{EDIT_PAGE}/milestones"), &[("milestones", "1500, 5k")]).await, 422).await;
    assert!(page.contains(r#"id="milestones-error""#) && page.contains("“5k” is not a whole number"));
    let page = html(b.post(EDIT_PAGE, EDIT_PAGE, &details("  ", "opened")).await, 422).await;
    assert!(page.contains(r#"id="title-error""#) && page.contains("Enter the title.") && page.contains(r#"id="state-error""#));
    assert_eq!(app.get_json(&format!("/api/campaigns/{SLUG}")).await["target"], 1500);
    assert!(app.get_json(&format!("/api/campaigns/{SLUG}")).await["title"].as_str().unwrap().contains("legal advice"));

    // A target with a bad email, or the reserved key.
    let target = |key: &'static str, email: &'static str| vec![("key", key), ("name", "Yvette Cooper"), ("title", "Home Secretary"), ("salutation", "Dear Home Secretary"), ("email", email)];
    let page = html(b.post(EDIT_PAGE, &format!("{EDIT_PAGE}/targets"), &target("home-secretary", "not-an-email")).await, 422).await;
    assert!(page.contains(r#"id="new-target-email-error""#) && page.contains("right format"));
    assert!(page.contains(r#"value="Yvette Cooper""#) && page.contains(r##"href="#new-target-email""##));
    let page = html(b.post(EDIT_PAGE, &format!("{EDIT_PAGE}/targets"), &target("mp", "yc@example.gov.uk")).await, 422).await;
    assert!(page.contains(r#"id="new-target-key-error""#));
    let page = html(b.post(EDIT_PAGE, &format!("{EDIT_PAGE}/targets"), &target("justice-secretary", "yc@example.gov.uk")).await, 422).await;
    assert!(page.contains("already has a target with this key"));
    let page = html(b.post(EDIT_PAGE, &format!("{EDIT_PAGE}/targets/justice-secretary"), &target("", "")).await, 422).await;
    assert!(page.contains(r#"id="target-justice-secretary-email-error""#) && page.contains("Enter the email address letters go to."));
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM targets").await, 1);
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM targets WHERE email = 'david.lammy.mp@parliament.uk'").await, 1);

    // No anti-forgery token: 403, nothing saved.
    let forged = b.client.post(b.url("/admin/campaigns")).form(&form).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    let forged = b.client.post(b.url(&format!("{EDIT_PAGE}/milestones"))).form(&[("milestones", "1, 2"), ("csrf_token", "guess")]).send().await.unwrap();
    assert_eq!(forged.status(), 403);

    // Signed out: sent to sign in, shown nothing, nothing saved.
    let out = app.staff_browser();
    for path in ["/admin/campaigns", EDIT_PAGE, "/admin/campaigns/legal-advocacy/letters/mp", "/admin/campaigns/legal-advocacy/letters/mp/versions/1"] {
        let res = out.get(path).await;
        assert_eq!(res.status(), 303, "{path}");
        assert!(res.headers()["location"].to_str().unwrap().starts_with("/admin/login?next=%2Fadmin%2Fcampaigns"));
        assert!(res.text().await.unwrap().is_empty());
    }
    let res = out.client.post(out.url(&format!("{EDIT_PAGE}/milestones"))).form(&[("milestones", "1, 2")]).send().await.unwrap();
    assert_eq!(res.status(), 303);

    assert_eq!(b.get("/admin/campaigns/no-such-campaign").await.status(), 404);
    assert_eq!(b.get("/admin/campaigns/legal-advocacy/letters/no-such-target").await.status(), 404);
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM campaigns").await, campaigns_before);
    assert_eq!(app.get_json(&format!("/api/campaigns/{SLUG}")).await["target"], 1500);
    assert_eq!(audit_log(&app).await.len(), audit_before);
});

on_both_backends!(a_new_target_gets_a_letter_that_supporters_can_write, |app: TestApp| async move {
    with_mp(&app).await;
    let b = app.signed_in("editor").await;
    let target = [("key", "home-secretary"), ("name", "Yvette Cooper"), ("title", "Home Secretary"), ("salutation", "Dear Home Secretary"), ("email", "hs@example.gov.uk")];
    let res = b.post(EDIT_PAGE, &format!("{EDIT_PAGE}/targets"), &target).await;
    assert_eq!(res.status(), 303);
    let page = b.page(EDIT_PAGE).await;
    assert!(page.contains("/admin/campaigns/legal-advocacy/letters/home-secretary") && page.contains("no letter yet"));

    // No letter yet: a supporter is told so, next to the target field.
    let res = preview(&app, "home-secretary").await;
    assert_eq!(res.status(), 422);
    assert!(res.json::<Value>().await.unwrap()["fields"]["target"].is_array());

    let letters = "/admin/campaigns/legal-advocacy/letters/home-secretary";
    let editor = b.page(letters).await;
    assert!(editor.contains("No version saved yet") && editor.contains("writer.address.line1"), "variables are listed");
    let body = "{{ target.salutation }},\n\nPlease fund advocacy, {{ target.title }}.\n{% if personal_edit %}\n{{ personal_edit }}\n{% endif %}\nYours,\n\n{{ writer.name }}\n{{ writer.address.line1 }}\n{% if writer.address.line2 %}{{ writer.address.line2 }}\n{% endif %}{{ writer.address.town }}\n{{ writer.postcode }}\n";
    let res = b.post(letters, letters, &[("subject", "Advocacy for complainants, from {{ constituency.name }}"), ("body", body)]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], format!("{letters}?done=letter-saved"));

    let res = preview(&app, "home-secretary").await;
    assert_eq!(res.status(), 200);
    let p: Value = res.json().await.unwrap();
    assert_eq!(p["to"], json!({"name": "Yvette Cooper", "email": "hs@example.gov.uk"}));
    assert_eq!(p["subject"], "Advocacy for complainants, from Aldershot");
    assert!(p["body"].as_str().unwrap().starts_with("Dear Home Secretary,\n\nPlease fund advocacy, Home Secretary."), "{p}");
    assert!(p["body"].as_str().unwrap().contains("My own words."));

    // Editing the target changes where letters go at once; removing it stops them.
    let edited = [("name", "Shabana Mahmood"), ("title", "Home Secretary"), ("salutation", "Dear Home Secretary"), ("email", "sm@example.gov.uk")];
    assert_eq!(b.post(EDIT_PAGE, &format!("{EDIT_PAGE}/targets/home-secretary"), &edited).await.status(), 303);
    let p: Value = preview(&app, "home-secretary").await.json().await.unwrap();
    assert_eq!(p["to"], json!({"name": "Shabana Mahmood", "email": "sm@example.gov.uk"}));
    assert_eq!(b.post(EDIT_PAGE, &format!("{EDIT_PAGE}/targets/home-secretary/delete"), &[]).await.status(), 303);
    assert_eq!(preview(&app, "home-secretary").await.status(), 422);
    assert!(!b.page(EDIT_PAGE).await.contains("Shabana Mahmood"));

    let actions = audit_actions(&app).await;
    for a in ["target.create", "letter.save", "target.update", "target.delete"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
});

on_both_backends!(letter_templates_are_checked_versioned_and_restored, |app: TestApp| async move {
    with_mp(&app).await;
    let b = app.signed_in("editor").await;
    let letters = "/admin/campaigns/legal-advocacy/letters/mp";
    let versions = || count(&app, "SELECT COUNT(*) AS n FROM letter_templates WHERE target_key = 'mp'");
    let editor = b.page(letters).await;
    assert!(editor.contains("Letters written now use version 1") && editor.contains("shipped with Rally"));
    let v1: Value = preview(&app, "mp").await.json().await.unwrap();
    let subject = "{{ writer.name }}, a constituent in {{ constituency.name }}";
    let good = |middle: &str| {
        format!("{{{{ target.salutation }}}},\n\n{middle}\n{{% if personal_edit %}}{{{{ personal_edit }}}}\n{{% endif %}}\n{{{{ writer.name }}}}\n{{{{ writer.address.line1 }}}}\n{{% if writer.address.line2 %}}{{{{ writer.address.line2 }}}}\n{{% endif %}}{{{{ writer.address.town }}}}\n{{{{ writer.postcode }}}}")
    };

    // A misspelt variable is refused with its line and the name; the form keeps the text.
    let typo = good("Hello\n{{ writer.nmae }} here");
    let page = html(b.post(letters, letters, &[("subject", subject), ("body", &typo)]).await, 422).await;
    assert!(page.contains("line 4: `writer.nmae` is not a variable Rally provides."), "{page}");
    assert!(page.contains("Did you mean `writer.name`?") && page.contains(r#"id="body-error""#) && page.contains("body-hint body-error"));
    assert!(page.contains("{{ writer.nmae }} here"), "the form is refilled");
    // A syntax error is refused with its line.
    let broken = good("Hello\n{% if %}\n{% endif %}");
    let page = html(b.post(letters, letters, &[("subject", subject), ("body", &broken)]).await, 422).await;
    assert!(page.contains("line 4: the template cannot be read at column"), "{page}");
    // A letter to an MP must name the writer in its subject; functions are not allowed.
    let page = html(b.post(letters, letters, &[("subject", "Hello {{ get_env(name=\"HOME\") }}"), ("body", &good(""))]).await, 422).await;
    assert!(page.contains(r#"id="subject-error""#) && page.contains("get_env()"));
    assert_eq!(versions().await, 1, "nothing saved");

    // Preview shows the letter with sample data and saves nothing.
    let new_text = good("VERSION TWO asks you to act.");
    let page = html(b.post(letters, &format!("{letters}/preview"), &[("subject", subject), ("body", &new_text)]).await, 200).await;
    assert!(page.contains("Preview (not saved)") && page.contains("Dear Alex Baker,") && page.contains("VERSION TWO asks you to act."));
    assert!(page.contains("Sam Sample, a constituent in Aldershot") && page.contains("GU11 1AA"));
    assert_eq!(versions().await, 1);
    assert!(!preview(&app, "mp").await.text().await.unwrap().contains("VERSION TWO"));

    // Saving makes version 2, which letters use at once.
    assert_eq!(b.post(letters, letters, &[("subject", subject), ("body", &new_text)]).await.status(), 303);
    assert_eq!(versions().await, 2);
    let p: Value = preview(&app, "mp").await.json().await.unwrap();
    assert!(p["body"].as_str().unwrap().contains("VERSION TWO asks you to act."), "{p}");
    assert_eq!(p["subject"], "Sam Writer, a constituent in Aldershot");
    let editor = b.page(letters).await;
    assert!(editor.contains("Letters written now use version 2") && editor.contains("Test editor") && editor.contains("Restore version 1"));
    assert!(b.page(&format!("{letters}/versions/1")).await.contains("shipped with Rally"));

    // Restoring version 1 saves its text as version 3.
    let res = b.post(letters, &format!("{letters}/versions/1/restore"), &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], format!("{letters}?done=letter-restored"));
    assert_eq!(versions().await, 3);
    let p: Value = preview(&app, "mp").await.json().await.unwrap();
    assert_eq!(p["body"], v1["body"]);
    assert_eq!(p["subject"], v1["subject"]);
    assert!(b.page(letters).await.contains("Letters written now use version 3"));
    assert_eq!(b.get(&format!("{letters}/versions/99")).await.status(), 404);

    // Without the anti-forgery token nothing is saved or restored.
    let forged = b.client.post(b.url(letters)).form(&[("subject", subject), ("body", &new_text)]).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    let forged = b.client.post(b.url(&format!("{letters}/versions/2/restore"))).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(versions().await, 3);

    let log = audit_log(&app).await;
    assert!(log.iter().any(|e| e.action == "letter.save" && e.detail == "legal-advocacy: letter to mp: saved version 2" && e.staff_name == "Test editor"));
    assert!(log.iter().any(|e| e.action == "letter.restore" && e.detail == "legal-advocacy: letter to mp: restored version 1 as version 3"));
    assert_eq!(count(&app, "SELECT COUNT(*) AS n FROM letter_templates WHERE version = 3 AND created_by = 'Test editor'").await, 1);
});

/// In a real browser: sign in through the form, edit a campaign's title, see it in the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_sign_in_and_edit_a_campaign_in_a_real_browser() {
    let Some((browser, _driver)) = browser().await else { return };
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    app.add_staff("ed@campaign.example", "Eda Editor", "editor").await;

    browser.goto(&app.url(EDIT_PAGE)).await.unwrap();
    until_page_shows(&browser, "Staff sign-in").await;
    browser.find(Locator::Id("email")).await.unwrap().send_keys("ed@campaign.example").await.unwrap();
    browser.find(Locator::Id("password")).await.unwrap().send_keys(STAFF_PASSWORD).await.unwrap();
    browser.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();
    until_page_shows(&browser, "Save details").await;
    assert_eq!(browser.current_url().await.unwrap().path(), EDIT_PAGE, "back where they were going");

    let title = browser.find(Locator::Id("title")).await.unwrap();
    title.clear().await.unwrap();
    title.send_keys("Legal advocacy for every complainant").await.unwrap();
    browser.find(Locator::XPath("//button[normalize-space()='Save details']")).await.unwrap().click().await.unwrap();
    until_page_shows(&browser, "Changes saved").await;
    assert_eq!(app.get_json(&format!("/api/campaigns/{SLUG}")).await["title"], "Legal advocacy for every complainant");

    // A refused save keeps what was typed, with the problem next to the field.
    let title = browser.find(Locator::Id("title")).await.unwrap();
    title.clear().await.unwrap();
    browser.find(Locator::XPath("//button[normalize-space()='Save details']")).await.unwrap().click().await.unwrap();
    until_page_shows(&browser, "Enter the title.").await;
    assert_eq!(app.get_json(&format!("/api/campaigns/{SLUG}")).await["title"], "Legal advocacy for every complainant");
    assert!(audit_log(&app).await.iter().any(|e| e.action == "campaign.update" && e.staff_name == "Eda Editor"));
    browser.close().await.unwrap();
}
