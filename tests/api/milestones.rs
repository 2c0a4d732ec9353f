//! Passing a milestone: the page aims for the next rung and every staff member hears about it
//! once.

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(passing_a_milestone_moves_the_target_and_tells_staff_once, |app: TestApp| async move {
    // A short ladder so a test can climb it: 2, then 5.
    app.sql(&format!(
        "DELETE FROM milestones WHERE campaign_id = (SELECT id FROM campaigns WHERE slug = '{SLUG}'); \
         INSERT INTO milestones (campaign_id, threshold) SELECT id, 2 FROM campaigns WHERE slug = '{SLUG}'; \
         INSERT INTO milestones (campaign_id, threshold) SELECT id, 5 FROM campaigns WHERE slug = '{SLUG}';"
    ))
    .await;
    app.add_staff("lead@campaign.example", "Lead Campaigner", "admin").await;
    app.add_staff("helper@campaign.example", "Helper", "editor").await;

    app.sign_and_confirm(&signer("Milly Stone", "one@example.com", "SW1A 1AA")).await;
    assert_eq!(app.get_json(&format!("/api/campaigns/{SLUG}")).await["target"], 2);
    app.sign_and_confirm(&signer("Milly Stone", "two@example.com", "SW1A 1AA")).await;
    assert_eq!(app.get_json(&format!("/api/campaigns/{SLUG}")).await["target"], 5, "the next rung is the target at once");

    let notice = app.wait_for_emails("lead@campaign.example", 1).await;
    assert!(notice[0].subject().contains("passed 2 signatures"), "{}", notice[0].subject());
    assert!(notice[0].text().contains("now aims for 5"));
    assert!(notice[0].text().contains(&format!("/admin/campaigns/{SLUG}/dashboard")));
    app.wait_for_emails("helper@campaign.example", 1).await;

    // Another signature below the next rung tells no one again.
    app.sign_and_confirm(&signer("Milly Stone", "three@example.com", "SW1A 1AA")).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    assert_eq!(app.emails_to("lead@campaign.example").len(), 1, "one notice per milestone");
    assert!(app.emails_to("one@example.com").iter().all(|e| !e.subject().contains("passed")), "supporters do not get staff notices");
});

on_both_backends!(sharing_needs_no_third_party, |app: TestApp| async move {
    // Attribute values arrive HTML-escaped (`/` as `&#x2F;`), as a browser reads them.
    let page = app.get(&format!("/campaigns/{SLUG}")).await.text().await.unwrap().replace("&#x2F;", "/");
    assert!(page.contains(r#"<meta property="og:title""#) && page.contains(r#"name="twitter:card" content="summary_large_image""#));
    assert!(page.contains(&format!(r#"content="http://rally.test/campaigns/{SLUG}/share.svg""#)), "the preview image is Rally's own");

    let image = app.get(&format!("/campaigns/{SLUG}/share.svg")).await;
    assert_eq!(image.status(), 200);
    assert_eq!(image.headers()["content-type"], "image/svg+xml");
    assert_eq!(image.headers()["cache-control"], "public, max-age=1");
    assert!(image.headers().contains_key("etag"));
    let svg = image.text().await.unwrap();
    assert!(svg.starts_with("<svg") && svg.contains(">0</text>") && svg.contains("next goal 1,500"));
    assert_eq!(app.get("/campaigns/no-such-campaign/share.svg").await.status(), 404);

    // The JSON count may be read from any site, without credentials; the widget script is served.
    let res = app.client.get(app.url(&format!("/api/campaigns/{SLUG}"))).header("Origin", "https://blog.example").send().await.unwrap();
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let widget = app.get("/static/count-widget.js").await;
    assert_eq!(widget.status(), 200);
    assert!(widget.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    let js = widget.text().await.unwrap();
    assert!(js.contains("/api/campaigns/") && !js.contains("http://") && !js.contains("https://cdn"), "reads only the Rally it came from");
});
