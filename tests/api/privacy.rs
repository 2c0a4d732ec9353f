use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_backends;

fn forget_token(email: &ReceivedEmail) -> String {
    let re = regex::Regex::new(r"/forget/([A-Za-z0-9_-]+)").unwrap();
    re.captures(&email.text()).map(|c| c[1].to_string()).unwrap_or_else(|| panic!("no forget link in:\n{}", email.text()))
}

async fn seed_letter_target(app: &TestApp) {
    app.postcode_exists("GU11 1AA", "E14001063", "Aldershot").await;
}

fn letter_to_js(email: &str, edit: &str) -> Value {
    json!({"target": "justice-secretary", "name": "Robin Private", "email": email, "postcode": "GU11 1AA",
           "address": {"line1": "9 Quiet Lane", "town": "Aldershot"}, "personal_edit": edit})
}

on_both_backends!(a_supporter_sees_and_deletes_everything_in_two_clicks, |app: TestApp| async move {
    seed_letter_target(&app).await;
    let mut body = signer("Robin Private", "robin@example.com", "GU11 1AA");
    body["updates_opt_in"] = json!(true);
    app.sign(&body).await;
    let token = app.wait_for_emails("robin@example.com", 1).await[0].confirm_token();
    app.post_json("/api/confirmations", &json!({"token": token})).await;
    assert_eq!(app.count().await, 1);
    app.post_json(&format!("/api/campaigns/{SLUG}/letters"), &letter_to_js("robin@example.com", "My own story.")).await;
    let letter_token = app.wait_for_emails("robin@example.com", 2).await[1].confirm_token();
    app.post_json("/api/confirmations", &json!({"token": letter_token})).await;
    let all = app.wait_for_emails("robin@example.com", 3).await;
    for e in &all {
        assert!(e.text().contains("http://rally.test/forget/"), "every email to a supporter carries the forget link: {}", e.subject());
    }

    // Click 1: see what is held.
    let ft = forget_token(&all[0]);
    let page = app.get(&format!("/forget/{ft}")).await;
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    let html = page.text().await.unwrap();
    assert!(html.contains("robin@example.com") && html.contains("Robin Private") && html.contains("GU11 1AA"));
    assert!(html.contains("David Lammy"), "letters are listed");

    // Click 2: delete it all.
    let done = app.client.post(app.url(&format!("/forget/{ft}"))).send().await.unwrap();
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("Your details have been deleted"));
    assert_eq!(app.count().await, 0, "the signature is off the count");
    assert_eq!(app.stored_signatures().await, 0);
    let bye = app.wait_for_emails("robin@example.com", 4).await;
    assert!(bye[3].subject().contains("deleted"));
    // Every link from those emails is dead now.
    assert_eq!(app.get(&format!("/forget/{}", forget_token(&all[2]))).await.status(), 404);
    assert_eq!(app.post_json("/api/confirmations", &json!({"token": token})).await.status(), 404);
});

on_both_backends!(unsubscribe_is_one_click_and_keeps_the_signature, |app: TestApp| async move {
    let mut body = signer("Una Sub", "una@example.com", "NE1 4ST");
    body["updates_opt_in"] = json!(true);
    app.sign(&body).await;
    let mail = app.wait_for_emails("una@example.com", 1).await;
    app.post_json("/api/confirmations", &json!({"token": mail[0].confirm_token()})).await;
    let re = regex::Regex::new(r"/unsubscribe/([A-Za-z0-9_-]+)").unwrap();
    let token = re.captures(&mail[0].text()).map(|c| c[1].to_string()).expect("an unsubscribe link for someone who asked for updates");
    // Opening the link names the campaign and changes nothing; a made-up link is not found.
    let page = app.get(&format!("/unsubscribe/{token}")).await.text().await.unwrap();
    assert!(page.contains("Free, independent legal advice") && page.contains("Stop updates"), "{page}");
    assert_eq!(app.get("/unsubscribe/not-a-real-token").await.status(), 404);
    // RFC 8058 one-click: a POST with List-Unsubscribe=One-Click.
    let res = app.client.post(app.url(&format!("/unsubscribe/{token}"))).header("content-type", "application/x-www-form-urlencoded").body("List-Unsubscribe=One-Click").send().await.unwrap();
    assert_eq!(res.status(), 200);
    use diesel::prelude::*;
    use rally::db::schema::signatures;
    let opted: Vec<bool> = app.db().read(|c| Ok(signatures::table.select(signatures::updates_opt_in).load(c)?)).await.unwrap();
    assert_eq!(opted, vec![false]);
    assert_eq!(app.count().await, 1);

    let no_updates = app.sign(&signer("No Updates", "nou@example.com", "NE1 4ST")).await;
    assert_eq!(no_updates.status(), 202);
    let m = app.wait_for_emails("nou@example.com", 1).await;
    assert!(!m[0].text().contains("/unsubscribe/"), "no unsubscribe link for someone not subscribed");
});

