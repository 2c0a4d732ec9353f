use serde_json::json;

use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(sign_confirm_and_count_once, |app: TestApp| async move {
    let res = app.sign(&json!({"name": "Ada Lovelace", "email": "ada@example.com", "postcode": "ne1 4st", "consent": true, "updates_opt_in": true})).await;
    assert_eq!(res.status(), 202);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap(), json!({"status": "pending_confirmation"}));

    let mail = app.wait_for_emails("ada@example.com", 1).await;
    let email = &mail[0];
    assert!(email.subject().to_lowercase().contains("confirm"));
    assert!(email.text().contains("Ada Lovelace"));
    assert!(email.text().contains("http://rally.test/confirm/"), "link uses RALLY_PUBLIC_URL");
    let token = email.confirm_token();
    assert_eq!(app.count().await, 0, "an unconfirmed signature does not count");

    // Opening the link (as a mail scanner would) confirms nothing.
    let page = app.get(&format!("/confirm/{token}")).await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains(&format!(r#"<form method="post" action="/confirm/{token}">"#)));
    assert_eq!(app.count().await, 0);

    let done = app.client.post(app.url(&format!("/confirm/{token}"))).send().await.unwrap();
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("your signature counts"));
    assert_eq!(app.count().await, 1);

    // Confirming twice is harmless, through the page or the API.
    let again = app.post_json("/api/confirmations", &json!({"token": token})).await;
    assert_eq!(again.status(), 200);
    assert_eq!(again.json::<serde_json::Value>().await.unwrap(), json!({"status": "confirmed", "kind": "signature", "campaign": SLUG}));
    assert_eq!(app.client.post(app.url(&format!("/confirm/{token}"))).send().await.unwrap().status(), 200);
    assert_eq!(app.count().await, 1);
});

on_both_backends!(api_confirmation_confirms, |app: TestApp| async move {
    app.sign(&signer("Grace Hopper", "grace@example.com", "SW1A 1AA")).await;
    let token = app.wait_for_emails("grace@example.com", 1).await[0].confirm_token();
    let res = app.post_json("/api/confirmations", &json!({"token": token})).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["kind"], "signature");
    assert_eq!(app.count().await, 1);

    for bad in [json!({"token": "not-a-real-token"}), json!({"token": ""}), json!({})] {
        let res = app.post_json("/api/confirmations", &bad).await;
        assert!(res.status() == 404 || res.status() == 422, "{bad}: {}", res.status());
    }
    assert_eq!(app.post_json("/api/confirmations", &json!({"token": "nope"})).await.status(), 404);
});

on_both_backends!(a_repeat_signer_gets_the_same_answer_a_fresh_email_and_one_count, |app: TestApp| async move {
    let first = app.sign(&signer("Jo Bloggs", "jo.bloggs@gmail.com", "NE1 4ST")).await;
    assert_eq!(first.status(), 202);
    let first_body: serde_json::Value = first.json().await.unwrap();
    app.wait_for_emails("jo.bloggs@gmail.com", 1).await;

    // Same Gmail mailbox written differently: same answer, a fresh email, to the address given.
    let second = app.sign(&signer("Jo Bloggs", "JoBloggs+petition@googlemail.com", "NE1 4ST")).await;
    assert_eq!(second.status(), 202);
    assert_eq!(second.json::<serde_json::Value>().await.unwrap(), first_body);
    let fresh = app.wait_for_emails("jo.bloggs@gmail.com", 2).await;
    let (t1, t2) = (fresh[0].confirm_token(), fresh[1].confirm_token());
    assert_ne!(t1, t2, "each email carries a fresh link");
    assert_eq!(app.stored_signatures().await, 1);

    // Both links work and the signature still counts once.
    assert_eq!(app.post_json("/api/confirmations", &json!({"token": t1})).await.status(), 200);
    assert_eq!(app.post_json("/api/confirmations", &json!({"token": t2})).await.status(), 200);
    assert_eq!(app.count().await, 1);

    // Signing again once confirmed: same answer, an email saying so, still one count.
    let third = app.sign(&signer("Jo Bloggs", "JO.BLOGGS@gmail.com", "NE1 4ST")).await;
    assert_eq!(third.status(), 202);
    let all = app.wait_for_emails("jo.bloggs@gmail.com", 3).await;
    assert!(all[2].subject().to_lowercase().contains("already signed"));
    assert_eq!(app.count().await, 1);
});

