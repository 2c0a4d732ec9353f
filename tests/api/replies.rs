//! "Did your MP reply?": the ask two weeks after delivery, one reminder a week later, the
//! one-click answer links (which a mail scanner's GET cannot answer), and the results per MP
//! and per party on the staff dashboard. The app's clock is moved rather than waited for.
use std::collections::HashMap;
use std::time::Duration;

use diesel::prelude::*;
use rally::db::schema::letters;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_backends;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a negative check waits for an email that must not come.
const QUIET: Duration = Duration::from_secs(2);

struct Seat {
    postcode: &'static str,
    ons: &'static str,
    name: &'static str,
    member_id: i64,
    mp: &'static str,
    party: Option<&'static str>,
    email: &'static str,
}

const ALDERSHOT: Seat =
    Seat { postcode: "GU11 1AA", ons: "E14001063", name: "Aldershot", member_id: 5173, mp: "Alex Baker", party: Some("Labour"), email: "alex.baker.mp@parliament.uk" };
const HARBOROUGH: Seat = Seat {
    postcode: "LE8 0AA",
    ons: "E14001266",
    name: "Harborough, Oadby and Wigston",
    member_id: 4679,
    mp: "Neil Obrien",
    party: Some("Conservative"),
    email: "neil.obrien.mp@parliament.uk",
};
/// A seat whose MP's party Rally does not know.
const NOWHERE: Seat = Seat { postcode: "TE1 1ST", ons: "E14009998", name: "Testbury", member_id: 9001, mp: "Pat Partyless", party: None, email: "pat.partyless.mp@parliament.uk" };

/// A constituency with its MP, and postcodes.io knowing a postcode in it.
async fn seat(app: &TestApp, s: &Seat) {
    app.postcode_exists(s.postcode, s.ons, s.name).await;
    let party = s.party.map(|p| format!("'{p}'")).unwrap_or_else(|| "NULL".into());
    app.sql(&format!(
        "INSERT INTO constituencies (ons_code, name, mp_checked_at) VALUES ('{}', '{}', 0);
         INSERT INTO members (id, ons_code, name, party, email, updated_at) VALUES ({}, '{}', '{}', {party}, '{}', 0);",
        s.ons, s.name, s.member_id, s.ons, s.mp, s.email
    ))
    .await;
}

fn letter(target: &str, name: &str, email: &str, postcode: &str) -> Value {
    json!({
        "target": target, "name": name, "email": email, "postcode": postcode,
        "address": {"line1": "1 High Street", "town": "Somewhere"},
        "personal_edit": "This matters to me.",
    })
}

/// Writes a letter, confirms it from the emailed link and waits for the copy that follows
/// delivery: the writer then has exactly two emails.
async fn write_and_deliver(app: &TestApp, target: &str, name: &str, email: &str, postcode: &str) {
    let res = app.post_json(&format!("/api/campaigns/{SLUG}/letters"), &letter(target, name, email, postcode)).await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
    let token = app.wait_for_emails(email, 1).await[0].confirm_token();
    assert_eq!(app.post_json("/api/confirmations", &json!({"token": token})).await.status(), 200);
    let mails = app.wait_for_emails(email, 2).await;
    assert!(mails[1].subject().contains("has been sent"), "{}", mails[1].subject());
}

/// Checks that `address` still has exactly `n` emails after a quiet moment.
async fn still(app: &TestApp, address: &str, n: usize, why: &str) {
    tokio::time::sleep(QUIET).await;
    assert_eq!(app.emails_to(address).len(), n, "{why}");
}

/// The answer links in a questionnaire email: answer → path (without the public URL).
fn answer_links(text: &str) -> HashMap<String, String> {
    let re = regex::Regex::new(r"http://rally\.test(/replies/[A-Za-z0-9_-]+\?answer=([a-z_]+))").unwrap();
    re.captures_iter(text).map(|c| (c[2].to_string(), c[1].to_string())).collect()
}

