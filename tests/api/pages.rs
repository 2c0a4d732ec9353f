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
