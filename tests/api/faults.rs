//! Outages around Rally: a mail server that refuses for a while or goes away, a mail server that
//! refuses for good, and a postcodes.io that hangs or fails. Nothing a supporter was told is
//! happening may be lost, and nobody waits on a service that is down.
use std::collections::HashSet;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use rally::db::schema::outbox;
use serde_json::{json, Value};
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;
use crate::on_both_backends;

/// (kind, state, attempts, last_error) of every outbox row, oldest first.
async fn outbox_rows(app: &TestApp) -> Vec<(String, String, i64, Option<String>)> {
    app.db()
        .read(|c| {
            Ok(outbox::table
                .order(outbox::id.asc())
                .select((outbox::kind, outbox::state, outbox::attempts, outbox::last_error))
                .load::<(String, String, i64, Option<String>)>(c)?)
        })
        .await
        .unwrap()
}

/// Signs 20 people while the mail server is down (as `outage` puts it), checks nothing is lost
/// or sent, brings the server back, and checks each gets exactly one confirmation.
async fn twenty_signers_through_an_outage(app: &TestApp, outage: fn(&TestApp), error_mentions: Option<&str>) {
    outage(app);
    let people: Vec<String> = (0..20).map(|i| format!("outage{i}@example.com")).collect();
    for email in &people {
        let start = Instant::now();
        let res = app.sign(&signer("Patient Person", email, "NE1 4ST")).await;
        assert_eq!(res.status(), 202, "{email}");
        assert!(start.elapsed() < Duration::from_secs(2), "signing waited on the mail server: {:?}", start.elapsed());
    }

    // Each confirmation was tried, failed, and is queued again with the reason.
    wait_until("every confirmation tried once and queued again", Duration::from_secs(20), || async {
        let rows = outbox_rows(app).await;
        rows.len() == 20 && rows.iter().all(|(_, state, attempts, error)| state == "pending" && *attempts >= 1 && error.is_some())
    })
    .await;
    assert!(app.emails().is_empty(), "nothing was delivered while the server was down");
    let rows = outbox_rows(app).await;
    assert!(rows.iter().all(|(kind, ..)| *kind == rows[0].0), "one kind of email: {rows:?}");
    if let Some(code) = error_mentions {
        assert!(rows.iter().all(|(.., e)| e.as_deref().is_some_and(|e| e.contains(code))), "the server's answer is kept as the reason: {rows:?}");
    }

    // The server comes back: each signer gets exactly one confirmation (backoff 5 s·2^(n-1) ±25 %).
    app.smtp_accept();
    wait_until("every signer's confirmation delivered", Duration::from_secs(40), || async {
        let got = app.smtp.deliveries_by_recipient();
        people.iter().all(|p| got.contains_key(p))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got = app.smtp.deliveries_by_recipient();
    for p in &people {
        assert_eq!(got.get(p), Some(&1), "{p} gets exactly one confirmation");
        assert!(app.emails_to(p)[0].text().contains("/confirm/"), "{p}: the email is the confirmation");
    }
    wait_until("every row marked sent", Duration::from_secs(10), || async { outbox_rows(app).await.iter().all(|(_, s, ..)| s == "sent") }).await;
}

on_both_backends!(a_mail_server_refusing_for_a_while_delays_confirmations_but_loses_none, |app: TestApp| async move {
    twenty_signers_through_an_outage(&app, TestApp::smtp_refuse_temporarily, Some("451")).await;
});

on_both_backends!(an_unreachable_mail_server_delays_confirmations_but_loses_none, |app: TestApp| async move {
    twenty_signers_through_an_outage(&app, TestApp::smtp_go_away, None).await;
});

// ---------------------------------------------------------------------------------------------
// Letters
// ---------------------------------------------------------------------------------------------

/// Three constituencies, each with its MP, and postcodes.io knowing a postcode in each.
const SEATS: [(&str, &str, &str, i64, &str, &str); 3] = [
    ("GU11 1AA", "E14001063", "Aldershot", 5173, "Alex Baker", "alex.baker.mp@parliament.uk"),
    ("NE1 4ST", "E14001402", "Newcastle upon Tyne Central and West", 4128, "Chi Onwurah", "chi.onwurah.mp@parliament.uk"),
    ("SW1A 1AA", "E14001172", "Cities of London and Westminster", 5220, "Rachel Blake", "rachel.blake.mp@parliament.uk"),
];

async fn with_mps(app: &TestApp) {
    for (pc, ons, seat, id, name, email) in SEATS {
        app.postcode_exists(pc, ons, seat).await;
        app.sql(&format!(
            "INSERT INTO constituencies (ons_code, name, mp_checked_at) VALUES ('{ons}', '{seat}', 0);
             INSERT INTO members (id, ons_code, name, party, email, updated_at) VALUES ({id}, '{ons}', '{name}', 'Labour', '{email}', 0);"
        ))
        .await;
    }
}

fn letter(target: &str, email: &str, postcode: &str, edit: &str) -> Value {
    json!({
        "target": target, "name": "Sam Writer", "email": email, "postcode": postcode,
        "address": {"line1": "1 High Street", "town": "Somewhere"},
        "personal_edit": edit,
    })
}

on_both_backends!(letters_confirmed_during_a_mail_outage_reach_each_office_once_afterwards, |app: TestApp| async move {
    with_mps(&app).await;
    // Two writers per constituency write to their MP; their confirmation links arrive.
    let mut writers = Vec::new();
    for (pc, _, _, _, _, mp) in SEATS {
        for w in 0..2 {
            let email = format!("writer{w}.{}@example.com", &pc[..2].to_ascii_lowercase());
            let res = app.post_json(&format!("/api/campaigns/{SLUG}/letters"), &letter("mp", &email, pc, &format!("Written by {email}."))).await;
            assert_eq!(res.status(), 202, "{email}");
            writers.push((email, mp));
        }
    }
    let mut tokens = Vec::new();
    for (email, _) in &writers {
        tokens.push(app.wait_for_emails(email, 1).await[0].confirm_token());
    }

    // The mail server starts refusing; the writers confirm: every letter is accepted and queued.
    app.smtp_refuse_temporarily();
    for token in &tokens {
        let res = app.post_json("/api/confirmations", &json!({"token": token})).await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.json::<Value>().await.unwrap()["kind"], "letter");
    }
    wait_until("every delivery tried and queued again", Duration::from_secs(20), || async {
        let rows = outbox_rows(&app).await;
        let deliveries: Vec<_> = rows.iter().filter(|(k, ..)| k == "letter_delivery").collect();
        deliveries.len() == writers.len() && deliveries.iter().all(|(_, s, a, e)| s == "pending" && *a >= 1 && e.is_some())
    })
    .await;
    for (_, mp) in &writers {
        assert!(app.emails_to(mp).is_empty(), "nothing reached {mp} during the outage");
    }

    // It accepts again: each office gets each of its letters exactly once, and each writer a copy.
    app.smtp_accept();
    wait_until("every letter delivered", Duration::from_secs(40), || async {
        SEATS.iter().all(|(.., mp)| app.emails_to(mp).len() >= 2)
    })
    .await;
    for (email, _) in &writers {
        app.wait_for_emails_within(email, 2, Duration::from_secs(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (_, _, _, _, _, mp) in SEATS {
        let delivered = app.emails_to(mp);
        assert_eq!(delivered.len(), 2, "{mp} gets each of its two letters once");
        let from: HashSet<String> = delivered
            .iter()
            .map(|m| m.parsed().reply_to().and_then(|r| r.first()).and_then(|a| a.address()).unwrap_or_default().to_string())
            .collect();
        let expected: HashSet<String> = writers.iter().filter(|(_, to)| *to == mp).map(|(w, _)| w.clone()).collect();
        assert_eq!(from, expected, "{mp}: one letter from each of its writers");
    }
    for (email, _) in &writers {
        let mails = app.emails_to(email);
        assert_eq!(mails.len(), 2, "{email}: the confirmation link, then one copy");
        assert!(mails[1].subject().contains("has been sent"), "{}", mails[1].subject());
    }
});

on_both_backends!(a_letter_refused_for_good_is_shown_to_staff_with_the_reason_and_not_retried, |app: TestApp| async move {
    // (letters.rs checks the letter's state, the stored 550 and the writer's copy; this is the staff side.)
    let (pc, ons, seat, ..) = SEATS[0];
    app.postcode_exists(pc, ons, seat).await;
    app.sql(&format!(
        "INSERT INTO constituencies (ons_code, name, mp_checked_at) VALUES ('{ons}', '{seat}', 0);
         INSERT INTO members (id, ons_code, name, party, email, updated_at) VALUES (1, '{ons}', 'Gone Away', 'Independent', 'refuse.gone@parliament.uk', 0);"
    ))
    .await;
    let writer = "bounced.writer@example.com";
    assert_eq!(app.post_json(&format!("/api/campaigns/{SLUG}/letters"), &letter("mp", writer, pc, "Please read this.")).await.status(), 202);
    let token = app.wait_for_emails(writer, 1).await[0].confirm_token();
    assert_eq!(app.post_json("/api/confirmations", &json!({"token": token})).await.status(), 200);
    let mails = app.wait_for_emails(writer, 2).await;
    assert!(mails[1].subject().contains("could not be delivered"), "{}", mails[1].subject());

    let staff = app.signed_in("admin").await;
    let failed = staff.page("/admin/outbox?state=failed").await;
    assert!(failed.contains("Letter to its target"), "the refused delivery is listed under failed:\n{failed}");
    assert!(failed.contains("550") && failed.contains("Mailbox unavailable"), "with the server's reason:\n{failed}");
    let all = staff.page("/admin/outbox").await;
    assert!(all.contains("550"), "and on the outbox's first page");

    // A refusal for good is not retried: one attempt, one note to the writer, however long we wait.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let deliveries: Vec<_> = outbox_rows(&app).await.into_iter().filter(|(k, ..)| k == "letter_delivery").collect();
    assert_eq!(deliveries.len(), 1);
    assert_eq!((deliveries[0].1.as_str(), deliveries[0].2), ("failed", 1), "{deliveries:?}");
    assert_eq!(app.emails_to(writer).len(), 2, "the writer is told once");
});

// ---------------------------------------------------------------------------------------------
// postcodes.io down
// ---------------------------------------------------------------------------------------------

// (constituencies.rs covers signing while postcodes.io hangs or fails, the backfill afterwards,
// and a cached postcode answering while postcodes.io answers 503.)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_postcode_service_gets_a_prompt_503_from_the_lookup_and_the_letter_tool() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    Mock::given(method("GET"))
        .and(path_regex("^/postcodes/.*"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(10)).set_body_json(postcodes_io_result("NE1 4ST", "E14001402", "Newcastle upon Tyne Central and West")))
        .mount(&app.postcodes)
        .await;
    let start = Instant::now();
    let res = app.get("/api/postcodes/NE1%204ST").await;
    let took = start.elapsed();
    assert_eq!(res.status(), 503);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "lookup_unavailable");
    assert!(took < Duration::from_secs(6), "the lookup waited {took:?} for a service that hangs 10 s");

    let start = Instant::now();
    let res = app.post_json(&format!("/api/campaigns/{SLUG}/letters/preview"), &letter("justice-secretary", "a@example.com", "SW1A 1AA", "")).await;
    let took = start.elapsed();
    assert_eq!(res.status(), 503);
    assert_eq!(res.json::<Value>().await.unwrap()["error"], "lookup_unavailable");
    assert!(took < Duration::from_secs(6), "the letter tool waited {took:?}");
}

/// Distinct postcodes nobody has looked up yet.
fn fresh_postcodes(n: usize, first: usize) -> Vec<String> {
    (first..first + n).map(|i| format!("NE{i} 1AA")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_three_failed_lookups_the_postcode_circuit_opens_and_answers_fast() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.insert("RALLY_RATE_LIMITS".into(), "off".into());
    })
    .await
    .unwrap();
    // One postcode is looked up while postcodes.io is well, and so cached.
    app.postcode_exists("SW1A 1AA", "E14001172", "Cities of London and Westminster").await;
    assert_eq!(app.get("/api/postcodes/SW1A1AA").await.status(), 200);

    // postcodes.io fails: three lookups fail, each having asked it.
    app.postcodes.reset().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(500)).mount(&app.postcodes).await;
    for pc in fresh_postcodes(3, 1) {
        let res = app.get(&format!("/api/postcodes/{}", pc.replace(' ', "%20"))).await;
        assert_eq!(res.status(), 503, "{pc}");
    }
    let asked = app.postcodes.received_requests().await.unwrap().len();
    assert!(asked >= 3, "the first failures did reach postcodes.io ({asked} requests)");

    // Open: further lookups answer 503 at once without asking postcodes.io.
    for pc in fresh_postcodes(5, 4) {
        let start = Instant::now();
        let res = app.get(&format!("/api/postcodes/{}", pc.replace(' ', "%20"))).await;
        let took = start.elapsed();
        assert_eq!(res.status(), 503, "{pc}");
        assert_eq!(res.json::<Value>().await.unwrap()["error"], "lookup_unavailable");
        assert!(took < Duration::from_secs(1), "{pc}: {took:?} with the circuit open");
    }
    let asked_since = app.postcodes.received_requests().await.unwrap().len() - asked;
    assert_eq!(asked_since, 0, "with the circuit open postcodes.io is left alone ({asked_since} more requests)");

    // A cached postcode still answers, and signing still works, while it is open.
    let cached = app.get("/api/postcodes/SW1A%201AA").await;
    assert_eq!(cached.status(), 200);
    assert_eq!(cached.json::<Value>().await.unwrap()["constituency"]["ons_code"], "E14001172");
    let start = Instant::now();
    assert_eq!(app.sign(&signer("Open Olive", "olive@example.com", "NE9 1AA")).await.status(), 202);
    assert!(start.elapsed() < Duration::from_secs(1));
}
