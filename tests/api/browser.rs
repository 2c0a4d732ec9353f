//! End to end in a real headless Chromium: sign on the page, confirm from the email, see the count.
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{ClientBuilder, Locator};
use serde_json::json;

use crate::helpers::*;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

pub struct Driver(Child);
impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A WebDriver session against Debian's chromium, or `None` (after saying why) when absent.
pub async fn browser() -> Option<(fantoccini::Client, Driver)> {
    browser_with(true).await
}

/// As `browser`, optionally with JavaScript switched off (to check pages work without it).
pub async fn browser_with(javascript: bool) -> Option<(fantoccini::Client, Driver)> {
    if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
        skipped("browser test", &format!("{CHROMEDRIVER} or {CHROMIUM} is missing; .ci/run installs Debian's chromium and chromium-driver"));
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(CHROMEDRIVER).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("chromedriver starts");
    let driver = Driver(child);
    let profile = tempfile::tempdir().unwrap().keep();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "prefs": {"profile.managed_default_content_settings.javascript": if javascript { 1 } else { 2 }},
            "binary": CHROMIUM,
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     format!("--user-data-dir={}", profile.display())]
        }),
    );
    let start = Instant::now();
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector).capabilities(caps.clone()).connect(&format!("http://127.0.0.1:{port}")).await {
            Ok(c) => return Some((c, driver)),
            Err(e) if start.elapsed() > Duration::from_secs(20) => panic!("chromedriver did not answer: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Waits (up to 10 s) until the page shows `text`: a click that submits a form returns before
/// the next page has necessarily loaded.
pub async fn until_page_shows(browser: &fantoccini::Client, text: &str) -> String {
    let start = Instant::now();
    loop {
        let page = browser.source().await.unwrap_or_default();
        if page.contains(text) {
            return page;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "page never showed {text:?}:\n{page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supporter_signs_and_confirms_in_a_real_browser() {
    let Some((browser, _driver)) = browser().await else { return };
    let app = spawn_app(Backend::Sqlite).await.unwrap();

    browser.goto(&app.url(&format!("/campaigns/{SLUG}"))).await.unwrap();
    let page = browser.source().await.unwrap();
    assert!(page.contains("have signed"));

    // Submitting with nothing filled in shows the problems, with focus on the summary.
    browser.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();
    until_page_shows(&browser, "Enter your name.").await;

    browser.find(Locator::Id("name")).await.unwrap().send_keys("Browser Bea").await.unwrap();
    browser.find(Locator::Id("email")).await.unwrap().send_keys("bea@example.com").await.unwrap();
    browser.find(Locator::Id("postcode")).await.unwrap().send_keys("ne1 4st").await.unwrap();
    browser.find(Locator::Id("consent")).await.unwrap().click().await.unwrap();
    browser.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();
    until_page_shows(&browser, "Check your email").await;
    assert!(browser.current_url().await.unwrap().path().ends_with("/check-email"));

    let token = app.wait_for_emails("bea@example.com", 1).await[0].confirm_token();
    browser.goto(&app.url(&format!("/confirm/{token}"))).await.unwrap();
    assert_eq!(app.count().await, 0, "opening the link alone confirms nothing");
    browser.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();
    until_page_shows(&browser, "your signature counts").await;
    assert_eq!(app.count().await, 1);

    browser.goto(&app.url(&format!("/campaigns/{SLUG}"))).await.unwrap();
    until_page_shows(&browser, "1</strong> has signed").await;
    browser.close().await.unwrap();
}

/// A neutral page standing in for the quick-exit destination (a weather site by default).
async fn neutral_site() -> wiremock::MockServer {
    use wiremock::{matchers::method, Mock, ResponseTemplate};
    let server = wiremock::MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).insert_header("content-type", "text/html").set_body_string("<html><body><h1>Weather forecast</h1></body></html>"))
        .mount(&server)
        .await;
    server
}

/// An app whose quick exit leads to the neutral stand-in page (kept alive by the second value).
async fn app_with_neutral_exit() -> (TestApp, wiremock::MockServer) {
    let neutral = neutral_site().await;
    let uri = neutral.uri();
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.insert("RALLY_QUICK_EXIT_URL".into(), format!("{uri}/weather"));
    })
    .await
    .unwrap();
    (app, neutral)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_exit_leaves_and_back_does_not_return() {
    let Some((b, _driver)) = browser().await else { return };
    let (app, _neutral) = app_with_neutral_exit().await;
    // Arrive from a first page, so Back has somewhere to go.
    b.goto(&app.url("/privacy")).await.unwrap();
    b.goto(&app.url(&format!("/campaigns/{SLUG}"))).await.unwrap();
    b.find(Locator::Id("quick-exit")).await.unwrap().click().await.unwrap();
    until_page_shows(&b, "Weather forecast").await;
    b.back().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let url = b.current_url().await.unwrap();
    assert!(!url.path().starts_with("/campaigns"), "Back must not return to the campaign page: {url}");

    // Escape three times does the same.
    b.goto(&app.url(&format!("/campaigns/{SLUG}"))).await.unwrap();
    until_page_shows(&b, "Quick exit").await;
    for _ in 0..3 {
        b.active_element().await.unwrap().send_keys("\u{e00c}").await.unwrap();
    }
    until_page_shows(&b, "Weather forecast").await;
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_exit_and_signing_work_without_javascript() {
    let Some((b, _driver)) = browser_with(false).await else { return };
    let (app, _neutral) = app_with_neutral_exit().await;
    b.goto(&app.url(&format!("/campaigns/{SLUG}"))).await.unwrap();
    b.find(Locator::Id("name")).await.unwrap().send_keys("No Script").await.unwrap();
    b.find(Locator::Id("email")).await.unwrap().send_keys("noscript@example.com").await.unwrap();
    b.find(Locator::Id("postcode")).await.unwrap().send_keys("NE1 4ST").await.unwrap();
    b.find(Locator::Id("consent")).await.unwrap().click().await.unwrap();
    b.find(Locator::Css("form button[type=submit]")).await.unwrap().click().await.unwrap();
    until_page_shows(&b, "Check your email").await;
    b.find(Locator::Id("quick-exit")).await.unwrap().click().await.unwrap();
    until_page_shows(&b, "Weather forecast").await;
    b.close().await.unwrap();
}

/// The id (or tag) of the focused element.
async fn focused(b: &fantoccini::Client) -> String {
    b.execute("const e = document.activeElement; return e.id || e.tagName.toLowerCase();", vec![]).await.unwrap().as_str().unwrap_or("").to_string()
}

async fn press(b: &fantoccini::Client, keys: &str) {
    b.active_element().await.unwrap().send_keys(keys).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_supporter_can_sign_with_the_keyboard_alone() {
    const TAB: &str = "\u{e004}";
    const ENTER: &str = "\u{e007}";
    let Some((b, _driver)) = browser().await else { return };
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    b.goto(&app.url(&format!("/campaigns/{SLUG}"))).await.unwrap();
    until_page_shows(&b, "Sign the petition").await;
    // The first stops are the skip link and the quick exit.
    b.execute("document.body.focus();", vec![]).await.unwrap();
    b.find(Locator::Css("body")).await.unwrap().send_keys(TAB).await.unwrap();
    let first = b.execute("return document.activeElement.className;", vec![]).await.unwrap();
    assert_eq!(first, "skip-link");
    press(&b, TAB).await;
    assert_eq!(focused(&b).await, "quick-exit");
    // Tab on to the form and fill it in.
    for _ in 0..12 {
        if focused(&b).await == "name" {
            break;
        }
        press(&b, TAB).await;
    }
    assert_eq!(focused(&b).await, "name", "the name field is reachable by Tab");
    press(&b, "Key Board").await;
    press(&b, TAB).await;
    press(&b, "keys@example.com").await;
    press(&b, TAB).await;
    press(&b, "NE1 4ST").await;
    for _ in 0..3 {
        press(&b, TAB).await;
    }
    assert_eq!(focused(&b).await, "consent");
    press(&b, " ").await;
    // Past the privacy notice link in the consent label, to the button.
    for _ in 0..3 {
        press(&b, TAB).await;
        if focused(&b).await == "button" {
            break;
        }
    }
    assert_eq!(focused(&b).await, "button");
    press(&b, ENTER).await;
    until_page_shows(&b, "Check your email").await;
    app.wait_for_emails("keys@example.com", 1).await;
    b.close().await.unwrap();
}
