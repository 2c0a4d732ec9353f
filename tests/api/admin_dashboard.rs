//! Staff dashboard, signature search, invalidation and the CSV export, through HTTP with a
//! signed-in browser's cookie jar.
use diesel::prelude::*;
use rally::db::schema::{audit_log, signatures};
use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_backends;

const NEWCASTLE: (&str, &str, &str) = ("NE1 4ST", "E14001402", "Newcastle upon Tyne Central and West");
const WESTMINSTER: (&str, &str, &str) = ("SW1A 1AA", "E14001172", "Cities of London and Westminster");

fn signatures_page() -> String {
    format!("/admin/campaigns/{SLUG}/signatures")
}

/// Signs through the public API and waits for the confirmation email; returns its token.
async fn sign(app: &TestApp, body: Value) -> String {
    let email = body["email"].as_str().unwrap().to_string();
    assert_eq!(app.sign(&body).await.status(), 202, "{body}");
    app.wait_for_emails(&email, 1).await[0].confirm_token()
}

async fn sign_and_confirm(app: &TestApp, body: Value) {
    let token = sign(app, body).await;
    assert_eq!(app.post_json("/api/confirmations", &json!({"token": token})).await.status(), 200);
}

async fn signature_id(app: &TestApp, email: &str) -> i64 {
    let email = email.to_string();
    app.db().read(move |c| Ok(signatures::table.filter(signatures::email.eq(email)).select(signatures::id).first::<i64>(c)?)).await.unwrap()
}

async fn audit_rows(app: &TestApp, action: &str) -> Vec<(Option<i64>, String, String)> {
    let action = action.to_string();
    app.db()
        .read(move |c| Ok(audit_log::table.filter(audit_log::action.eq(action)).select((audit_log::staff_id, audit_log::staff_name, audit_log::detail)).load(c)?))
        .await
        .unwrap()
}

/// Waits until the backfill has placed `n` confirmed signatures in constituencies.
async fn wait_for_places(app: &TestApp, n: i64) {
    app.eventually("constituencies filled in", || async {
        let detail = app.get_json(&format!("/api/campaigns/{SLUG}")).await;
        detail["signatures_by_constituency"].as_array().unwrap().iter().map(|r| r["signature_count"].as_i64().unwrap()).sum::<i64>() == n
    })
    .await;
}

fn position(html: &str, needle: &str) -> usize {
    html.find(needle).unwrap_or_else(|| panic!("{needle:?} not on the page"))
}

