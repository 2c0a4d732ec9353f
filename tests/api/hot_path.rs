//! The fast path of issue 5 as a user sees it: answers only after a durable commit shared with
//! other signers, counts from memory that are right at once and after a restart, and public
//! reads that a CDN can cache and revalidate.
use futures_util::future::join_all;

use crate::helpers::*;
use crate::on_both_backends;

/// Like `on_both_backends!`, with the per-address limits off: these tests are one address
/// standing in for a crowd.
macro_rules! crowd_test {
    ($name:ident, $body:expr) => {
        mod $name {
            use super::*;
            async fn unlimited(backend: Backend) -> Option<TestApp> {
                spawn_app_with(backend, |m| {
                    m.insert("RALLY_RATE_LIMITS".into(), "off".into());
                })
                .await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                ($body)(unlimited(Backend::Sqlite).await.unwrap()).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = unlimited(Backend::Postgres).await {
                    ($body)(app).await;
                }
            }
        }
    };
}

crowd_test!(a_crowd_signing_at_once_is_each_stored_once, |app: TestApp| async move {
    let app = &app;
    let answers = join_all((0..200).map(|i| async move { app.sign(&signer("Crowd Member", &format!("crowd{i}@example.com"), "SW1A 1AA")).await.status().as_u16() })).await;
    assert!(answers.iter().all(|s| *s == 202), "every signer is accepted: {answers:?}");
    assert_eq!(app.stored_signatures().await, 200);
});

crowd_test!(one_refused_signature_does_not_undo_its_neighbours, |app: TestApp| async move {
    // A second, closed campaign: its signers are refused while the open campaign's are stored,
    // even when both arrive together and share a commit.
    app.sql(
        "INSERT INTO campaigns (slug, title, summary, body_md, state, created_at, updated_at) \
         VALUES ('closed-one', 'Closed', 'A closed petition', 'Closed.', 'closed', 1, 1)",
    )
    .await;
    let app = &app;
    let answers = join_all((0..120).map(|i| async move {
        let slug = if i % 2 == 0 { SLUG } else { "closed-one" };
        let res = app.post_json(&format!("/api/campaigns/{slug}/signatures"), &signer("Mixed Crowd", &format!("mixed{i}@example.com"), "SW1A 1AA")).await;
        (slug, res.status().as_u16())
    }))
    .await;
    for (slug, status) in &answers {
        assert_eq!(*status, if *slug == SLUG { 202 } else { 409 }, "{slug}");
    }
    assert_eq!(app.stored_signatures().await, 60);
});

on_both_backends!(a_confirmation_shows_in_the_count_at_once, |app: TestApp| async move {
    // A reader made the count cached just before.
    assert_eq!(app.count().await, 0);
    let _ = app.get(&format!("/campaigns/{SLUG}")).await;
    app.sign_and_confirm(&signer("Pat Example", "now@example.com", "SW1A 1AA")).await;
    assert_eq!(app.count().await, 1, "the JSON shows it straight away");
    let page = app.get(&format!("/campaigns/{SLUG}")).await.text().await.unwrap();
    assert!(page.contains("<strong>1</strong> has signed"), "and so does the page");
});

on_both_backends!(counts_are_rebuilt_from_the_database_at_start_up, |app: TestApp| async move {
    app.sign_and_confirm(&signer("Pat Example", "one@example.com", "SW1A 1AA")).await;
    app.sign_and_confirm(&signer("Pat Example", "two@example.com", "SW1A 1AA")).await;
    let url = app.db_url.clone();
    // A second instance on the same database never saw those confirmations happen.
    let second = spawn_app_with(if url.starts_with("postgres") { Backend::Postgres } else { Backend::Sqlite }, |m| {
        m.insert("DATABASE_URL".into(), url);
    })
    .await
    .unwrap();
    assert_eq!(second.count().await, 2);
});

on_both_backends!(public_reads_carry_validators_a_cdn_can_use, |app: TestApp| async move {
    for path in [format!("/api/campaigns/{SLUG}"), format!("/campaigns/{SLUG}"), "/api/campaigns".to_string()] {
        let res = app.get(&path).await;
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["cache-control"], "public, max-age=1", "{path}");
        let etag = res.headers()["etag"].to_str().unwrap().to_string();
        let again = app.client.get(app.url(&path)).header("If-None-Match", &etag).send().await.unwrap();
        assert_eq!(again.status(), 304, "{path} revalidates");
        assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
        assert!(again.bytes().await.unwrap().is_empty());
    }
    // A new confirmation changes the representation, so the old validator no longer matches.
    let path = format!("/api/campaigns/{SLUG}");
    let etag = app.get(&path).await.headers()["etag"].to_str().unwrap().to_string();
    app.sign_and_confirm(&signer("Pat Example", "changes@example.com", "SW1A 1AA")).await;
    let res = app.client.get(app.url(&path)).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["signature_count"], 1);
});
