//! WCAG 2.2 AA checks with axe-core in headless Chromium on the pages a supporter uses.
//! axe-core comes from npm (tests/a11y, installed by .ci/run); without it or a browser the
//! test says it was skipped.
use std::io::Write;

use fantoccini::Locator;
use serde_json::{json, Value};

use crate::browser::{browser, until_page_shows, Driver};
use crate::helpers::*;

const AXE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/a11y/node_modules/axe-core/axe.min.js");

const RUN_AXE: &str = r#"
const done = arguments[arguments.length - 1];
axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } })
  .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help, target: v.nodes.map(n => n.target.join(' ')).slice(0, 3) }))))
  .catch(e => done([{ id: 'axe-error', impact: 'critical', nodes: 0, help: String(e) }]));
"#;

/// Runs axe on the page the browser shows; returns (serious or critical, all) violations.
async fn audit(b: &fantoccini::Client, axe: &str, name: &str) -> Vec<Value> {
    b.execute(axe, vec![]).await.expect("axe loads");
    let found = b.execute_async(RUN_AXE, vec![]).await.expect("axe runs");
    let all = found.as_array().cloned().unwrap_or_default();
    let _ = writeln!(std::io::stderr(), "axe-core on {name}: {} violations {}", all.len(), serde_json::to_string(&all).unwrap_or_default());
    all.into_iter().filter(|v| matches!(v["impact"].as_str(), Some("serious" | "critical"))).collect()
}