fn token_path(link: &str) -> String {
    link.split('?').next().unwrap().to_string()
}

async fn stored_reply(app: &TestApp, writer: &str) -> Option<String> {
    let writer = writer.to_string();
    app.db()
        .read(move |c| Ok(letters::table.filter(letters::writer_email.eq(writer)).filter(letters::target_key.eq("mp")).select(letters::reply).first::<Option<String>>(c)?))
        .await
        .unwrap()
}

async fn campaign_title(app: &TestApp) -> String {
    app.get_json(&format!("/api/campaigns/{SLUG}")).await["title"].as_str().unwrap().to_string()
}

on_both_backends!(the_ask_comes_after_two_weeks_and_one_reminder_a_week_later, |app: TestApp| async move {
    seat(&app, &ALDERSHOT).await;
    let writer = "sam@example.com";
    write_and_deliver(&app, "mp", "Sam Writer", writer, ALDERSHOT.postcode).await;

    app.advance_clock(13 * DAY);
    still(&app, writer, 2, "nothing after 13 days").await;

    app.advance_clock(DAY);
    let mails = app.wait_for_emails(writer, 3).await;
    let ask = &mails[2];
    assert_eq!(ask.envelope_to, vec![writer.to_string()]);
    assert!(ask.subject().contains("Did Alex Baker reply"), "{}", ask.subject());
    let text = ask.text();
    assert!(text.contains("Alex Baker") && text.contains(&campaign_title(&app).await), "{text}");
    let links = answer_links(&text);
    let mut answers: Vec<&str> = links.keys().map(String::as_str).collect();
    answers.sort();
    assert_eq!(answers, ["acknowledgement", "no_reply", "not_addressed", "replied"], "{text}");
    assert_eq!(links.values().map(|l| token_path(l)).collect::<std::collections::HashSet<_>>().len(), 1, "one token for the four links");
    assert!(text.contains("optional") && text.contains("once more"), "{text}");
    assert!(text.contains("http://rally.test/forget/"), "the forget link: {text}");
    still(&app, writer, 3, "exactly one ask").await;

    app.advance_clock(6 * DAY);
    still(&app, writer, 3, "no reminder 6 days after the ask").await;

    app.advance_clock(DAY);
    let mails = app.wait_for_emails(writer, 4).await;
    let reminder = &mails[3];
    assert!(reminder.subject().contains("Alex Baker"), "{}", reminder.subject());
    assert!(reminder.text().contains("last time"), "{}", reminder.text());
    assert_eq!(answer_links(&reminder.text()).len(), 4);
    assert!(reminder.text().contains("http://rally.test/forget/"));

    app.advance_clock(30 * DAY);
    still(&app, writer, 4, "never a second reminder").await;
    assert!(app.emails_to(ALDERSHOT.email).len() == 1, "the MP got the letter and nothing else");
});

