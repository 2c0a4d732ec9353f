use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(the_privacy_notice_says_what_is_kept_and_how_to_take_it_back, |app: TestApp| async move {
    let res = app.get("/privacy").await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("<h1>Privacy notice</h1>"));
    for must in ["postcode", "7 days", "28 days", "183 days", "Quick exit"] {
        assert!(html.contains(must), "privacy notice mentions {must}");
    }
});

on_both_backends!(every_public_page_has_a_quick_exit_and_no_third_party_assets, |app: TestApp| async move {
    for path in ["/", &format!("/campaigns/{SLUG}"), &format!("/campaigns/{SLUG}/signers"), &format!("/campaigns/{SLUG}/check-email"), "/privacy", "/confirm/unknown-token", "/nowhere"] {
        let html = app.get(path).await.text().await.unwrap();
        assert!(html.contains(r#"id="quick-exit""#), "{path} has a quick exit");
        for attr in ["src=\"http", "href=\"//", "src=\"//"] {
            assert!(!html.contains(attr), "{path} loads nothing from elsewhere ({attr})");
        }
        let stylesheets_elsewhere = html.matches("<link").filter(|l| l.contains("http")).count();
        assert_eq!(stylesheets_elsewhere, 0);
    }
});

on_both_backends!(every_public_route_carries_the_safety_headers, |app: TestApp| async move {
    let routes = ["/", "/privacy", "/healthz", "/api/campaigns", "/api/openapi.json", "/static/rally.css", "/nowhere", "/confirm/x", "/forget/x", "/unsubscribe/x"];
    let slugged = [format!("/campaigns/{SLUG}"), format!("/campaigns/{SLUG}/write"), format!("/campaigns/{SLUG}/signers"), format!("/api/campaigns/{SLUG}")];
    for path in routes.iter().map(|s| s.to_string()).chain(slugged) {
        let res = app.get(&path).await;
        let h = res.headers();
        let csp = h.get("content-security-policy").unwrap_or_else(|| panic!("{path}: no CSP")).to_str().unwrap();
        assert!(csp.contains("default-src 'self'") && csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(h.get("strict-transport-security").is_none(), "no HSTS over plain HTTP");
    }
    // Forms that post return the same headers.
    let res = app.post_form(&format!("/campaigns/{SLUG}/sign"), &[("name", "")]).await;
    assert!(res.headers().contains_key("content-security-policy"));
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hsts_is_sent_when_rally_is_served_over_https() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.insert("RALLY_PUBLIC_URL".into(), "https://rally.example".into());
    })
    .await
    .unwrap();
    let res = app.get("/").await;
    assert!(res.headers()["strict-transport-security"].to_str().unwrap().starts_with("max-age="));
}

on_both_backends!(head_answers_like_get_without_a_body, |app: TestApp| async move {
    for (path, content_type) in [("/healthz", "application/json"), (&format!("/campaigns/{SLUG}") as &str, "text/html"), ("/api/campaigns", "application/json")] {
        let res = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 200, "HEAD {path}");
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with(content_type), "HEAD {path}");
        assert!(res.bytes().await.unwrap().is_empty(), "HEAD {path} has no body");
    }
    assert_eq!(app.client.head(app.url("/no-such-page")).send().await.unwrap().status(), 404);
    // HEAD never reaches an action: an address that only takes POST still refuses it.
    assert_eq!(app.client.head(app.url("/api/confirmations")).send().await.unwrap().status(), 405);
});
