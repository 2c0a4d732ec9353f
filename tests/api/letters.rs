use std::time::Duration;

use mail_parser::MimeHeaders;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_backends;

const PC: &str = "GU11 1AA";
const ONS: &str = "E14001063";
const SEAT: &str = "Aldershot";
const MP_EMAIL: &str = "alex.baker.mp@parliament.uk";
const JS_EMAIL: &str = "david.lammy.mp@parliament.uk";

/// A constituency with a known MP, and postcodes.io knowing the writer's postcode.
async fn with_mp(app: &TestApp) {
    app.postcode_exists(PC, ONS, SEAT).await;
    app.sql(&format!(
        "INSERT INTO constituencies (ons_code, name, mp_checked_at) VALUES ('{ONS}', '{SEAT}', 0);
         INSERT INTO members (id, ons_code, name, party, email, updated_at) VALUES (5173, '{ONS}', 'Alex Baker', 'Labour', '{MP_EMAIL}', 0);"
    ))
    .await;
}

fn letter(target: &str, email: &str, edit: &str) -> Value {
    json!({
        "target": target, "name": "Sam Writer", "email": email, "postcode": "gu111aa",
        "address": {"line1": "1 High Street", "line2": "Flat 2", "town": "Aldershot"},
        "personal_edit": edit,
    })
}

async fn confirm_latest(app: &TestApp, to: &str, n: usize) {
    let mails = app.wait_for_emails(to, n).await;
    let token = mails[n - 1].confirm_token();
    let res = app.post_json("/api/confirmations", &json!({"token": token})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["kind"], "letter");
}

const EDIT: &str = "As someone who reported, I know this matters.\n{{ target.name }} {% if true %}not a tag{% endif %} {# nor this #}";

on_both_backends!(a_letter_to_the_mp_is_confirmed_then_delivered_once_as_an_office_can_act_on, |app: TestApp| async move {
    with_mp(&app).await;
    let preview = app.post_json(&format!("/api/campaigns/{SLUG}/letters/preview"), &letter("mp", "sam@example.com", EDIT)).await;
    assert_eq!(preview.status(), 200);
    let p: Value = preview.json().await.unwrap();
    assert_eq!(p["to"], json!({"name": "Alex Baker", "email": MP_EMAIL}));
    let subject = p["subject"].as_str().unwrap();
    assert!(subject.contains("Sam Writer") && subject.contains("constituent") && subject.contains(SEAT), "{subject}");
    let body = p["body"].as_str().unwrap();
    assert!(body.starts_with("Dear Alex Baker,"), "{body}");
    assert!(body.contains(EDIT), "personal edit verbatim:\n{body}");
    assert!(body.trim_end().ends_with("Sam Writer\n1 High Street\nFlat 2\nAldershot\nGU11 1AA"), "{body}");
    assert_eq!(p["personalised"], true);

    let res = app.post_json(&format!("/api/campaigns/{SLUG}/letters"), &letter("mp", "sam@example.com", EDIT)).await;
    assert_eq!(res.status(), 202);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": "pending_confirmation"}));
    let confirm_mail = app.wait_for_emails("sam@example.com", 1).await;
    assert!(confirm_mail[0].text().contains(EDIT), "the writer sees the letter before it goes");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.emails_to(MP_EMAIL).is_empty(), "nothing reaches the MP before confirmation");

    confirm_latest(&app, "sam@example.com", 1).await;
    let delivered = app.wait_for_emails(MP_EMAIL, 1).await;
    let m = delivered[0].parsed();
    let from = m.from().unwrap().first().unwrap();
    assert_eq!(from.name(), Some("Sam Writer"));
    assert_eq!(from.address(), Some("rally@localhost"), "From is the platform's address");
    let reply_to = m.reply_to().unwrap().first().unwrap();
    assert_eq!(reply_to.address(), Some("sam@example.com"));
    assert_eq!(m.to().unwrap().first().unwrap().address(), Some(MP_EMAIL));
    assert_eq!(m.subject(), Some(subject));
    assert!(m.message_id().is_some(), "Message-ID");
    assert!(m.date().is_some(), "Date");
    assert!(m.content_type().is_some_and(|ct| ct.ctype() == "text" && ct.subtype() == Some("plain")));
    assert_eq!(delivered[0].text().trim_end(), body.trim_end());

    // The writer gets a copy of what was sent.
    let mails = app.wait_for_emails("sam@example.com", 2).await;
    assert!(mails[1].subject().contains("has been sent"));
    assert!(mails[1].text().contains(EDIT));

    // A second click, and a second letter to the same MP, change nothing.
    let token = mails[0].confirm_token();
    assert_eq!(app.post_json("/api/confirmations", &json!({"token": token})).await.status(), 200);
    let again = app.post_json(&format!("/api/campaigns/{SLUG}/letters"), &letter("mp", "SAM@example.com", "other words")).await;
    assert_eq!(again.status(), 409);
    assert_eq!(again.json::<Value>().await.unwrap()["error"], "already_written");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.emails_to(MP_EMAIL).len(), 1, "exactly one delivery");
});

