//! Updates to signers: written by staff, previewed, tested on themselves, then sent once to every
//! confirmed signer who asked for updates, and to no one else; unsubscribing by the link or by a
//! mail program's one-click `List-Unsubscribe-Post`; and carrying on after a restart.
use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;

fn opted_in(name: &str, email: &str) -> serde_json::Value {
    json!({"name": name, "email": email, "postcode": "SW1A 1AA", "consent": true, "updates_opt_in": true})
}

/// The id in a `/admin/campaigns/{slug}/updates/{id}…` redirect.
fn update_id(res: &reqwest::Response) -> String {
    let location = res.headers()["location"].to_str().unwrap();
    let re = regex::Regex::new(r"/updates/(\d+)").unwrap();
    re.captures(location).map(|c| c[1].to_string()).unwrap_or_else(|| panic!("no update id in {location}"))
}

/// A `data-stat` figure on a staff page.
fn stat(html: &str, name: &str) -> i64 {
    let re = regex::Regex::new(&format!(r#"data-stat="{name}">([0-9,]+)<"#)).unwrap();
    re.captures(html).map(|c| c[1].replace(',', "").parse().unwrap()).unwrap_or_else(|| panic!("no {name} figure on the page"))
}

fn header(email: &ReceivedEmail, name: &str) -> Option<String> {
    email.parsed().header_raw(name).map(|v| v.trim().to_string())
}

fn update_emails(app: &TestApp, address: &str, subject: &str) -> usize {
    app.emails_to(address).iter().filter(|e| e.subject().contains(subject)).count()
}

on_both_backends!(an_update_reaches_every_opted_in_confirmed_signer_once_and_no_one_else, |app: TestApp| async move {
    app.postcode_exists("SW1A 1AA", "E14001172", "Cities of London and Westminster").await;
    app.sign_and_confirm(&opted_in("Ada Able", "ada@example.com")).await;
    app.sign_and_confirm(&opted_in("Ben Bright", "ben@example.com")).await;
    // Confirmed, but did not ask for updates.
    app.sign_and_confirm(&signer("Cal Quiet", "cal@example.com", "SW1A 1AA")).await;
    // Asked for updates but never confirmed.
    assert_eq!(app.sign(&opted_in("Dee Draft", "dee@example.com")).await.status(), 202);
    // Asked, confirmed, then changed their mind with the link in their confirmation email.
    app.sign_and_confirm(&opted_in("Eve Later", "eve@example.com")).await;
    let text = app.emails_to("eve@example.com")[0].text();
    let link = regex::Regex::new(r"http://rally\.test(/unsubscribe/[A-Za-z0-9_-]+)").unwrap().captures(&text).expect("an unsubscribe link")[1].to_string();
    assert_eq!(app.get(&link).await.status(), 200, "the link shows a page");
    assert_eq!(app.post_form(&link, &[]).await.status(), 200, "its button unsubscribes");

    let staff = app.signed_in("editor").await;
    let list = format!("/admin/campaigns/{SLUG}/updates");
    let html = staff.page(&list).await;
    assert_eq!(stat(&html, "eligible"), 2, "only Ada and Ben would get it");

    // Bad input is refused next to its field, and nothing is saved.
    let res = staff.post(&list, &list, &[("subject", ""), ("body_md", "Some news")]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("Enter a subject."));
    assert!(!staff.page(&list).await.contains("Some news"));

    let body = "## We were heard\n\nThe Justice Committee will **take evidence** in March.\n\n* thank you\n* keep going";
    let res = staff.post(&list, &list, &[("subject", "Good news from Parliament"), ("body_md", body), ("public", "yes")]).await;
    assert_eq!(res.status(), 303);
    let id = update_id(&res);
    let page_path = format!("{list}/{id}");
    let page = staff.page(&page_path).await;
    assert!(page.contains("<h2>We were heard</h2>") && page.contains("<strong>take evidence</strong>"), "the preview shows the Markdown as it will read");

    // A preview of an unsaved change saves nothing.
    let res = staff.post(&page_path, &format!("{page_path}/preview"), &[("subject", "Changed subject"), ("body_md", "Changed *text*")]).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("<em>text</em>"));
    assert!(staff.page(&page_path).await.contains("Good news from Parliament"));

    // The test copy goes to the staff member alone, marked as a test.
    assert_eq!(staff.post(&page_path, &format!("{page_path}/test"), &[]).await.status(), 303);
    let test = app.wait_for_emails("editor@campaign.example", 1).await;
    assert!(test[0].subject().starts_with("[Test] Good news from Parliament"), "{}", test[0].subject());
    assert!(test[0].text().contains("take evidence"));

    // Sending needs the box ticked.
    let res = staff.post(&page_path, &format!("{page_path}/send"), &[]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("Tick the box"));
    assert_eq!(staff.post(&page_path, &format!("{page_path}/send"), &[("confirm", "yes")]).await.status(), 303);

    let ada = app.wait_for_emails_within("ada@example.com", 2, Duration::from_secs(20)).await;
    let update = ada.iter().find(|e| e.subject() == "Good news from Parliament").expect("Ada has the update");
    assert!(update.text().starts_with("Hello Ada Able,"), "{}", update.text());
    assert!(update.text().contains("The Justice Committee will **take evidence** in March."), "the plain text is the Markdown as written");
    let html = update.parsed().body_html(0).expect("an HTML part").to_string();
    assert!(html.contains("<strong>take evidence</strong>") && html.contains("<li>keep going</li>"));
    assert!(update.text().contains("http://rally.test/forget/"), "the forget link");
    let unsubscribe = header(update, "List-Unsubscribe").expect("List-Unsubscribe");
    assert!(unsubscribe.starts_with("<http://rally.test/unsubscribe/") && unsubscribe.ends_with('>'), "{unsubscribe}");
    assert!(update.text().contains(unsubscribe.trim_matches(['<', '>'])), "the same one-click link is in the text");
    assert_eq!(header(update, "List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    app.wait_for_emails("ben@example.com", 2).await;

    // Staff see it finish; then nobody else has it and nobody has it twice.
    wait_until("the update is delivered", Duration::from_secs(20), || async {
        let html = staff.page(&page_path).await;
        stat(&html, "sent") == 2 && stat(&html, "waiting") == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (who, expected) in [("ada@example.com", 1), ("ben@example.com", 1), ("cal@example.com", 0), ("dee@example.com", 0), ("eve@example.com", 0)] {
        assert_eq!(update_emails(&app, who, "Good news from Parliament"), expected, "{who}");
    }
    let html = staff.page(&page_path).await;
    assert_eq!(stat(&html, "recipients"), 2);
    assert!(!html.contains("Send the update"), "a sent update cannot be sent again from its page");
    assert_eq!(staff.post(&list, &format!("{page_path}/send"), &[("confirm", "yes")]).await.status(), 409);
    // Staff chose to show it on the campaign page too, and nothing there says who received it.
    let campaign_page = app.get(&format!("/campaigns/{SLUG}")).await.text().await.unwrap();
    assert!(campaign_page.contains("Good news from Parliament") && campaign_page.contains("<strong>take evidence</strong>"), "the update is on the campaign page");
    assert!(!campaign_page.contains("Ada Able") && !campaign_page.contains("Hello"));

    // A mail program's one-click unsubscribe (RFC 8058): a POST to the header's address.
    let url = unsubscribe.trim_matches(['<', '>']).replace("http://rally.test", &app.address);
    let res = app.client.post(url).header("Content-Type", "application/x-www-form-urlencoded").body("List-Unsubscribe=One-Click").send().await.unwrap();
    assert_eq!(res.status(), 200);

    let res = staff.post(&list, &list, &[("subject", "Second update"), ("body_md", "More news.")]).await;
    let second = format!("{list}/{}", update_id(&res));
    assert_eq!(stat(&staff.page(&second).await, "eligible"), 1, "Ada has left the list");
    assert_eq!(staff.post(&second, &format!("{second}/send"), &[("confirm", "yes")]).await.status(), 303);
    app.wait_for_emails("ben@example.com", 3).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!app.get(&format!("/campaigns/{SLUG}")).await.text().await.unwrap().contains("Second update"), "an update not marked public stays in the inbox");
    assert_eq!(update_emails(&app, "ada@example.com", "Second update"), 0);
    assert_eq!(update_emails(&app, "ben@example.com", "Second update"), 1);
});

on_both_backends!(only_staff_may_write_updates, |app: TestApp| async move {
    let res = app.get(&format!("/admin/campaigns/{SLUG}/updates")).await;
    assert_eq!(res.status(), 303, "signed-out visitors are sent to sign in");
    let res = app.post_form(&format!("/admin/campaigns/{SLUG}/updates"), &[("subject", "x"), ("body_md", "y")]).await;
    assert!(res.status() == 303 || res.status() == 403, "{}", res.status());
    let staff = app.signed_in("editor").await;
    assert_eq!(staff.get(&format!("/admin/campaigns/{SLUG}/updates/999")).await.status(), 404);
    assert_eq!(staff.get("/admin/campaigns/no-such-campaign/updates").await.status(), 404);
});

/// Many signers, and a restart half way: the update carries on where it stopped, and everyone
/// gets it exactly once. A graceful stop (SIGTERM) records every email it sent; a crash can
/// repeat at most the batch in flight, which `crash.rs` covers for the outbox as a whole.
async fn update_survives_a_restart(backend: Backend) {
    const SIGNERS: usize = 2_000;
    let Some(deployment) = Deployment::new(backend).await else { return };
    // At the default pace (6,000 a minute) the update takes about 20 s: time to stop it half way.
    let mut first = deployment.start().await;

    // Signers straight into the database, as a long-running campaign would have them.
    let db = deployment.db();
    db.write(move |conn| {
        use diesel::connection::SimpleConnection;
        let now = rally::clock::now_ms();
        for chunk in (0..SIGNERS).collect::<Vec<_>>().chunks(500) {
            let rows: Vec<String> = chunk
                .iter()
                .map(|i| format!("((SELECT id FROM campaigns WHERE slug = '{SLUG}'), 'Signer {i}', 'signer{i}@example.com', 'signer{i}@example.com', 'SW1A 1AA', NULL, TRUE, FALSE, 'confirmed', {now}, {now})"))
                .collect();
            conn.batch_execute(&format!(
                "INSERT INTO signatures (campaign_id, name, email, email_key, postcode, ons_code, updates_opt_in, show_name, state, created_at, confirmed_at) VALUES {}",
                rows.join(", ")
            ))?;
        }
        Ok(())
    })
    .await
    .unwrap();

    rally::staff::accounts::create(&db, "lead@campaign.example", "Lead", STAFF_PASSWORD, "editor", None).await.unwrap();
    let staff = StaffBrowser::new(&first.address);
    assert_eq!(staff.login("lead@campaign.example", STAFF_PASSWORD).await.status(), 303);
    let list = format!("/admin/campaigns/{SLUG}/updates");
    let res = staff.post(&list, &list, &[("subject", "News for everyone"), ("body_md", "Thank you for signing.")]).await;
    let page = format!("{list}/{}", update_id(&res));
    assert_eq!(stat(&staff.page(&page).await, "eligible"), SIGNERS as i64);
    let started = Instant::now();
    assert_eq!(staff.post(&page, &format!("{page}/send"), &[("confirm", "yes")]).await.status(), 303);

    let delivered = || deployment.smtp.emails().iter().filter(|e| e.subject() == "News for everyone").count();
    wait_until("some of the update is delivered", Duration::from_secs(60), || async { delivered() >= 200 }).await;
    first.terminate();
    first.wait_exit(Duration::from_secs(30)).await.expect("Rally stops on SIGTERM");
    let before_restart = delivered();
    assert!(before_restart < SIGNERS, "the restart came half way ({before_restart} delivered)");

    let second = deployment.start().await;
    wait_until("every signer has the update", Duration::from_secs(120), || async { delivered() >= SIGNERS }).await;
    let elapsed = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut per_recipient: HashMap<String, usize> = HashMap::new();
    for e in deployment.smtp.emails().iter().filter(|e| e.subject() == "News for everyone") {
        for to in &e.envelope_to {
            *per_recipient.entry(to.clone()).or_default() += 1;
        }
    }
    assert_eq!(per_recipient.len(), SIGNERS, "every signer");
    assert!(per_recipient.values().all(|n| *n == 1), "nobody twice");
    let staff = StaffBrowser::new(&second.address);
    assert_eq!(staff.login("lead@campaign.example", STAFF_PASSWORD).await.status(), 303);
    let html = staff.page(&page).await;
    assert_eq!(stat(&html, "sent"), SIGNERS as i64);
    assert_eq!(stat(&html, "waiting"), 0);
    eprintln!(
        "update to {SIGNERS} signers on {backend:?} at the default pace: {before_restart} delivered before the restart, all {SIGNERS} once each after it, {:.1} s in all",
        elapsed.as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_carries_on_after_a_restart_sqlite() {
    update_survives_a_restart(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_carries_on_after_a_restart_postgres() {
    update_survives_a_restart(Backend::Postgres).await;
}

/// At a slow pace (one a second), someone who signed first but confirms after the sender has
/// gone past them is still reached, once, by the sweep that follows the pass in signature order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signer_who_confirms_while_it_is_sending_gets_it_too() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.insert("RALLY_UPDATE_RATE".into(), "60".into());
    })
    .await
    .unwrap();
    app.postcode_exists("SW1A 1AA", "E14001172", "Cities of London and Westminster").await;
    // Signs first (the lowest id) but does not confirm yet.
    assert_eq!(app.sign(&opted_in("Late Lou", "lou@example.com")).await.status(), 202);
    for i in 0..4 {
        app.sign_and_confirm(&opted_in("Early Bird", &format!("early{i}@example.com"))).await;
    }
    let staff = app.signed_in("editor").await;
    let list = format!("/admin/campaigns/{SLUG}/updates");
    let res = staff.post(&list, &list, &[("subject", "Slow news"), ("body_md", "One at a time.")]).await;
    let page = format!("{list}/{}", update_id(&res));
    assert_eq!(staff.post(&page, &format!("{page}/send"), &[("confirm", "yes")]).await.status(), 303);
    // Once the sender has passed the first signers, Lou confirms.
    wait_until("the first early signer has it", Duration::from_secs(20), || async { update_emails(&app, "early0@example.com", "Slow news") == 1 }).await;
    app.confirm_from_email("lou@example.com").await;
    wait_until("Lou has it too", Duration::from_secs(30), || async { update_emails(&app, "lou@example.com", "Slow news") == 1 }).await;
    for i in 0..4 {
        app.wait_for_emails_within(&format!("early{i}@example.com"), 2, Duration::from_secs(30)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(update_emails(&app, "lou@example.com", "Slow news"), 1, "once");
    assert!((0..4).all(|i| update_emails(&app, &format!("early{i}@example.com"), "Slow news") == 1));
}