on_both_backends!(expired_links_do_not_confirm, |app: TestApp| async move {
    app.sign(&signer("Late Larry", "larry@example.com", "NE1 4ST")).await;
    let token = app.wait_for_emails("larry@example.com", 1).await[0].confirm_token();
    app.sql("UPDATE tokens SET expires_at = created_at - 1").await;
    let res = app.post_json("/api/confirmations", &json!({"token": token})).await;
    assert_eq!(res.status(), 404);
    let page = app.get(&format!("/confirm/{token}")).await;
    assert_eq!(page.status(), 404);
    assert!(page.text().await.unwrap().contains("expired"));
    assert_eq!(app.count().await, 0);
});

on_both_backends!(tokens_are_stored_hashed, |app: TestApp| async move {
    app.sign(&signer("Hash Hattie", "hattie@example.com", "NE1 4ST")).await;
    let token = app.wait_for_emails("hattie@example.com", 1).await[0].confirm_token();
    use diesel::prelude::*;
    use rally::db::schema::tokens;
    let hashes: Vec<String> = app.db().read(|c| Ok(tokens::table.select(tokens::token_hash).load(c)?)).await.unwrap();
    assert!(!hashes.is_empty());
    for h in &hashes {
        assert!(!h.contains(&token), "no raw token in the database");
    }
    assert!(hashes.contains(&rally::models::tokens::hash(&token)));
});

on_both_backends!(the_html_form_signs_without_javascript, |app: TestApp| async move {
    let res = app
        .post_form(&format!("/campaigns/{SLUG}/sign"), &[("name", "Form Fiona"), ("email", "fiona@example.com"), ("postcode", "NE1 4ST"), ("consent", "on"), ("show_name", "on")])
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], format!("/campaigns/{SLUG}/check-email"));
    let page = app.get(&format!("/campaigns/{SLUG}/check-email")).await.text().await.unwrap();
    assert!(page.contains("Check your email"));
    let token = app.wait_for_emails("fiona@example.com", 1).await[0].confirm_token();
    let done = app.client.post(app.url(&format!("/confirm/{token}"))).send().await.unwrap().text().await.unwrap();
    assert!(done.contains("1</strong> has signed"));
    let html = app.get(&format!("/campaigns/{SLUG}")).await.text().await.unwrap();
    assert!(html.contains("1</strong> has signed — let’s get to 1,500"));
});

on_both_backends!(public_signers_show_only_those_who_opted_in_by_first_name, |app: TestApp| async move {
    app.postcode_exists("NE1 4ST", "E14001402", "Newcastle upon Tyne Central and West").await;
    let mut shown = signer("Priya Shah", "priya@example.com", "NE1 4ST");
    shown["show_name"] = json!(true);
    app.sign(&shown).await;
    app.sign(&signer("Hidden Harriet", "harriet@example.com", "NE1 4ST")).await;
    for who in ["priya@example.com", "harriet@example.com"] {
        let token = app.wait_for_emails(who, 1).await[0].confirm_token();
        app.post_json("/api/confirmations", &json!({"token": token})).await;
    }
    app.eventually("constituency filled in", || async {
        app.get_json(&format!("/api/campaigns/{SLUG}")).await["signatures_by_constituency"].as_array().is_some_and(|a| !a.is_empty())
    })
    .await;
    let html = app.get(&format!("/campaigns/{SLUG}/signers")).await.text().await.unwrap();
    assert!(html.contains("Priya"));
    assert!(!html.contains("Shah"), "surname is never shown");
    assert!(!html.contains("Harriet"), "a signer who did not opt in is not listed");
    assert!(!html.contains("priya@example.com") && !html.contains("NE1 4ST"));
    assert!(html.contains("Newcastle upon Tyne Central and West"));
});