/// Every file SQLite keeps for the database.
fn sqlite_bytes(db_url: &str) -> Vec<u8> {
    let path = std::path::PathBuf::from(db_url.trim_start_matches("sqlite://"));
    let dir = path.parent().unwrap();
    let stem = path.file_name().unwrap().to_string_lossy().to_string();
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_name().to_string_lossy().starts_with(&stem) {
            all.extend(std::fs::read(entry.path()).unwrap_or_default());
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_purge_a_delivered_letters_words_are_gone_from_the_sqlite_files() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    seed_letter_target(&app).await;
    let secret = "Unforgettable-Phrase-7f3a91 about what happened to me";
    app.post_json(&format!("/api/campaigns/{SLUG}/letters"), &letter_to_js("surv@example.com", secret)).await;
    let token = app.wait_for_emails("surv@example.com", 1).await[0].confirm_token();
    app.post_json("/api/confirmations", &json!({"token": token})).await;
    app.wait_for_emails("david.lammy.mp@parliament.uk", 1).await;
    app.wait_for_emails("surv@example.com", 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let needle = b"Unforgettable-Phrase-7f3a91";
    let before = sqlite_bytes(&app.db_url);
    assert!(before.windows(needle.len()).any(|w| w == needle), "the test looks in the right files");

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rally"))
        .args(["privacy", "purge"])
        .env("DATABASE_URL", &app.db_url)
        .env("RALLY_LETTER_RETENTION", "0s")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("removed the text and address of 1 letters"), "{}", String::from_utf8_lossy(&out.stdout));
    let after = sqlite_bytes(&app.db_url);
    assert!(!after.windows(needle.len()).any(|w| w == needle), "the personal edit is gone from the database files");
    assert!(!after.windows(b"9 Quiet Lane".len()).any(|w| w == b"9 Quiet Lane"), "and so is the address");
}

on_both_backends!(signatures_are_anonymised_after_their_campaign_closes_but_still_count, |app: TestApp| async move {
    app.postcode_exists("NE1 4ST", "E14001402", "Newcastle upon Tyne Central and West").await;
    app.sign(&signer("Anna Nonymous", "anna@example.com", "NE1 4ST")).await;
    let t = app.wait_for_emails("anna@example.com", 1).await[0].confirm_token();
    app.post_json("/api/confirmations", &json!({"token": t})).await;
    app.eventually("placed", || async { !app.get_json(&format!("/api/campaigns/{SLUG}")).await["signatures_by_constituency"].as_array().unwrap().is_empty() }).await;
    app.sql(&format!("UPDATE campaigns SET state = 'closed', closed_at = 1 WHERE slug = '{SLUG}'")).await;
    let retention = rally::workers::retention::Retention { letters: Duration::from_secs(3600), signatures: Duration::from_secs(0) };
    let p = rally::workers::retention::purge(&app.db(), retention).await.unwrap();
    assert_eq!(p.signatures_anonymised, 1);
    use diesel::prelude::*;
    use rally::db::schema::signatures;
    let rows: Vec<(String, String, String)> = app.db().read(|c| Ok(signatures::table.select((signatures::name, signatures::email, signatures::postcode)).load(c)?)).await.unwrap();
    assert_eq!(rows, vec![(String::new(), String::new(), String::new())]);
    let d = app.get_json(&format!("/api/campaigns/{SLUG}")).await;
    assert_eq!(d["signature_count"], 1);
    assert_eq!(d["signatures_by_constituency"][0]["signature_count"], 1);
});
