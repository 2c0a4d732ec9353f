use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(openapi_describes_the_json_api, |app: TestApp| async move {
    let doc = app.get_json("/api/openapi.json").await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in ["/api/campaigns", "/api/campaigns/{slug}", "/api/campaigns/{slug}/signatures", "/api/confirmations", "/api/postcodes/{postcode}"] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }
    assert!(doc["paths"]["/api/campaigns/{slug}/signatures"]["post"]["responses"].get("422").is_some());
});

on_both_backends!(metrics_count_requests_by_route_and_signatures_by_state, |app: TestApp| async move {
    app.sign(&signer("Metric Mo", "mo@example.com", "NE1 4ST")).await;
    app.get(&format!("/api/campaigns/{SLUG}")).await;
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = res.text().await.unwrap();
    assert!(text.contains(r#"rally_http_requests_total{method="GET",route="/api/campaigns/{slug}",status="200"}"#), "{text}");
    assert!(text.contains("rally_http_request_duration_seconds_bucket"));
    assert!(text.contains(r#"rally_signatures{state="pending"} 1"#));
    assert!(text.contains(r#"rally_outbox{measure="depth"}"#));
    assert!(!text.contains("mo@example.com"));
});

on_both_backends!(unconfirmed_signatures_are_purged_after_seven_days, |app: TestApp| async move {
    app.sign(&signer("Old Olive", "olive@example.com", "NE1 4ST")).await;
    app.sign(&signer("New Nell", "nell@example.com", "NE1 4ST")).await;
    app.wait_for_emails("olive@example.com", 1).await;
    let eight_days = 8 * 24 * 3600 * 1000i64;
    app.sql(&format!("UPDATE signatures SET created_at = created_at - {eight_days} WHERE email = 'olive@example.com'")).await;
    let purged = rally::workers::retention::purge(&app.db(), rally::workers::retention::Retention { letters: std::time::Duration::from_secs(28 * 86400), signatures: std::time::Duration::from_secs(183 * 86400) }).await.unwrap();
    assert_eq!(purged.unconfirmed_signatures, 1);
    assert_eq!(app.stored_signatures().await, 1);
    // Olive's old link no longer confirms anything.
    let token = app.emails_to("olive@example.com")[0].confirm_token();
    assert_eq!(app.post_json("/api/confirmations", &json!({"token": token})).await.status(), 404);
});

on_both_backends!(a_flood_is_rate_limited_with_retry_after, |app: TestApp| async move {
    let mut limited = None;
    for i in 0..80 {
        let res = app.sign(&json!({"name": format!("Flood {i}")})).await;
        if res.status() == 429 {
            limited = Some(res);
            break;
        }
        assert_eq!(res.status(), 422, "normal answers until the limit");
    }
    let res = limited.expect("a flood of 80 requests at once is limited");
    let wait: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait >= 1);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "rate_limited");
    // Other actions have their own buckets.
    assert_eq!(app.get(&format!("/api/campaigns/{SLUG}")).await.status(), 200);
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_can_be_turned_off() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.insert("RALLY_RATE_LIMITS".into(), "off".into());
    })
    .await
    .unwrap();
    for i in 0..80 {
        assert_eq!(app.sign(&json!({"name": format!("Flood {i}")})).await.status(), 422);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
    // Loopback is the trusted proxy here, so X-Forwarded-For names the real client.
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.insert("RALLY_TRUSTED_PROXIES".into(), "127.0.0.1/32, ::1".into());
    })
    .await
    .unwrap();
    let flood = |ip: &'static str| {
        let (c, url) = (app.client.clone(), app.url(&format!("/api/campaigns/{SLUG}/signatures")));
        async move {
            let mut statuses = Vec::new();
            for i in 0..40 {
                // A client may forge entries on the left; only the rightmost untrusted one counts.
                let xff = format!("10.9.9.{i}, {ip}");
                statuses.push(c.post(&url).header("x-forwarded-for", xff).json(&json!({"name": "x"})).send().await.unwrap().status().as_u16());
            }
            statuses
        }
    };
    let first = flood("203.0.113.7").await;
    assert!(first.contains(&429), "one client behind the proxy is limited: {first:?}");
    let second = flood("203.0.113.8").await;
    assert_eq!(second[0], 422, "another client behind the same proxy has its own bucket");

    // Without trust, the header is ignored: forged addresses don't buy fresh buckets.
    let direct = spawn_app(Backend::Sqlite).await.unwrap();
    let mut limited = false;
    for i in 0..40 {
        let res = direct.client.post(direct.url(&format!("/api/campaigns/{SLUG}/signatures"))).header("x-forwarded-for", format!("198.51.100.{i}")).json(&json!({"name": "x"})).send().await.unwrap();
        limited |= res.status() == 429;
    }
    assert!(limited, "X-Forwarded-For from an untrusted peer changes nothing");
}
