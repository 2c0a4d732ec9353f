use std::time::{Duration, Instant};

use serde_json::json;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(confirmed_signatures_are_counted_by_constituency, |app: TestApp| async move {
    app.postcode_exists("NE1 4ST", "E14001402", "Newcastle upon Tyne Central and West").await;
    app.postcode_exists("SW1A 1AA", "E14001172", "Cities of London and Westminster").await;
    for (email, pc) in [("a@example.com", "NE1 4ST"), ("b@example.com", "ne14st"), ("c@example.com", "SW1A 1AA")] {
        assert_eq!(app.sign(&signer("Someone", email, pc)).await.status(), 202);
        app.confirm_from_email(email).await;
    }
    app.sign(&signer("Unconfirmed", "d@example.com", "SW1A 1AA")).await;
    app.eventually("all three placed", || async {
        let d = app.get_json(&format!("/api/campaigns/{SLUG}")).await;
        d["signatures_by_constituency"].as_array().unwrap().iter().map(|r| r["signature_count"].as_i64().unwrap()).sum::<i64>() == 3
    })
    .await;
    let d = app.get_json(&format!("/api/campaigns/{SLUG}")).await;
    assert_eq!(d["signature_count"], 3);
    let rows = d["signatures_by_constituency"].as_array().unwrap();
    assert_eq!(rows[0], json!({"ons_code": "E14001402", "name": "Newcastle upon Tyne Central and West", "mp": null, "signature_count": 2}));
    assert_eq!(rows[1]["ons_code"], "E14001172");
    assert_eq!(rows[1]["signature_count"], 1);
});

on_both_backends!(signing_never_waits_for_a_slow_or_dead_postcode_service, |app: TestApp| async move {
    // postcodes.io answers after 10 s: signing must not notice.
    Mock::given(method("GET"))
        .and(path_regex("^/postcodes/.*"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(10)).set_body_json(postcodes_io_result("NE1 4ST", "E14001402", "Newcastle upon Tyne Central and West")))
        .up_to_n_times(1)
        .mount(&app.postcodes)
        .await;
    let start = Instant::now();
    assert_eq!(app.sign(&signer("Slow Sam", "sam@example.com", "NE1 4ST")).await.status(), 202);
    assert!(start.elapsed() < Duration::from_secs(1), "answered in {:?}", start.elapsed());
    app.confirm_from_email("sam@example.com").await;
    assert_eq!(app.count().await, 1, "counted before its constituency is known");

    // Down with 500s, then back: the backfill fills the constituency in later.
    app.postcodes.reset().await;
    Mock::given(method("GET")).and(path_regex("^/postcodes/.*")).respond_with(ResponseTemplate::new(500)).mount(&app.postcodes).await;
    let start = Instant::now();
    assert_eq!(app.sign(&signer("Down Dora", "dora@example.com", "NE1 4ST")).await.status(), 202);
    assert!(start.elapsed() < Duration::from_secs(1));
    app.confirm_from_email("dora@example.com").await;
    app.postcodes.reset().await;
    app.postcode_exists("NE1 4ST", "E14001402", "Newcastle upon Tyne Central and West").await;
    app.postcode_exists("SW1A 1AA", "E14001172", "Cities of London and Westminster").await;
    app.sign(&signer("Wake Walter", "walter@example.com", "SW1A 1AA")).await; // wakes the backfill
    app.eventually("backfill placed both signatures", || async {
        let d = app.get_json(&format!("/api/campaigns/{SLUG}")).await;
        d["signatures_by_constituency"].as_array().unwrap().first().is_some_and(|r| r["signature_count"] == 2)
    })
    .await;
});

