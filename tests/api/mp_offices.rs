//! What MPs' offices see: the public page with a campaign's figures for their constituency (and
//! the link to it in each letter), the optional weekly digest with its one-click stop link, and
//! the plain share links on the campaign page.
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_backends;

const PC: &str = "GU11 1AA";
const ONS: &str = "E14001063";
const SEAT: &str = "Aldershot";
const MP_EMAIL: &str = "alex.baker.mp@parliament.uk";
const NE_PC: &str = "NE1 4ST";
const NE_ONS: &str = "E14001402";
const NE_SEAT: &str = "Newcastle upon Tyne Central and West";
const NE_MP_EMAIL: &str = "chi.onwurah.mp@parliament.uk";
const QUIET_ONS: &str = "E14001172";
const QUIET_MP_EMAIL: &str = "rachel.blake.mp@parliament.uk";
const EDIT_PAGE: &str = "/admin/campaigns/legal-advocacy";
const PAGE_URL: &str = "http://rally.test/campaigns/legal-advocacy/constituencies/E14001063";

/// Three seats with MPs who have email addresses; postcodes.io knows two postcodes.
async fn with_mps(app: &TestApp) {
    app.postcode_exists(PC, ONS, SEAT).await;
    app.postcode_exists(NE_PC, NE_ONS, NE_SEAT).await;
    app.sql(&format!(
        "INSERT INTO constituencies (ons_code, name, mp_checked_at) VALUES ('{ONS}', '{SEAT}', 0);
         INSERT INTO constituencies (ons_code, name, mp_checked_at) VALUES ('{NE_ONS}', '{NE_SEAT}', 0);
         INSERT INTO constituencies (ons_code, name, mp_checked_at) VALUES ('{QUIET_ONS}', 'Cities of London and Westminster', 0);
         INSERT INTO members (id, ons_code, name, party, email, updated_at) VALUES (5173, '{ONS}', 'Alex Baker', 'Labour', '{MP_EMAIL}', 0);
         INSERT INTO members (id, ons_code, name, party, email, updated_at) VALUES (4124, '{NE_ONS}', 'Chi Onwurah', 'Labour', '{NE_MP_EMAIL}', 0);
         INSERT INTO members (id, ons_code, name, party, email, updated_at) VALUES (5200, '{QUIET_ONS}', 'Rachel Blake', 'Labour', '{QUIET_MP_EMAIL}', 0);"
    ))
    .await;
}

/// Signs and confirms, then waits until the signature is counted in its constituency.
async fn signs_in(app: &TestApp, name: &str, email: &str, postcode: &str, ons_code: &str) {
    let before = placed(app, ons_code).await;
    app.sign_and_confirm(&signer(name, email, postcode)).await;
    app.eventually("the signature is placed in its constituency", || async { placed(app, ons_code).await == before + 1 }).await;
}

async fn placed(app: &TestApp, ons_code: &str) -> i64 {
    let d = app.get_json(&format!("/api/campaigns/{SLUG}")).await;
    d["signatures_by_constituency"].as_array().unwrap().iter().find(|r| r["ons_code"] == ons_code).map_or(0, |r| r["signature_count"].as_i64().unwrap())
}

async fn sent_letters(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    use rally::db::schema::letters;
    app.db().read(|c| Ok(letters::table.filter(letters::state.eq("sent")).count().get_result::<i64>(c)?)).await.unwrap()
}

/// A letter to the MP for GU11 1AA, confirmed and delivered; returns the delivered email.
async fn writes_to_mp(app: &TestApp, name: &str, email: &str) -> ReceivedEmail {
    let letter = json!({
        "target": "mp", "name": name, "email": email, "postcode": "gu111aa",
        "address": {"line1": "1 High Street", "town": "Aldershot"},
        "personal_edit": "My own words.",
    });
    let delivered_before = app.emails_to(MP_EMAIL).iter().filter(|m| m.subject().contains(name)).count();
    let sent_before = sent_letters(app).await;
    assert_eq!(app.post_json(&format!("/api/campaigns/{SLUG}/letters"), &letter).await.status(), 202);
    app.confirm_from_email(email).await;
    app.eventually("the letter reaches the MP", || async { app.emails_to(MP_EMAIL).iter().filter(|m| m.subject().contains(name)).count() > delivered_before })
        .await;
    // Rally marks it delivered just after the mail server took it.
    app.eventually("the letter is marked delivered", || async { sent_letters(app).await > sent_before }).await;
    app.emails_to(MP_EMAIL).into_iter().rev().find(|m| m.subject().contains(name)).unwrap()
}

