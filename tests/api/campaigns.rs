use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(health_answers_when_the_database_does, |app: TestApp| async move {
    let res = app.get("/healthz").await;
    assert_eq!(res.status(), 200);
});

on_both_backends!(a_new_install_shows_the_default_campaign, |app: TestApp| async move {
    let list = app.get_json("/api/campaigns").await;
    let c = list.as_array().unwrap().iter().find(|c| c["slug"] == SLUG).expect("default campaign listed");
    assert_eq!(c["state"], "open");
    assert_eq!(c["signature_count"], 0);
    assert_eq!(c["target"], 1500);
    assert!(c["title"].as_str().unwrap().to_lowercase().contains("legal"));

    let detail = app.get_json(&format!("/api/campaigns/{SLUG}")).await;
    assert_eq!(detail["target"], 1500);
    assert!(detail["summary"].as_str().unwrap().len() > 20);
    assert_eq!(detail["signatures_by_constituency"], serde_json::json!([]));

    let page = app.get(&format!("/campaigns/{SLUG}")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("0</strong> have signed — let’s get to 1,500"), "count and milestone on the page");
    for fact in ["12%", "21%", "£12.2 billion", "£3.9 million", "North East"] {
        assert!(html.contains(fact), "campaign page carries {fact}");
    }
    assert!(html.contains(r#"name="name""#) && html.contains(r#"name="email""#) && html.contains(r#"name="postcode""#) && html.contains(r#"name="consent""#));
    assert!(html.contains("Quick exit"));

    let home = app.get("/").await.text().await.unwrap();
    assert!(home.contains(&format!("/campaigns/{SLUG}")));
});

on_both_backends!(unknown_campaigns_are_404_in_json_and_pages, |app: TestApp| async move {
    let res = app.get("/api/campaigns/no-such-thing").await;
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "campaign_not_found");
    assert!(body["message"].as_str().unwrap().len() > 5);

    let res = app.post_json("/api/campaigns/no-such-thing/signatures", &signer("Ann", "ann@example.com", "NE1 4ST")).await;
    assert_eq!(res.status(), 404);

    let page = app.get("/campaigns/no-such-thing").await;
    assert_eq!(page.status(), 404);
    assert!(page.text().await.unwrap().contains("Quick exit"));
    let nowhere = app.get("/api/nowhere").await;
    assert_eq!(nowhere.status(), 404);
    assert_eq!(nowhere.json::<serde_json::Value>().await.unwrap()["error"], "not_found");
});

on_both_backends!(a_closed_campaign_refuses_signatures_with_409, |app: TestApp| async move {
    app.sql(&format!("UPDATE campaigns SET state = 'closed' WHERE slug = '{SLUG}'")).await;
    let res = app.sign(&signer("Ann", "ann@example.com", "NE1 4ST")).await;
    assert_eq!(res.status(), 409);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "campaign_closed");
    assert_eq!(app.stored_signatures().await, 0);
    let html = app.get(&format!("/campaigns/{SLUG}")).await.text().await.unwrap();
    assert!(html.contains("This petition has closed"));
    assert!(!html.contains(r#"action="/campaigns/legal-advocacy/sign""#));
});

on_both_backends!(pages_carry_safety_headers, |app: TestApp| async move {
    let res = app.get(&format!("/campaigns/{SLUG}")).await;
    let h = res.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"));
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["referrer-policy"], "no-referrer");
    let css = app.get("/static/rally.css").await;
    assert_eq!(css.status(), 200);
    assert!(css.headers()["content-type"].to_str().unwrap().starts_with("text/css"));
});