on_both_backends!(postcode_lookup_answers_per_contract, |app: TestApp| async move {
    app.postcode_exists("SW1A 1AA", "E14001172", "Cities of London and Westminster").await;
    Mock::given(method("GET"))
        .and(path_regex("^/postcodes/ZZ1%201ZZ$"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"status": 404, "error": "Postcode not found"})))
        .mount(&app.postcodes)
        .await;
    Mock::given(method("GET"))
        .and(path_regex("^/postcodes/E1%206AN$"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"status": 404, "error": "Postcode not found",
            "terminated": {"postcode": "E1 6AN", "year_terminated": 1996, "month_terminated": 6, "longitude": -0.07, "latitude": 51.52}})))
        .mount(&app.postcodes)
        .await;

    let ok = app.get_json("/api/postcodes/sw1a1aa").await;
    assert_eq!(ok["postcode"], "SW1A 1AA");
    assert_eq!(ok["constituency"], json!({"ons_code": "E14001172", "name": "Cities of London and Westminster"}));
    assert!(ok["mp"].is_null());

    let bad = app.get("/api/postcodes/hello").await;
    assert_eq!(bad.status(), 422);
    assert_eq!(bad.json::<serde_json::Value>().await.unwrap()["error"], "invalid_postcode");
    let missing = app.get("/api/postcodes/ZZ1%201ZZ").await;
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.json::<serde_json::Value>().await.unwrap()["error"], "postcode_not_found");
    let gone = app.get("/api/postcodes/E16AN").await;
    assert_eq!(gone.status(), 404);
    assert_eq!(gone.json::<serde_json::Value>().await.unwrap()["error"], "postcode_terminated");

    // postcodes.io goes down: cached postcodes keep answering, others get 503.
    app.postcodes.reset().await;
    Mock::given(method("GET")).respond_with(ResponseTemplate::new(503)).mount(&app.postcodes).await;
    assert_eq!(app.get("/api/postcodes/SW1A%201AA").await.status(), 200);
    let down = app.get("/api/postcodes/NE1%204ST").await;
    assert_eq!(down.status(), 503);
    assert_eq!(down.json::<serde_json::Value>().await.unwrap()["error"], "lookup_unavailable");
});

on_both_backends!(a_supporter_finds_their_constituency_and_browses_the_table, |app: TestApp| async move {
    app.postcode_exists("NE1 4ST", "E14001402", "Newcastle upon Tyne Central and West").await;
    app.postcode_exists("SW1A 1AA", "E14001172", "Cities of London and Westminster").await;
    for (email, pc) in [("a@example.com", "NE1 4ST"), ("b@example.com", "NE1 4ST"), ("c@example.com", "SW1A 1AA")] {
        assert_eq!(app.sign(&signer("Someone", email, pc)).await.status(), 202);
        app.confirm_from_email(email).await;
    }
    let page = format!("/campaigns/{SLUG}/constituencies");
    app.eventually("all three placed and shown", || async {
        let html = app.get(&page).await.text().await.unwrap();
        html.contains("Newcastle upon Tyne Central and West") && html.contains("Cities of London and Westminster")
    })
    .await;
    app.sql("INSERT INTO members (id, ons_code, name, party, email, updated_at) VALUES (4821, 'E14001402', 'Chi Onwurah', 'Labour', NULL, 1)").await;
    // The table shows each constituency's MP once the page's second-long cache has turned over.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // The campaign page offers the box; its answer names the count and the MP.
    assert!(app.get(&format!("/campaigns/{SLUG}")).await.text().await.unwrap().contains(&format!(r#"action="/campaigns/{SLUG}/constituencies""#)));
    let res = app.get(&format!("{page}?postcode=ne1+4st")).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("<strong>2</strong> people in Newcastle upon Tyne Central and West have signed."), "{html}");
    assert!(html.contains("Your MP is Chi Onwurah (Labour)."));

    // Sorted by count (most first) by default, by name on request; searchable by place or MP.
    let by_count = app.get(&page).await.text().await.unwrap();
    assert!(by_count.find("Newcastle").unwrap() < by_count.find("Cities of London").unwrap());
    let by_name = app.get(&format!("{page}?sort=name")).await.text().await.unwrap();
    assert!(by_name.find("Cities of London").unwrap() < by_name.find("Newcastle").unwrap());
    let search = app.get(&format!("{page}?q=onwurah")).await.text().await.unwrap();
    assert!(search.contains("Newcastle") && !search.contains("<td>Cities of London"));
    assert!(app.get(&format!("{page}?q=nowhere")).await.text().await.unwrap().contains("No constituency or MP matches"));

    // A postcode that is not one is answered next to the field.
    let bad = app.get(&format!("{page}?postcode=12345")).await;
    assert_eq!(bad.status(), 422);
    let html = bad.text().await.unwrap();
    assert!(html.contains(r#"id="postcode-error""#) && html.contains("aria-invalid=\"true\""));
    assert_eq!(app.get("/campaigns/no-such-campaign/constituencies").await.status(), 404);
});