on_both_backends!(answers_are_recorded_only_by_a_post_and_can_change, |app: TestApp| async move {
    seat(&app, &ALDERSHOT).await;
    let writer = "robin@example.com";
    write_and_deliver(&app, "mp", "Robin Writer", writer, ALDERSHOT.postcode).await;
    app.advance_clock(14 * DAY);
    let links = answer_links(&app.wait_for_emails(writer, 3).await[2].text());
    let page = token_path(&links["no_reply"]);

    // Opening a link (as a mail scanner does) shows the question and records nothing.
    let res = app.get(&links["no_reply"]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    assert!(html.contains("Alex Baker") && html.contains(ALDERSHOT.name) && html.contains(&campaign_title(&app).await), "{html}");
    assert!(html.contains(r#"id="quick-exit""#), "the quick exit");
    assert!(html.contains(r#"value="no_reply" checked"#), "the link's answer is chosen: {html}");
    assert!(!html.contains(r#"value="replied" checked"#));
    for a in ["replied", "not_addressed", "acknowledgement", "no_reply"] {
        assert!(html.contains(&format!(r#"<label for="answer-{a}">"#)), "a label for {a}");
    }
    assert!(html.contains(&format!(r#"action="{page}""#)));
    for link in links.values() {
        assert_eq!(app.get(link).await.status(), 200);
    }
    assert_eq!(stored_reply(&app, writer).await, None, "GET records nothing");

    // The page's button.
    let res = app.post_form(&page, &[("answer", "no_reply")]).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    assert!(html.contains("Thank you") && html.contains(&format!(r#"href="/campaigns/{SLUG}""#)), "{html}");
    assert_eq!(stored_reply(&app, writer).await.as_deref(), Some("no_reply"));

    // A reply came after all: a POST straight from the link (answer in the query) changes it.
    let res = app.client.post(app.url(&links["replied"])).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(stored_reply(&app, writer).await.as_deref(), Some("replied"));
    let html = app.get(&page).await.text().await.unwrap();
    assert!(html.contains(r#"value="replied" checked"#), "the page remembers the answer");

    // Nonsense is refused with the reason beside the field, and changes nothing.
    for form in [vec![("answer", "maybe")], vec![("answer", "")], vec![]] {
        let res = app.post_form(&page, &form).await;
        assert_eq!(res.status(), 422, "{form:?}");
        let html = res.text().await.unwrap();
        assert!(html.contains("field__error") && html.contains("Choose the answer that fits best"), "{html}");
        assert!(html.contains(r#"id="quick-exit""#));
    }
    let res = app.client.post(app.url(&format!("{page}?answer=sometimes"))).send().await.unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(stored_reply(&app, writer).await.as_deref(), Some("replied"));

    // Links that are not ours: the site's "not found" page.
    for bad in ["/replies/not-a-real-token?answer=replied", "/replies/x"] {
        let res = app.get(bad).await;
        assert_eq!(res.status(), 404);
        assert!(res.text().await.unwrap().contains(r#"id="quick-exit""#));
        assert_eq!(app.post_form(bad, &[("answer", "replied")]).await.status(), 404);
    }
    // Another kind of token (the forget link's) is not an answer link.
    let forget = regex::Regex::new(r"http://rally\.test/forget/([A-Za-z0-9_-]+)").unwrap();
    let text = app.emails_to(writer)[2].text();
    let forget_token = &forget.captures(&text).unwrap()[1];
    assert_eq!(app.post_form(&format!("/replies/{forget_token}"), &[("answer", "replied")]).await.status(), 404);

    // Answered: no reminder.
    app.advance_clock(8 * DAY);
    still(&app, writer, 3, "an answered letter gets no reminder").await;
});

on_both_backends!(a_forgotten_letter_takes_its_answer_links_with_it, |app: TestApp| async move {
    seat(&app, &ALDERSHOT).await;
    let first = "first@example.com";
    write_and_deliver(&app, "mp", "First Writer", first, ALDERSHOT.postcode).await;
    app.advance_clock(14 * DAY);
    let text = app.wait_for_emails(first, 3).await[2].text();
    let link = answer_links(&text)["replied"].clone();
    let forget = regex::Regex::new(r"http://rally\.test(/forget/[A-Za-z0-9_-]+)").unwrap();
    let forget_path = forget.captures(&text).unwrap()[1].to_string();
    assert_eq!(app.client.post(app.url(&forget_path)).send().await.unwrap().status(), 200);

    // On SQLite the next letter may be given the deleted letter's id: the old link must not
    // reach it.
    write_and_deliver(&app, "mp", "Second Writer", "second@example.com", ALDERSHOT.postcode).await;
    assert_eq!(app.get(&link).await.status(), 404);
    assert_eq!(app.client.post(app.url(&link)).send().await.unwrap().status(), 404);
    assert_eq!(stored_reply(&app, "second@example.com").await, None);
});

/// The cells of one results row, by column.
fn row(html: &str, attr: &str, key: &str) -> HashMap<String, String> {
    let re = regex::Regex::new(&format!(r#"<tr {attr}="{}">(.*?)</tr>"#, regex::escape(key))).unwrap();
    let row = re.captures(html).unwrap_or_else(|| panic!("no row {attr}={key}:\n{html}"))[1].to_string();
    let cell = regex::Regex::new(r#"data-col="([a-z_]+)">(.*?)</td>"#).unwrap();
    let mut cells: HashMap<String, String> = cell.captures_iter(&row).map(|c| (c[1].to_string(), c[2].to_string())).collect();
    cells.insert("row".into(), row);
    cells
}

fn assert_counts(cells: &HashMap<String, String>, expected: [(&str, &str); 8]) {
    for (col, want) in expected {
        let got = cells.get(col).unwrap_or_else(|| panic!("no {col} in {}", cells["row"]));
        assert!(got.starts_with(want), "{col}: expected {want}, got {got} in {}", cells["row"]);
    }
}

on_both_backends!(the_dashboard_shows_reply_rates_per_mp_and_per_party, |app: TestApp| async move {
    for s in [&ALDERSHOT, &HARBOROUGH, &NOWHERE] {
        seat(&app, s).await;
    }
    let writers = [
        ("a1@example.com", &ALDERSHOT, Some("replied")),
        ("a2@example.com", &ALDERSHOT, Some("not_addressed")),
        ("a3@example.com", &ALDERSHOT, Some("no_reply")),
        ("h1@example.com", &HARBOROUGH, Some("acknowledgement")),
        ("h2@example.com", &HARBOROUGH, None),
        ("n1@example.com", &NOWHERE, None),
    ];
    for (email, s, _) in &writers {
        write_and_deliver(&app, "mp", "Kim Writer", email, s.postcode).await;
    }
    // A letter to a fixed target is not asked about.
    write_and_deliver(&app, "justice-secretary", "Jo Writer", "jo@example.com", ALDERSHOT.postcode).await;

    let b = app.signed_in("editor").await;
    let path = format!("/admin/campaigns/{SLUG}/dashboard");
    let html = b.page(&path).await;
    assert!(html.contains("Did MPs reply?"));
    assert!(html.contains(&format!(r#"href="/admin/campaigns/{SLUG}/updates">Updates to signers</a>"#)));
    assert_counts(&row(&html, "data-mp", "Alex Baker"), [("delivered", "3"), ("asked", "0"), ("answered", "0"), ("replied", "0"), ("not_addressed", "0"), ("acknowledgement", "0"), ("no_reply", "0"), ("reply_rate", "–")]);

    app.advance_clock(14 * DAY);
    for (email, _, answer) in &writers {
        let links = answer_links(&app.wait_for_emails(email, 3).await[2].text());
        if let Some(answer) = answer {
            let res = app.post_form(&token_path(&links[*answer]), &[("answer", answer)]).await;
            assert_eq!(res.status(), 200);
        }
    }
    still(&app, "jo@example.com", 2, "no questionnaire about a letter to a fixed target").await;

    let html = b.page(&path).await;
    let alex = row(&html, "data-mp", "Alex Baker");
    assert!(alex["row"].contains(ALDERSHOT.name) && alex["row"].contains("Labour"), "{}", alex["row"]);
    assert_counts(&alex, [("delivered", "3"), ("asked", "3"), ("answered", "3"), ("replied", "1"), ("not_addressed", "1"), ("acknowledgement", "0"), ("no_reply", "1"), ("reply_rate", "67%")]);
    let neil = row(&html, "data-mp", "Neil Obrien");
    assert!(neil["row"].contains("Harborough, Oadby and Wigston") && neil["row"].contains("Conservative"));
    assert_counts(&neil, [("delivered", "2"), ("asked", "2"), ("answered", "1"), ("replied", "0"), ("not_addressed", "0"), ("acknowledgement", "1"), ("no_reply", "0"), ("reply_rate", "0%")]);
    let pat = row(&html, "data-mp", "Pat Partyless");
    assert!(pat["row"].contains("not known"), "a party Rally does not know: {}", pat["row"]);
    assert_counts(&pat, [("delivered", "1"), ("asked", "1"), ("answered", "0"), ("replied", "0"), ("not_addressed", "0"), ("acknowledgement", "0"), ("no_reply", "0"), ("reply_rate", "–")]);
    assert!(!html.contains(r#"data-mp="David Lammy""#), "fixed targets are not MPs");
    // Most letters first.
    let at = |needle: &str| html.find(needle).unwrap();
    assert!(at(r#"data-mp="Alex Baker""#) < at(r#"data-mp="Neil Obrien""#) && at(r#"data-mp="Neil Obrien""#) < at(r#"data-mp="Pat Partyless""#));

    assert_counts(&row(&html, "data-party", "Labour"), [("delivered", "3"), ("asked", "3"), ("answered", "3"), ("replied", "1"), ("not_addressed", "1"), ("acknowledgement", "0"), ("no_reply", "1"), ("reply_rate", "67%")]);
    assert_counts(&row(&html, "data-party", "Conservative"), [("delivered", "2"), ("asked", "2"), ("answered", "1"), ("replied", "0"), ("not_addressed", "0"), ("acknowledgement", "1"), ("no_reply", "0"), ("reply_rate", "0%")]);
    assert_counts(&row(&html, "data-party", "not known"), [("delivered", "1"), ("asked", "1"), ("answered", "0"), ("replied", "0"), ("not_addressed", "0"), ("acknowledgement", "0"), ("no_reply", "0"), ("reply_rate", "–")]);
    assert!(at(r#"data-party="Labour""#) < at(r#"data-party="Conservative""#) && at(r#"data-party="Conservative""#) < at(r#"data-party="not known""#));

    // One writer changes their answer: the rates follow.
    let links = answer_links(&app.emails_to("a3@example.com")[2].text());
    assert_eq!(app.post_form(&token_path(&links["replied"]), &[("answer", "replied")]).await.status(), 200);
    let html = b.page(&path).await;
    assert_counts(&row(&html, "data-mp", "Alex Baker"), [("delivered", "3"), ("asked", "3"), ("answered", "3"), ("replied", "2"), ("not_addressed", "1"), ("acknowledgement", "0"), ("no_reply", "0"), ("reply_rate", "100%")]);
});

on_both_backends!(letters_written_before_rally_first_asked_are_never_asked_about, |app: TestApp| async move {
    seat(&app, &ALDERSHOT).await;
    // A letter delivered fifteen days ago, written before this Rally ever asked the question
    // (its writer saw a privacy notice without it), beside one written since.
    let long_ago = rally::clock::now_ms() - 30 * 24 * 3_600_000;
    let sent = rally::clock::now_ms() - 15 * 24 * 3_600_000;
    app.sql(&format!(
        "INSERT INTO letters (campaign_id, target_key, target_name, target_email, ons_code, writer_name, writer_email, writer_email_key, \
         address_line1, town, postcode, subject, body, state, created_at, confirmed_at, sent_at) \
         SELECT id, 'mp', '{mp}', '{to}', '{ons}', 'Old Writer', 'old@example.com', 'old@example.com', '1 High Street', 'Aldershot', 'GU11 1AA', \
         'A letter', 'Dear MP', 'sent', {long_ago}, {sent}, {sent} FROM campaigns WHERE slug = '{SLUG}'",
        mp = ALDERSHOT.mp,
        to = ALDERSHOT.email,
        ons = ALDERSHOT.ons,
    ))
    .await;
    write_and_deliver(&app, "mp", "New Writer", "new@example.com", ALDERSHOT.postcode).await;
    app.advance_clock(14 * DAY);
    let asked = app.wait_for_emails("new@example.com", 3).await;
    assert!(asked[2].subject().contains("reply"), "{}", asked[2].subject());
    still(&app, "old@example.com", 0, "a letter from before the question existed is not asked about").await;
});