on_both_backends!(dashboard_shows_counts_letters_and_a_chart, |app: TestApp| async move {
    let b = app.signed_in("editor").await;
    let home = b.page("/admin").await;
    assert!(home.contains("Free, independent legal advice and advocacy"));
    assert!(home.contains(r#"data-stat="confirmed">0<"#));
    assert!(!home.contains("chart__bar"), "no bars before anyone has confirmed");

    sign_and_confirm(&app, signer("Ada Lovelace", "ada@example.com", "NE1 4ST")).await;
    sign_and_confirm(&app, signer("Grace Hopper", "grace@example.com", "SW1A 1AA")).await;
    sign(&app, signer("Pending Pat", "pat@example.com", "NE1 4ST")).await;
    app.sql(
        "INSERT INTO letters (campaign_id, target_key, target_name, target_email, writer_name, writer_email, writer_email_key, \
         address_line1, town, postcode, subject, body, state, created_at, sent_at) \
         SELECT id, 'justice-secretary', 'David Lammy', 'js@example.com', 'W', 'w@example.com', 'w@example.com', '1 Road', 'Town', \
         'NE1 4ST', 'S', 'B', 'sent', 1, 1 FROM campaigns WHERE slug = 'legal-advocacy'",
    )
    .await;

    let home = b.page("/admin").await;
    assert!(home.contains(r#"data-stat="confirmed">2<"#), "{home}");
    assert!(home.contains(r#"data-stat="pending">1<"#));
    assert!(home.contains(r#"data-stat="invalidated">0<"#));
    assert!(home.contains(r#"David Lammy (Lord Chancellor and Secretary of State for Justice)</th><td class="num">1</td>"#));
    assert!(home.contains(r#"MPs (each writer’s own)</th><td class="num">0</td>"#));
    // The chart: inline SVG with a title and description, bars, and the figures as a table.
    assert!(home.contains("<svg") && home.contains(r#"class="chart__bar""#));
    assert!(home.contains("<title id=\"chart-") && home.contains("<desc id=\"chart-"));
    assert!(home.contains(": 2 in all, the most in one day 2"));
    assert!(home.contains("<details class=\"chart-data\">"));
    // The CSP forbids inline styles; nothing comes from elsewhere.
    assert!(!home.contains("style=") && !home.contains("<style") && !home.contains("<script"));
    assert!(!home.contains("src=\"http") && !home.contains("href=\"http"));

    let detail = b.page(&format!("/admin/campaigns/{SLUG}/dashboard")).await;
    assert!(detail.contains("<svg") && detail.contains(r#"class="chart__bar""#));
    assert!(detail.contains(r#"data-stat="confirmed">2<"#) && detail.contains(r#"data-stat="pending">1<"#));
    assert!(detail.contains(&format!(r#"href="/admin/campaigns/{SLUG}/signatures.csv""#)));

    assert_eq!(b.get("/admin/campaigns/no-such-campaign/dashboard").await.status(), 404);
});

on_both_backends!(signatures_by_constituency_sort_on_the_server, |app: TestApp| async move {
    for (postcode, code, name) in [NEWCASTLE, WESTMINSTER] {
        app.postcode_exists(postcode, code, name).await;
    }
    sign_and_confirm(&app, signer("Ada Lovelace", "ada@example.com", NEWCASTLE.0)).await;
    sign_and_confirm(&app, signer("Alan Turing", "alan@example.com", NEWCASTLE.0)).await;
    sign_and_confirm(&app, signer("Grace Hopper", "grace@example.com", WESTMINSTER.0)).await;
    wait_for_places(&app, 3).await;
    app.sql("INSERT INTO members (id, ons_code, name, party, email, updated_at) VALUES (4514, 'E14001172', 'Rachel Blake', 'Labour', NULL, 1)").await;

    let b = app.signed_in("editor").await;
    let path = format!("/admin/campaigns/{SLUG}/dashboard");
    let (newcastle, westminster) = (NEWCASTLE.2, WESTMINSTER.2);

    // Most signatures first by default, with the MP's name.
    let html = b.page(&path).await;
    assert!(position(&html, newcastle) < position(&html, westminster));
    assert!(html.contains("Rachel Blake"));
    assert!(html.contains(r#"aria-sort="descending"><a href="?sort=count&amp;dir=asc#by-constituency">Signatures</a>"#), "{html}");
    assert!(html.contains(r#"<a href="?sort=name&amp;dir=asc#by-constituency">Constituency</a>"#));

    let html = b.page(&format!("{path}?sort=name")).await;
    assert!(position(&html, westminster) < position(&html, newcastle));
    assert!(html.contains(r#"aria-sort="ascending"><a href="?sort=name&amp;dir=desc#by-constituency">"#));
    let html = b.page(&format!("{path}?sort=name&dir=desc")).await;
    assert!(position(&html, newcastle) < position(&html, westminster));
    let html = b.page(&format!("{path}?sort=count&dir=asc")).await;
    assert!(position(&html, westminster) < position(&html, newcastle));
    let html = b.page(&format!("{path}?sort=mp&dir=asc")).await;
    assert!(position(&html, westminster) < position(&html, newcastle), "seats with a known MP first");
    // Nonsense in the query string is the default view, not an error.
    let html = b.page(&format!("{path}?sort=%FF&dir=up&sort=name")).await;
    assert!(position(&html, newcastle) < position(&html, westminster));
});

on_both_backends!(staff_search_signatures_every_way, |app: TestApp| async move {
    for (postcode, code, name) in [NEWCASTLE, WESTMINSTER] {
        app.postcode_exists(postcode, code, name).await;
    }
    sign_and_confirm(&app, signer("Ada Lovelace", "ada@example.com", NEWCASTLE.0)).await;
    sign_and_confirm(&app, signer("Grace Hopper", "grace@navy.example", WESTMINSTER.0)).await;
    sign(&app, signer("Pending Pat", "pat@example.com", WESTMINSTER.0)).await;
    wait_for_places(&app, 2).await;
    let b = app.signed_in("editor").await;
    let search = |q: &str| {
        let q: String = url::form_urlencoded::byte_serialize(q.as_bytes()).collect();
        format!("{}?q={q}", signatures_page())
    };

    let all = b.page(&signatures_page()).await;
    assert!(all.contains("Ada Lovelace") && all.contains("Grace Hopper") && all.contains("Pending Pat"));
    assert!(all.contains("3 signatures"));
    assert!(all.contains(r#"<label for="q">"#) && all.contains(r#"id="q" name="q""#));

    for (q, want, not) in [
        ("lovelace", "Ada Lovelace", "Grace Hopper"),
        ("GRACE@NAVY", "Grace Hopper", "Ada Lovelace"),
        ("ne14st", "Ada Lovelace", "Grace Hopper"),
        ("sw1a 1aa", "Grace Hopper", "Ada Lovelace"),
        ("NE1", "Ada Lovelace", "Grace Hopper"),
        ("newcastle upon", "Ada Lovelace", "Grace Hopper"),
        ("cities of london", "Grace Hopper", "Ada Lovelace"),
    ] {
        let html = b.page(&search(q)).await;
        assert!(html.contains(want), "searching {q:?} finds {want}");
        assert!(!html.contains(not), "searching {q:?} does not find {not}");
    }
    let html = b.page(&search("cities of london")).await;
    assert!(html.contains("Pending Pat") && html.contains("pending"), "pending signatures are found too, with their state");

    // LIKE wildcards typed by staff match themselves only.
    for q in ["%", "_", "a%e", "\\"] {
        let html = b.page(&search(q)).await;
        assert!(html.contains("0 signatures"), "{q:?}");
    }
    // Odd paging is the first page, not an error.
    assert!(b.page(&format!("{}?page=-4", signatures_page())).await.contains("Ada Lovelace"));
    assert!(b.page(&format!("{}?page=banana&q=%FF", signatures_page())).await.contains("0 signatures"));
    assert_eq!(b.get("/admin/campaigns/no-such-campaign/signatures").await.status(), 404);
});

on_both_backends!(invalidate_takes_a_signature_off_the_count_and_restore_puts_it_back, |app: TestApp| async move {
    sign_and_confirm(&app, signer("Ada Lovelace", "ada@example.com", "NE1 4ST")).await;
    sign_and_confirm(&app, signer("Grace Hopper", "grace@example.com", "NE1 4ST")).await;
    assert_eq!(app.count().await, 2);
    let id = signature_id(&app, "ada@example.com").await;
    let b = app.signed_in("editor").await;
    let list = signatures_page();
    let invalidate = format!("{list}/{id}/invalidate");
    let restore = format!("{list}/{id}/restore");
    let html = b.page(&list).await;
    assert!(html.contains(&format!(r#"action="{invalidate}""#)));
    assert!(html.contains(&format!(r#"<label for="reason-{id}">"#)));

    let res = b.post(&list, &invalidate, &[("reason", "Duplicate of a paper signature"), ("q", "ada"), ("page", "1")]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"].to_str().unwrap(), format!("{list}?q=ada&page=1&done=invalidated#signature-{id}"));
    assert_eq!(app.count().await, 1, "the public count drops");
    let html = b.page(&format!("{list}?q=ada&page=1&done=invalidated")).await;
    assert!(html.contains("Signature invalidated"));
    assert!(html.contains("Reason: Duplicate of a paper signature"));
    assert!(html.contains(&format!(r#"action="{restore}""#)));
    let detail = b.page(&format!("/admin/campaigns/{SLUG}/dashboard")).await;
    assert!(detail.contains(r#"data-stat="confirmed">1<"#) && detail.contains(r#"data-stat="invalidated">1<"#));

    // Pressing the button twice changes nothing more.
    assert_eq!(b.post(&list, &invalidate, &[("reason", "again")]).await.status(), 303);
    assert_eq!(app.count().await, 1);

    let audits = audit_rows(&app, "signature.invalidate").await;
    assert_eq!(audits.len(), 1);
    assert_eq!(audits[0].1, "Test editor");
    assert!(audits[0].0.is_some());
    assert!(audits[0].2.contains(&format!("#{id}")) && !audits[0].2.contains("Ada") && !audits[0].2.contains("ada@"));
    assert!(!audits[0].2.contains("paper"), "the reason may name someone and is not copied");

    let res = b.post(&list, &restore, &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(app.count().await, 2, "the count is back");
    let (reason, at): (Option<String>, Option<i64>) = app
        .db()
        .read(move |c| Ok(signatures::table.find(id).select((signatures::invalidated_reason, signatures::invalidated_at)).first(c)?))
        .await
        .unwrap();
    assert_eq!((reason, at), (None, None));
    assert_eq!(b.post(&list, &restore, &[]).await.status(), 303);
    assert_eq!(audit_rows(&app, "signature.restore").await.len(), 1);

    // A pending signature cannot be invalidated.
    sign(&app, signer("Pending Pat", "pat@example.com", "NE1 4ST")).await;
    let pat = signature_id(&app, "pat@example.com").await;
    assert_eq!(b.post(&list, &format!("{list}/{pat}/invalidate"), &[("reason", "spam")]).await.status(), 409);
    assert_eq!(b.post(&list, &format!("{list}/{pat}/restore"), &[]).await.status(), 409);
    // Another campaign's path, an unknown id or a non-number: 404.
    assert_eq!(b.post(&list, &format!("{list}/999999/invalidate"), &[("reason", "x")]).await.status(), 404);
    assert_eq!(b.post(&list, &format!("{list}/abc/invalidate"), &[("reason", "x")]).await.status(), 404);
    assert_eq!(b.post(&list, &format!("/admin/campaigns/no-such-campaign/signatures/{id}/invalidate"), &[("reason", "x")]).await.status(), 404);
    assert_eq!(app.count().await, 2);
});

on_both_backends!(bad_invalidations_change_nothing, |app: TestApp| async move {
    sign_and_confirm(&app, signer("Ada Lovelace", "ada@example.com", "NE1 4ST")).await;
    let id = signature_id(&app, "ada@example.com").await;
    let b = app.signed_in("editor").await;
    let list = signatures_page();
    let invalidate = format!("{list}/{id}/invalidate");

    // No reason: 422, the message next to this row's field, the search kept.
    let res = b.post(&list, &invalidate, &[("reason", "   "), ("q", "lovelace")]).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    let field_error = format!(r#"<p class="field__error" id="reason-{id}-error"><span class="visually-hidden">Error:</span> Enter a reason for invalidating this signature.</p>"#);
    assert!(html.contains(&field_error), "{html}");
    assert!(html.contains(&format!(r#"aria-describedby="reason-{id}-error""#)));
    assert!(html.contains(r##"<a href="#reason-"##), "an error summary links to the field");
    assert!(html.contains(r#"name="q" value="lovelace""#));

    // Too long: refused, and what was typed is put back.
    let long = "x".repeat(301);
    let res = b.post(&list, &invalidate, &[("reason", &long)]).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains("300 characters or fewer") && html.contains(&format!(r#"value="{long}""#)));

    // Control characters: refused.
    let res = b.post(&list, &invalidate, &[("reason", "spam\u{7}")]).await;
    assert_eq!(res.status(), 422);
    assert!(res.text().await.unwrap().contains("control characters"));

    // Without the anti-forgery token, or with a wrong one: 403.
    let forged = b.client.post(b.url(&invalidate)).form(&[("reason", "spam")]).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    let forged = b.client.post(b.url(&invalidate)).form(&[("reason", "spam"), ("csrf_token", "guess")]).send().await.unwrap();
    assert_eq!(forged.status(), 403);

    assert_eq!(app.count().await, 1, "nothing changed");
    assert!(audit_rows(&app, "signature.invalidate").await.is_empty());
});

on_both_backends!(csv_export_of_confirmed_signers_defuses_formulas, |app: TestApp| async move {
    app.postcode_exists(NEWCASTLE.0, NEWCASTLE.1, NEWCASTLE.2).await;
    let mut ada = signer("Ada Lovelace", "ada@example.com", NEWCASTLE.0);
    ada["updates_opt_in"] = json!(true);
    sign_and_confirm(&app, ada).await;
    let formulas = [r#"=HYPERLINK("http://x","y")"#, "@SUM(1)", "-2+3", "+1"];
    for (i, name) in formulas.iter().enumerate() {
        sign_and_confirm(&app, signer(name, &format!("formula{i}@example.com"), "SW1A 1AA")).await;
    }
    sign(&app, signer("Pending Pat", "pat@example.com", "NE1 4ST")).await;
    sign_and_confirm(&app, signer("Invalid Ivy", "ivy@example.com", "NE1 4ST")).await;
    wait_for_places(&app, 2).await;

    let b = app.signed_in("editor").await;
    let list = signatures_page();
    let ivy = signature_id(&app, "ivy@example.com").await;
    assert_eq!(b.post(&list, &format!("{list}/{ivy}/invalidate"), &[("reason", "test signature")]).await.status(), 303);

    let res = b.get(&format!("/admin/campaigns/{SLUG}/signatures.csv")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    assert_eq!(res.headers()["content-disposition"], format!("attachment; filename=\"{SLUG}-signatures.csv\""));
    assert_eq!(res.headers()["cache-control"], "no-store");
    let text = res.text().await.unwrap();
    assert_eq!(text.lines().next().unwrap(), "name,email,postcode,constituency,confirmed_at,updates_opt_in");

    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    let names: Vec<&str> = rows.iter().map(|r| &r[0]).collect();
    assert_eq!(rows.len(), 5, "confirmed signers only: {names:?}");
    assert!(!names.contains(&"Pending Pat") && !names.contains(&"Invalid Ivy"));
    for name in formulas {
        assert!(names.contains(&format!("'{name}").as_str()), "{name} is prefixed: {names:?}");
    }
    let iso_utc = regex::Regex::new(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$").unwrap();
    for row in &rows {
        for cell in row {
            assert!(!cell.starts_with(['=', '+', '-', '@', '\t', '\r']), "unsafe cell {cell:?}");
        }
        assert!(iso_utc.is_match(&row[4]), "ISO-8601 UTC: {:?}", &row[4]);
    }
    let ada = rows.iter().find(|r| &r[0] == "Ada Lovelace").unwrap();
    assert_eq!((&ada[1], &ada[2], &ada[3], &ada[5]), ("ada@example.com", NEWCASTLE.0, NEWCASTLE.2, "yes"));
    let plus = rows.iter().find(|r| &r[0] == "'+1").unwrap();
    assert_eq!((&plus[3], &plus[5]), ("", "no"), "unknown constituency is blank");

    // The export is audited: who and which campaign, no supporter's details.
    let audits = audit_rows(&app, "signatures.export").await;
    assert_eq!(audits.len(), 1);
    assert_eq!(audits[0].1, "Test editor");
    assert!(audits[0].2.contains(SLUG));
    for personal in ["Ada", "ada@", "NE1", "HYPERLINK"] {
        assert!(!audits[0].2.contains(personal));
    }
    assert_eq!(b.get("/admin/campaigns/no-such-campaign/signatures.csv").await.status(), 404);
});

on_both_backends!(signed_out_visitors_see_no_staff_data, |app: TestApp| async move {
    sign_and_confirm(&app, signer("Ada Lovelace", "ada@example.com", "NE1 4ST")).await;
    let id = signature_id(&app, "ada@example.com").await;
    let visitor = app.staff_browser();
    for path in [
        "/admin".to_string(),
        format!("/admin/campaigns/{SLUG}/dashboard"),
        format!("/admin/campaigns/{SLUG}/signatures"),
        format!("/admin/campaigns/{SLUG}/signatures?q=ada"),
        format!("/admin/campaigns/{SLUG}/signatures.csv"),
    ] {
        let res = visitor.get(&path).await;
        assert_eq!(res.status(), 303, "{path}");
        assert!(res.headers()["location"].to_str().unwrap().starts_with("/admin/login?next="), "{path}");
        assert!(res.text().await.unwrap().is_empty(), "{path} shows nothing");
    }
    let res = visitor.get(&format!("/admin/campaigns/{SLUG}/signatures.csv")).await;
    assert_eq!(res.headers()["location"], format!("/admin/login?next=%2Fadmin%2Fcampaigns%2F{SLUG}%2Fsignatures.csv"));
    for action in ["invalidate", "restore"] {
        let res = visitor.client.post(visitor.url(&format!("/admin/campaigns/{SLUG}/signatures/{id}/{action}"))).form(&[("reason", "x")]).send().await.unwrap();
        assert_eq!(res.status(), 303);
        assert!(res.text().await.unwrap().is_empty());
    }
    assert_eq!(app.count().await, 1);
    assert!(audit_rows(&app, "signatures.export").await.is_empty());
});