on_both_backends!(the_letter_tool_pages_write_to_the_justice_secretary, |app: TestApp| async move {
    with_mp(&app).await;
    let page = app.get(&format!("/campaigns/{SLUG}/write?postcode=gu11+1aa")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Your MP is <strong>Alex Baker</strong> (Labour)"), "{html}");
    assert!(html.contains(r#"value="justice-secretary""#));

    let form = [
        ("postcode", "GU11 1AA"), ("target", "justice-secretary"), ("name", "Pat Page"), ("email", "pat@example.com"),
        ("address_line1", "2 Low Road"), ("address_line2", ""), ("address_town", "Aldershot"), ("personal_edit", ""),
    ];
    let preview = app.post_form(&format!("/campaigns/{SLUG}/write/preview"), &form).await;
    assert_eq!(preview.status(), 200);
    let html = preview.text().await.unwrap();
    assert!(html.contains("Dear Lord Chancellor,"));
    assert!(html.contains("word for word"), "an untouched template gets a nudge, not a wall");
    assert!(html.contains("mailto:david.lammy.mp%40parliament.uk?subject=") || html.contains("mailto:david.lammy.mp@parliament.uk?subject="));
    assert!(html.contains(r#"action="/campaigns/legal-advocacy/write/send""#));

    let sent = app.post_form(&format!("/campaigns/{SLUG}/write/send"), &form).await;
    assert_eq!(sent.status(), 303);
    assert_eq!(sent.headers()["location"], format!("/campaigns/{SLUG}/write/check-email"));
    let token = app.wait_for_emails("pat@example.com", 1).await[0].confirm_token();
    let button = app.get(&format!("/confirm/{token}")).await.text().await.unwrap();
    assert!(button.contains("Send my letter"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(app.emails_to(JS_EMAIL).is_empty(), "opening the link sends nothing");
    let done = app.client.post(app.url(&format!("/confirm/{token}"))).send().await.unwrap();
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("your letter is on its way"));
    let delivered = app.wait_for_emails(JS_EMAIL, 1).await;
    assert!(delivered[0].text().starts_with("Dear Lord Chancellor,"));
    assert!(delivered[0].text().trim_end().ends_with("Pat Page\n2 Low Road\nAldershot\nGU11 1AA"));
});

on_both_backends!(bad_letters_name_the_field_and_queue_nothing, |app: TestApp| async move {
    with_mp(&app).await;
    let url = format!("/api/campaigns/{SLUG}/letters");
    let cases: Vec<(Value, &str)> = vec![
        ({ let mut l = letter("mp", "a@example.com", ""); l["name"] = json!("Eve\r\nBcc: victim@example.com"); l }, "name"),
        ({ let mut l = letter("mp", "a@example.com", ""); l["address"]["line1"] = json!("1 High St\r\nBcc: x@example.com"); l }, "address.line1"),
        ({ let mut l = letter("mp", "a@example.com", ""); l["address"]["town"] = json!(""); l }, "address.town"),
        ({ let mut l = letter("mp", "a@example.com", ""); l["address"] = json!("1 High St"); l }, "address"),
        (letter("mp", "not-an-email", ""), "email"),
        (letter("mp", "a@example.com", &"x".repeat(2001)), "personal_edit"),
        (letter("the-king", "a@example.com", ""), "target"),
        ({ let mut l = letter("mp", "a@example.com", ""); l["postcode"] = json!("nope"); l }, "postcode"),
    ];
    for (body, field) in cases {
        let res = app.post_json(&url, &body).await;
        assert_eq!(res.status(), 422, "{field}");
        let b: Value = res.json().await.unwrap();
        assert!(b["fields"][field].is_array(), "{field} named in {b}");
    }
    let preview = app.post_json(&format!("{url}/preview"), &letter("mp", "a@example.com", &"x".repeat(2001))).await;
    assert_eq!(preview.status(), 422);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(app.emails().is_empty(), "nothing queued");

    // The page shows the same message next to the field.
    let form = [("postcode", "GU11 1AA"), ("target", "mp"), ("name", "Eve"), ("email", "eve@example.com"), ("address_line1", ""), ("address_town", "Aldershot")];
    let res = app.post_form(&format!("/campaigns/{SLUG}/write/preview"), &form).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"id="address_line1-error""#) && html.contains("Enter the first line of your address."));
});

on_both_backends!(a_vacant_seat_or_an_mp_without_email_is_said_plainly, |app: TestApp| async move {
    app.postcode_exists(PC, ONS, SEAT).await;
    app.sql(&format!("INSERT INTO constituencies (ons_code, name, mp_checked_at) VALUES ('{ONS}', '{SEAT}', {});", i64::MAX / 2)).await;
    let res = app.post_json(&format!("/api/campaigns/{SLUG}/letters/preview"), &letter("mp", "a@example.com", "")).await;
    assert_eq!(res.status(), 422);
    assert!(res.json::<Value>().await.unwrap()["fields"]["target"][0].as_str().unwrap().contains("vacant"));
    let html = app.get(&format!("/campaigns/{SLUG}/write?postcode={PC}")).await.text().await.unwrap();
    assert!(html.contains("the seat is vacant"));

    app.sql(&format!("INSERT INTO members (id, ons_code, name, party, email, updated_at) VALUES (99, '{ONS}', 'No Mail', 'Independent', NULL, 0);")).await;
    let res = app.post_json(&format!("/api/campaigns/{SLUG}/letters"), &letter("mp", "a@example.com", "")).await;
    assert_eq!(res.status(), 422);
    let msg = res.json::<Value>().await.unwrap()["fields"]["target"][0].as_str().unwrap().to_string();
    assert!(msg.contains("no public email") && msg.contains("https://members.parliament.uk/member/99/contact"), "{msg}");
    let html = app.get(&format!("/campaigns/{SLUG}/write?postcode={PC}")).await.text().await.unwrap().replace("&#x2F;", "/");
    assert!(html.contains(r#"href="https://members.parliament.uk/member/99/contact""#), "{html}");
    assert!(!html.contains(r#"value="mp""#), "no send option for an MP without email");
});

on_both_backends!(resubmitting_before_confirming_replaces_the_draft, |app: TestApp| async move {
    with_mp(&app).await;
    let url = format!("/api/campaigns/{SLUG}/letters");
    assert_eq!(app.post_json(&url, &letter("mp", "redo@example.com", "first draft")).await.status(), 202);
    app.wait_for_emails("redo@example.com", 1).await;
    assert_eq!(app.post_json(&url, &letter("mp", "redo@example.com", "second draft")).await.status(), 202);
    confirm_latest(&app, "redo@example.com", 2).await;
    let delivered = app.wait_for_emails(MP_EMAIL, 1).await;
    assert!(delivered[0].text().contains("second draft") && !delivered[0].text().contains("first draft"));
});

on_both_backends!(letters_need_the_postcode_service_and_say_so_when_it_is_down, |app: TestApp| async move {
    use wiremock::{matchers::method, Mock, ResponseTemplate};
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(503)).mount(&app.postcodes).await;
    let res = app.post_json(&format!("/api/campaigns/{SLUG}/letters/preview"), &letter("justice-secretary", "a@example.com", "")).await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "lookup_unavailable");
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_to_one_inbox_are_paced() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.insert("RALLY_DELIVERY_PACE".into(), "2".into());
    })
    .await
    .unwrap();
    with_mp(&app).await;
    for i in 0..4 {
        let who = format!("writer{i}@example.com");
        assert_eq!(app.post_json(&format!("/api/campaigns/{SLUG}/letters"), &letter("mp", &who, "")).await.status(), 202);
        confirm_latest(&app, &who, 1).await;
    }
    app.wait_for_emails(MP_EMAIL, 2).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.emails_to(MP_EMAIL).len(), 2, "two a minute to one inbox; the rest wait their turn");
    // The others are still queued, not failed.
    use diesel::prelude::*;
    use rally::db::schema::letters;
    let waiting: i64 = app.db().read(|c| Ok(letters::table.filter(letters::state.eq("confirmed")).count().get_result(c)?)).await.unwrap();
    assert_eq!(waiting, 2);
}

on_both_backends!(a_supporter_who_just_confirmed_in_this_browser_is_not_asked_twice, |app: TestApp| async move {
    with_mp(&app).await;
    let browser = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let sign = [("name", "Quick Quinn"), ("email", "quinn@example.com"), ("postcode", PC), ("consent", "on")];
    assert_eq!(browser.post(app.url(&format!("/campaigns/{SLUG}/sign"))).form(&sign).send().await.unwrap().status(), 303);
    let token = app.wait_for_emails("quinn@example.com", 1).await[0].confirm_token();
    let confirmed = browser.post(app.url(&format!("/confirm/{token}"))).send().await.unwrap();
    let cookie = confirmed.headers().get("set-cookie").expect("a cookie is set").to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains("quinn"), "the cookie is sealed: {cookie}");

    let letter_form = |email: &'static str| {
        [("postcode", PC), ("target", "mp"), ("name", "Quick Quinn"), ("email", email), ("address_line1", "3 Lane"), ("address_town", "Aldershot")]
    };
    let sent = browser.post(app.url(&format!("/campaigns/{SLUG}/write/send"))).form(&letter_form("quinn@example.com")).send().await.unwrap();
    assert_eq!(sent.status(), 303);
    assert_eq!(sent.headers()["location"], format!("/campaigns/{SLUG}/write/sent"));
    app.wait_for_emails(MP_EMAIL, 1).await;
    let to_quinn = app.wait_for_emails("quinn@example.com", 2).await;
    assert!(to_quinn[1].subject().contains("has been sent"), "a copy, not a second confirmation");

    // Another address in the same browser, or the same address elsewhere, still confirms by email.
    let other = browser.post(app.url(&format!("/campaigns/{SLUG}/write/send"))).form(&letter_form("someone@example.com")).send().await.unwrap();
    assert_eq!(other.headers()["location"], format!("/campaigns/{SLUG}/write/check-email"));
    let elsewhere = app.client.post(app.url(&format!("/campaigns/{SLUG}/write/send"))).form(&[("postcode", PC), ("target", "justice-secretary"), ("name", "Quick Quinn"), ("email", "quinn@example.com"), ("address_line1", "3 Lane"), ("address_town", "Aldershot")]).send().await.unwrap();
    assert_eq!(elsewhere.headers()["location"], format!("/campaigns/{SLUG}/write/check-email"));
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_is_dkim_signed_when_a_key_is_configured() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("dkim.key");
    std::fs::write(&key_file, base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())).unwrap();
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.insert("RALLY_DKIM_SELECTOR".into(), "rally2026".into());
        s.insert("RALLY_DKIM_KEY_FILE".into(), key_file.display().to_string());
        s.insert("RALLY_MAIL_FROM".into(), "Campaign <campaign@example.org>".into());
    })
    .await
    .unwrap();
    with_mp(&app).await;
    assert_eq!(app.post_json(&format!("/api/campaigns/{SLUG}/letters"), &letter("mp", "dk@example.com", "")).await.status(), 202);
    confirm_latest(&app, "dk@example.com", 1).await;
    let delivered = app.wait_for_emails(MP_EMAIL, 1).await;
    let raw = String::from_utf8_lossy(&delivered[0].raw).to_string();
    let sig = raw.lines().find(|l| l.starts_with("DKIM-Signature:")).unwrap_or_else(|| panic!("no DKIM-Signature in:\n{raw}"));
    assert!(sig.contains("a=ed25519-sha256") && sig.contains("d=example.org") && sig.contains("s=rally2026"), "{sig}");
}

on_both_backends!(a_refused_letter_comes_back_to_its_writer, |app: TestApp| async move {
    app.postcode_exists(PC, ONS, SEAT).await;
    app.sql(&format!(
        "INSERT INTO constituencies (ons_code, name, mp_checked_at) VALUES ('{ONS}', '{SEAT}', 0);
         INSERT INTO members (id, ons_code, name, party, email, updated_at) VALUES (1, '{ONS}', 'Gone Away', 'Independent', 'refuse.gone@parliament.uk', 0);"
    ))
    .await;
    assert_eq!(app.post_json(&format!("/api/campaigns/{SLUG}/letters"), &letter("mp", "bounce@example.com", "Words worth keeping.")).await.status(), 202);
    confirm_latest(&app, "bounce@example.com", 1).await;
    let mails = app.wait_for_emails("bounce@example.com", 2).await;
    assert!(mails[1].subject().contains("could not be delivered"), "{}", mails[1].subject());
    assert!(mails[1].text().contains("Words worth keeping."));
    use diesel::prelude::*;
    use rally::db::schema::{letters, outbox};
    let (state, errors): (Vec<String>, Vec<Option<String>>) = app
        .db()
        .read(|c| Ok((letters::table.select(letters::state).load(c)?, outbox::table.filter(outbox::kind.eq("letter_delivery")).select(outbox::last_error).load(c)?)))
        .await
        .unwrap();
    assert_eq!(state, vec!["failed".to_string()]);
    assert!(errors[0].as_deref().is_some_and(|e| e.contains("550")), "the reason is kept for staff: {errors:?}");
});