on_both_backends!(the_constituency_page_shows_the_figures_and_each_letter_links_to_it, |app: TestApp| async move {
    with_mps(&app).await;
    signs_in(&app, "Priya Hidden", "priya@example.com", PC, ONS).await;
    signs_in(&app, "Quentin Private", "quentin@example.com", PC, ONS).await;
    signs_in(&app, "Nell Elsewhere", "nell@example.com", NE_PC, NE_ONS).await;
    assert_eq!(app.sign(&signer("Una Confirmed", "una@example.com", PC)).await.status(), 202, "not confirmed: not counted");

    // The letter carries the link between the writer's words and their name and address.
    let delivered = writes_to_mp(&app, "Sam Writer", "sam@example.com").await;
    let text = delivered.text();
    assert!(text.starts_with("Dear Alex Baker,"), "{text}");
    assert!(text.trim_end().ends_with("Sam Writer\n1 High Street\nAldershot\nGU11 1AA"), "{text}");
    let link = text.find(PAGE_URL).unwrap_or_else(|| panic!("the page link is in the letter:\n{text}"));
    assert!(link > text.find("My own words.").unwrap() && link < text.find("I would be grateful if you could reply").unwrap(), "{text}");

    // The letter is marked delivered just after the mail server took it.
    let figures = "<strong>2</strong> of your constituents have signed; <strong>1</strong> wrote to you.";
    app.eventually("the page counts the letter", || async {
        app.get(&format!("/campaigns/{SLUG}/constituencies/{ONS}")).await.text().await.unwrap().contains(figures)
    })
    .await;
    let res = app.get(&format!("/campaigns/{SLUG}/constituencies/{ONS}")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "public, max-age=60");
    let html = res.text().await.unwrap();
    assert!(html.contains(figures), "{html}");
    assert!(html.contains("<h1>Aldershot</h1>") && html.contains("Alex Baker") && html.contains("(Labour)"), "{html}");
    assert!(html.contains(&format!(r#"href="/campaigns/{SLUG}""#)) && html.contains("Free, independent legal advice"), "{html}");
    assert!(!html.contains("Last new"), "no date that would say when a neighbour took part");
    assert!(html.contains(r#"id="quick-exit""#), "a public page has the quick exit");
    for private in ["Priya", "Quentin", "Sam Writer", "Una", "example.com", "1 High Street", "GU11", MP_EMAIL] {
        assert!(!html.contains(private), "{private} is not on the public page");
    }

    // Another seat's own figures, and one with none yet.
    let ne = app.get(&format!("/campaigns/{SLUG}/constituencies/{NE_ONS}")).await.text().await.unwrap();
    assert!(ne.contains("<strong>1</strong> of your constituents has signed; <strong>0</strong> wrote to you."), "{ne}");
    let quiet = app.get(&format!("/campaigns/{SLUG}/constituencies/{QUIET_ONS}")).await.text().await.unwrap();
    assert!(quiet.contains("<strong>0</strong> of your constituents have signed") && quiet.contains("No one here has signed or written yet."), "{quiet}");

    // The table of constituencies links to each page.
    let table = app.get(&format!("/campaigns/{SLUG}/constituencies")).await.text().await.unwrap();
    assert!(table.contains(&format!(r#"<a href="/campaigns/{SLUG}/constituencies/{ONS}">Aldershot</a>"#)), "{table}");
    let near = app.get(&format!("/campaigns/{SLUG}/constituencies?postcode=GU11+1AA")).await.text().await.unwrap();
    assert!(near.contains(&format!(r#"<a href="/campaigns/{SLUG}/constituencies/{ONS}">Aldershot: signatures and letters</a>"#)), "{near}");

    // Unknown constituency, nonsense code, unknown campaign: page not found.
    for path in [
        format!("/campaigns/{SLUG}/constituencies/E14009999"),
        format!("/campaigns/{SLUG}/constituencies/%3Cscript%3E"),
        format!("/campaigns/no-such-campaign/constituencies/{ONS}"),
    ] {
        let res = app.get(&path).await;
        assert_eq!(res.status(), 404, "{path}");
        assert!(res.text().await.unwrap().contains("Quick exit"), "{path} is a page");
    }
    // Nor does a draft campaign show.
    app.sql("UPDATE campaigns SET state = 'draft' WHERE slug = 'legal-advocacy'").await;
    assert_eq!(app.get(&format!("/campaigns/{SLUG}/constituencies/{ONS}")).await.status(), 404);
});

/// How far to move the app's clock so that it is just past next Monday 00:00 UTC.
fn to_next_monday(app: &TestApp) -> Duration {
    use rally::workers::mp_digest::{week_of, week_start};
    let now = app.clock.now();
    Duration::from_millis((week_start(week_of(now) + 1) - now + 1_000) as u64)
}

fn digests(app: &TestApp, to: &str) -> Vec<ReceivedEmail> {
    app.emails_to(to).into_iter().filter(|m| m.subject().contains("weekly figures")).collect()
}

/// Gives the worker time to act on a clock move (it wakes at once; this is for "nothing happens").
async fn settle() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

fn header(m: &ReceivedEmail, name: &'static str) -> Option<String> {
    let parsed = m.parsed();
    parsed.header_raw(name).map(|v| v.trim().to_string())
}

on_both_backends!(the_weekly_digest_is_off_until_staff_turn_it_on_and_stops_with_one_click, |app: TestApp| async move {
    with_mps(&app).await;

    // Off by default: a week with activity goes by and no MP hears from Rally.
    signs_in(&app, "Early Signer", "early@example.com", PC, ONS).await;
    app.advance_clock(to_next_monday(&app));
    settle().await;
    app.advance_clock(Duration::from_secs(8 * 24 * 3600));
    settle().await;
    assert!(digests(&app, MP_EMAIL).is_empty(), "no digest while it is off");

    // Staff turn it on from the campaign's edit page; the page says what it holds.
    let b = app.signed_in("editor").await;
    let page = b.page(EDIT_PAGE).await;
    assert!(page.contains("Send a weekly digest to MPs' offices") && page.contains("counts only"), "{page}");
    assert!(!page.contains(r#"name="mp_digest" type="checkbox" value="on" checked"#), "off by default");
    let c = app.get_json(&format!("/api/campaigns/{SLUG}")).await;
    let form = [
        ("title", c["title"].as_str().unwrap()),
        ("summary", c["summary"].as_str().unwrap()),
        ("body_md", "The campaign."),
        ("content_note", ""),
        ("state", "open"),
        ("closes_on", ""),
        ("mp_digest", "on"),
    ];
    let res = b.post(EDIT_PAGE, EDIT_PAGE, &form).await;
    assert_eq!(res.status(), 303);
    assert!(b.page(EDIT_PAGE).await.contains(r#"name="mp_digest" type="checkbox" value="on" checked"#));
    let logged = app.db().read(|c| Ok(rally::models::audit::recent(c, 50, 0)?)).await.unwrap();
    assert!(logged.iter().any(|e| e.action == "campaign.update" && e.detail.contains("weekly digest to MPs' offices (turned on)")), "{logged:#?}");

    // A week with two signatures and a letter in Aldershot, nothing elsewhere.
    signs_in(&app, "Priya Hidden", "priya@example.com", PC, ONS).await;
    signs_in(&app, "Quentin Private", "quentin@example.com", PC, ONS).await;
    writes_to_mp(&app, "Sam Writer", "sam@example.com").await;
    assert!(digests(&app, MP_EMAIL).is_empty(), "nothing before the week ends");
    app.advance_clock(to_next_monday(&app));
    app.eventually("the digest reaches the MP", || async { !digests(&app, MP_EMAIL).is_empty() }).await;
    settle().await;
    let sent = digests(&app, MP_EMAIL);
    assert_eq!(sent.len(), 1, "exactly one digest");
    let digest = &sent[0];
    let text = digest.text();
    assert!(text.starts_with("Dear Alex Baker,"), "{text}");
    assert!(text.contains("Signatures: 2 new, 3 in all"), "{text}");
    assert!(text.contains("Letters to you: 1 new, 1 in all"), "{text}");
    assert!(text.contains(PAGE_URL), "{text}");
    for private in ["Priya", "Quentin", "Sam Writer", "Early", "example.com"] {
        assert!(!text.contains(private), "{private} is not in the digest");
    }
    let stop = regex::Regex::new(r"http://rally\.test(/digests/[A-Za-z0-9_-]+/stop)").unwrap();
    let stop_path = stop.captures(&text).unwrap_or_else(|| panic!("a stop link in:\n{text}"))[1].to_string();
    assert_eq!(header(digest, "List-Unsubscribe"), Some(format!("<http://rally.test{stop_path}>")));
    assert_eq!(header(digest, "List-Unsubscribe-Post").as_deref(), Some("List-Unsubscribe=One-Click"));
    assert!(digests(&app, NE_MP_EMAIL).is_empty() && digests(&app, QUIET_MP_EMAIL).is_empty(), "no activity, no digest");

    // Another week with nothing new: nothing.
    app.advance_clock(to_next_monday(&app));
    settle().await;
    assert_eq!(digests(&app, MP_EMAIL).len(), 1, "a quiet week sends nothing");

    // The stop link: opening it stops nothing; a one-click POST (as mail programs send) does.
    let res = app.get(&stop_path).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!(r#"<form method="post" action="{stop_path}">"#)), "{html}");
    for _ in 0..2 {
        let res = app
            .client
            .post(app.url(&stop_path))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "and again, harmlessly");
        assert!(res.text().await.unwrap().contains("Weekly emails stopped"));
    }
    assert!(app.get(&stop_path).await.text().await.unwrap().contains("Weekly emails stopped"));
    assert_eq!(app.get("/digests/not-a-token/stop").await.status(), 404);
    assert_eq!(app.post_form("/digests/not-a-token/stop", &[]).await.status(), 404);

    // Activity in both seats: Newcastle's MP gets a digest, Aldershot's office (stopped) does not.
    signs_in(&app, "Rita Later", "rita@example.com", PC, ONS).await;
    signs_in(&app, "Nell North", "nell@example.com", NE_PC, NE_ONS).await;
    app.advance_clock(to_next_monday(&app));
    app.eventually("the digest reaches Newcastle's MP", || async { !digests(&app, NE_MP_EMAIL).is_empty() }).await;
    settle().await;
    let ne = digests(&app, NE_MP_EMAIL);
    assert_eq!(ne.len(), 1);
    assert!(ne[0].text().contains("Signatures: 1 new, 1 in all") && ne[0].text().contains("Letters to you: 0 new, 0 in all"), "{}", ne[0].text());
    assert_eq!(digests(&app, MP_EMAIL).len(), 1, "a stopped office gets no more");
    assert!(digests(&app, QUIET_MP_EMAIL).is_empty(), "a constituency with no activity gets none");
});

/// `href="…"` of the first link starting with `prefix`, with HTML's `&amp;` undone.
fn href(html: &str, prefix: &str) -> String {
    let start = html.find(&format!(r#"href="{prefix}"#)).unwrap_or_else(|| panic!("a link to {prefix}")) + 6;
    let end = start + html[start..].find('"').unwrap();
    html[start..end].replace("&amp;", "&")
}

fn query(link: &str) -> Vec<(String, String)> {
    url::Url::parse(link).unwrap().query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

on_both_backends!(the_campaign_page_has_plain_share_links, |app: TestApp| async move {
    let c: Value = app.get_json(&format!("/api/campaigns/{SLUG}")).await;
    let title = c["title"].as_str().unwrap();
    let address = format!("http://rally.test/campaigns/{SLUG}");
    let html = app.get(&format!("/campaigns/{SLUG}")).await.text().await.unwrap();

    let text = format!("Sign the petition: {title}");
    let with_address = format!("{text} {address}");
    assert_eq!(query(&href(&html, "https://wa.me/")), vec![("text".into(), with_address.clone())]);
    assert_eq!(query(&href(&html, "https://bsky.app/intent/compose")), vec![("text".into(), with_address.clone())]);
    assert_eq!(query(&href(&html, "https://x.com/intent/post")), vec![("text".into(), text.clone()), ("url".into(), address.clone())]);
    assert_eq!(query(&href(&html, "https://www.facebook.com/sharer/sharer.php")), vec![("u".into(), address.clone())]);
    let mail = href(&html, "mailto:");
    let mail = query(&mail.replacen("mailto:", "mailto:x@example.com", 1));
    assert_eq!(mail[0], ("subject".into(), title.to_string()));
    assert!(mail[1].0 == "body" && mail[1].1.ends_with(&format!("{text}\r\n{address}")), "{mail:?}");
    // Encoded strictly: spaces as %20 (not +), and nothing that could end the attribute.
    let wa = href(&html, "https://wa.me/");
    assert!(wa.contains("Sign%20the%20petition%3A%20") && !wa.contains(' ') && !wa.contains('+'), "{wa}");
    for site in ["https://wa.me/", "https://bsky.app/", "https://x.com/", "https://www.facebook.com/", "mailto:"] {
        let at = html.find(&format!(r#"href="{site}"#)).unwrap();
        let tag = &html[html[..at].rfind('<').unwrap()..at + html[at..].find('>').unwrap()];
        assert!(tag.contains(r#"rel="noopener noreferrer""#), "{tag}");
    }
    // The address to copy, and nothing loaded from elsewhere.
    let input = &html[html.find(r#"id="share-address""#).expect("the address to copy")..];
    let input = &input[..input.find('>').unwrap()].replace("&#x2F;", "/");
    assert!(input.contains(&format!(r#"value="{address}""#)), "{input}");
    assert!(!html.contains(r#"src="http"#) && !html.contains("<iframe"), "no third-party content");
    // What was there before stays.
    assert!(html.contains(r#"property="og:title""#) && html.contains("Find your constituency"));
});