/// axe-core's source and a browser to run it in, or `None` (after saying why) when either is missing.
async fn axe_in_browser() -> Option<(String, fantoccini::Client, Driver)> {
    let Ok(axe) = std::fs::read_to_string(AXE) else {
        skipped("accessibility test", "axe-core is not installed: run `npm ci --prefix tests/a11y` (.ci/run does)");
        return None;
    };
    let (b, driver) = browser().await?;
    Some((axe, b, driver))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supporter_pages_have_no_serious_accessibility_problems() {
    let Some((axe, b, _driver)) = axe_in_browser().await else { return };
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    app.postcode_exists("GU11 1AA", "E14001063", "Aldershot").await;
    app.sql("INSERT INTO constituencies (ons_code, name, mp_checked_at) VALUES ('E14001063', 'Aldershot', 0);
             INSERT INTO members (id, ons_code, name, party, email, updated_at) VALUES (5173, 'E14001063', 'Alex Baker', 'Labour', 'alex.baker.mp@parliament.uk', 0);")
        .await;
    let mut problems = Vec::new();
    let mut check = |name: &'static str, found: Vec<Value>| {
        if !found.is_empty() {
            problems.push(json!({"page": name, "violations": found}));
        }
    };

    b.goto(&app.url("/")).await.unwrap();
    check("home", audit(&b, &axe, "home").await);
    b.goto(&app.url(&format!("/campaigns/{SLUG}"))).await.unwrap();
    check("campaign", audit(&b, &axe, "campaign").await);
    // The form with every error showing.
    b.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();
    until_page_shows(&b, "Enter your name.").await;
    check("campaign with errors", audit(&b, &axe, "campaign with errors").await);
    b.goto(&app.url(&format!("/campaigns/{SLUG}/write?postcode=GU11+1AA"))).await.unwrap();
    check("write", audit(&b, &axe, "write").await);
    b.goto(&app.url("/privacy")).await.unwrap();
    check("privacy", audit(&b, &axe, "privacy").await);
    b.goto(&app.url(&format!("/campaigns/{SLUG}/constituencies?postcode=GU11+1AA"))).await.unwrap();
    check("constituencies", audit(&b, &axe, "constituencies").await);
    b.goto(&app.url(&format!("/campaigns/{SLUG}/constituencies?postcode=nonsense"))).await.unwrap();
    check("constituencies with an error", audit(&b, &axe, "constituencies with an error").await);
    b.goto(&app.url(&format!("/campaigns/{SLUG}/constituencies/E14001063"))).await.unwrap();
    check("one constituency, for MPs' offices", audit(&b, &axe, "one constituency").await);

    app.sign(&signer("Axe Tester", "axe@example.com", "GU11 1AA")).await;
    let token = app.wait_for_emails("axe@example.com", 1).await[0].confirm_token();
    b.goto(&app.url(&format!("/confirm/{token}"))).await.unwrap();
    check("confirm", audit(&b, &axe, "confirm").await);
    b.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();
    until_page_shows(&b, "your signature counts").await;
    check("thank-you", audit(&b, &axe, "thank-you").await);
    // "Did your MP reply?": a letter delivered 15 days ago is asked about when the clock moves.
    let now = rally::clock::now_ms();
    let sent = now - 15 * 24 * 3_600_000;
    app.sql(&format!(
        "INSERT INTO letters (campaign_id, target_key, target_name, target_email, ons_code, writer_name, writer_email, writer_email_key, \
         address_line1, town, postcode, subject, body, state, created_at, confirmed_at, sent_at) \
         SELECT id, 'mp', 'Alex Baker', 'alex.baker.mp@parliament.uk', 'E14001063', 'Axe Tester', 'axe-writer@example.com', 'axe-writer@example.com', \
         '1 High Street', 'Aldershot', 'GU11 1AA', 'A letter', 'Dear Alex Baker', 'sent', {now}, {sent}, {sent} FROM campaigns WHERE slug = '{SLUG}'"
    ))
    .await;
    app.advance_clock(std::time::Duration::from_secs(1));
    let ask = app.wait_for_emails("axe-writer@example.com", 1).await[0].text();
    let link = regex::Regex::new(r"http://rally\.test(/replies/[A-Za-z0-9_-]+\?answer=replied)").unwrap().captures(&ask).expect("an answer link")[1].to_string();
    b.goto(&app.url(&link)).await.unwrap();
    check("did your MP reply", audit(&b, &axe, "did your MP reply").await);
    b.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();
    until_page_shows(&b, "Thank you").await;
    check("reply recorded", audit(&b, &axe, "reply recorded").await);
    // A sent update shown on the campaign page (the page is cached for a second).
    app.sql(&format!(
        "INSERT INTO updates (campaign_id, subject, body_md, state, created_by, created_at, updated_at, started_at, finished_at, public) \
         SELECT id, 'The committee is listening', 'Thank you.\n\n* We gave evidence\n* [Read it](https://example.org/evidence)', 'sent', 'Staff', {now}, {now}, {now}, {now}, TRUE \
         FROM campaigns WHERE slug = '{SLUG}'"
    ))
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    b.goto(&app.url(&format!("/campaigns/{SLUG}"))).await.unwrap();
    until_page_shows(&b, "The committee is listening").await;
    check("campaign with an update", audit(&b, &axe, "campaign with an update").await);
    // 400 % zoom of a 1280-pixel window is a 320-pixel viewport: nothing may need sideways scrolling.
    b.set_window_size(320, 800).await.unwrap();
    for path in ["/".to_string(), format!("/campaigns/{SLUG}"), format!("/campaigns/{SLUG}/write?postcode=GU11+1AA"), "/privacy".to_string(), format!("/campaigns/{SLUG}/constituencies?postcode=GU11+1AA"), format!("/campaigns/{SLUG}/constituencies/E14001063"), link.clone()] {
        b.goto(&app.url(&path)).await.unwrap();
        let widths = b.execute("return [document.documentElement.scrollWidth, window.innerWidth];", vec![]).await.unwrap();
        let (scroll, inner) = (widths[0].as_i64().unwrap(), widths[1].as_i64().unwrap());
        assert!(inner <= 400, "the window really is narrow ({inner})");
        let wide = b
            .execute("return Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > window.innerWidth + 0.5).slice(0, 5).map(e => e.tagName + '.' + e.className + ' ' + Math.round(e.getBoundingClientRect().right));", vec![])
            .await
            .unwrap();
        assert!(scroll <= inner, "{path} scrolls sideways at 320 px: {scroll} > {inner}; too wide: {wide}");
    }
    b.close().await.unwrap();
    assert!(problems.is_empty(), "serious or critical accessibility problems: {}", serde_json::to_string_pretty(&problems).unwrap());
}

/// The staff pages for updates, used in a real browser: write, see the errors, preview, send and
/// watch the progress, then the campaign dashboard, each page checked by axe.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_update_pages_have_no_serious_accessibility_problems() {
    let Some((axe, b, _driver)) = axe_in_browser().await else { return };
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    app.add_staff("ed@campaign.example", "Eda Editor", "editor").await;
    let mut problems = Vec::new();
    let mut check = |name: &'static str, found: Vec<Value>| {
        if !found.is_empty() {
            problems.push(json!({"page": name, "violations": found}));
        }
    };
    let updates = format!("/admin/campaigns/{SLUG}/updates");
    b.goto(&app.url(&updates)).await.unwrap();
    until_page_shows(&b, "Staff sign-in").await;
    b.find(Locator::Id("email")).await.unwrap().send_keys("ed@campaign.example").await.unwrap();
    b.find(Locator::Id("password")).await.unwrap().send_keys(STAFF_PASSWORD).await.unwrap();
    b.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();
    until_page_shows(&b, "Write an update").await;
    check("updates", audit(&b, &axe, "updates").await);

    b.find(Locator::XPath("//button[normalize-space()='Save draft']")).await.unwrap().click().await.unwrap();
    until_page_shows(&b, "Enter a subject.").await;
    check("updates with errors", audit(&b, &axe, "updates with errors").await);

    b.find(Locator::Id("subject")).await.unwrap().send_keys("News from the committee").await.unwrap();
    b.find(Locator::Id("body_md")).await.unwrap().send_keys("## What happened\n\nThank you for **signing**.").await.unwrap();
    b.find(Locator::XPath("//button[normalize-space()='Save draft']")).await.unwrap().click().await.unwrap();
    until_page_shows(&b, "Send me a test").await;
    check("draft with preview", audit(&b, &axe, "draft with preview").await);

    b.find(Locator::XPath("//button[normalize-space()='Send the update']")).await.unwrap().click().await.unwrap();
    until_page_shows(&b, "Tick the box").await;
    check("send refused", audit(&b, &axe, "send refused").await);
    b.find(Locator::Id("confirm")).await.unwrap().click().await.unwrap();
    b.find(Locator::XPath("//button[normalize-space()='Send the update']")).await.unwrap().click().await.unwrap();
    until_page_shows(&b, "Sending has started").await;
    check("progress", audit(&b, &axe, "progress").await);
    b.goto(&app.url(&format!("/admin/campaigns/{SLUG}/dashboard"))).await.unwrap();
    until_page_shows(&b, "Did MPs reply?").await;
    check("campaign dashboard", audit(&b, &axe, "campaign dashboard").await);
    b.close().await.unwrap();
    assert!(problems.is_empty(), "serious or critical accessibility problems: {}", serde_json::to_string_pretty(&problems).unwrap());
}
