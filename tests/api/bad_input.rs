use serde_json::{json, Value};

use crate::helpers::*;
use crate::on_both_backends;

async fn fields_of(res: reqwest::Response) -> Value {
    assert_eq!(res.status(), 422);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], "validation_failed");
    assert!(body["message"].as_str().unwrap().len() > 5);
    body["fields"].clone()
}

on_both_backends!(each_bad_field_is_named_and_nothing_is_stored, |app: TestApp| async move {
    let cases: Vec<(Value, &str)> = vec![
        (json!({"email": "a@example.com", "postcode": "NE1 4ST", "consent": true}), "name"),
        (json!({"name": "  ", "email": "a@example.com", "postcode": "NE1 4ST", "consent": true}), "name"),
        (json!({"name": "x".repeat(101), "email": "a@example.com", "postcode": "NE1 4ST", "consent": true}), "name"),
        (json!({"name": "Eve\r\nBcc: victim@example.com", "email": "a@example.com", "postcode": "NE1 4ST", "consent": true}), "name"),
        (json!({"name": "Eve", "email": "not-an-email", "postcode": "NE1 4ST", "consent": true}), "email"),
        (json!({"name": "Eve", "email": format!("{}@example.com", "a".repeat(250)), "postcode": "NE1 4ST", "consent": true}), "email"),
        (json!({"name": "Eve", "email": "a@example.com\r\nBcc: x@example.com", "postcode": "NE1 4ST", "consent": true}), "email"),
        (json!({"name": "Eve", "email": "a@example.com", "postcode": "12345", "consent": true}), "postcode"),
        (json!({"name": "Eve", "email": "a@example.com", "postcode": "", "consent": true}), "postcode"),
        (json!({"name": "Eve", "email": "a@example.com", "postcode": "NE1 4ST"}), "consent"),
        (json!({"name": "Eve", "email": "a@example.com", "postcode": "NE1 4ST", "consent": false}), "consent"),
        (json!({"name": 42, "email": "a@example.com", "postcode": "NE1 4ST", "consent": true}), "name"),
        (json!({"name": "Eve\u{202E}lanigiro", "email": "a@example.com", "postcode": "NE1 4ST", "consent": true}), "name"),
        (json!({"name": "\u{200B}\u{200B}", "email": "a@example.com", "postcode": "NE1 4ST", "consent": true}), "name"),
        (json!({"name": "Eve", "email": "a@example.com", "postcode": "NE1 4ST", "consent": "perhaps"}), "consent"),
        (json!({"name": "Eve", "email": "a@example.com", "postcode": "NE1 4ST", "consent": true, "show_name": [1]}), "show_name"),
    ];
    for (body, field) in cases {
        let fields = fields_of(app.sign(&body).await).await;
        assert!(fields[field].as_array().is_some_and(|p| !p.is_empty()), "{body} should name {field}: {fields}");
        assert_eq!(fields.as_object().unwrap().len(), 1, "{body}: only {field} is wrong, got {fields}");
    }
    // Everything wrong at once: every field named.
    let fields = fields_of(app.sign(&json!({})).await).await;
    for f in ["name", "email", "postcode", "consent"] {
        assert!(fields.get(f).is_some(), "{f} named in {fields}");
    }
    assert_eq!(app.stored_signatures().await, 0);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(app.emails().is_empty(), "no email for refused input");
});

on_both_backends!(bodies_that_are_not_json_objects_get_clear_4xx, |app: TestApp| async move {
    let url = app.url(&format!("/api/campaigns/{SLUG}/signatures"));
    let send = |body: Vec<u8>, ct: &'static str| {
        let c = app.client.clone();
        let url = url.clone();
        async move { c.post(url).header("content-type", ct).body(body).send().await.unwrap() }
    };
    let malformed = send(b"{\"name\": ".to_vec(), "application/json").await;
    assert_eq!(malformed.status(), 400);
    assert_eq!(malformed.json::<Value>().await.unwrap()["error"], "invalid_json");

    let array = send(b"[1,2]".to_vec(), "application/json").await;
    assert_eq!(array.status(), 400);

    let wrong_type = send(b"name=Eve".to_vec(), "text/plain").await;
    assert_eq!(wrong_type.status(), 415);
    assert_eq!(wrong_type.json::<Value>().await.unwrap()["error"], "unsupported_media_type");

    let not_utf8 = send(vec![b'{', b'"', 0xff, 0xfe, b'"', b':', b'1', b'}'], "application/json").await;
    assert_eq!(not_utf8.status(), 400);

    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(send(deep.into_bytes(), "application/json").await.status(), 400);

    let huge = json!({"name": "x".repeat(200_000), "email": "a@example.com", "postcode": "NE1 4ST", "consent": true});
    let too_big = send(serde_json::to_vec(&huge).unwrap(), "application/json").await;
    assert_eq!(too_big.status(), 413);
    assert_eq!(too_big.json::<Value>().await.unwrap()["error"], "payload_too_large");

    assert_eq!(app.stored_signatures().await, 0);
});

on_both_backends!(the_form_shows_each_message_next_to_its_field, |app: TestApp| async move {
    let res = app.post_form(&format!("/campaigns/{SLUG}/sign"), &[("name", ""), ("email", "nope"), ("postcode", "SW1A"), ("updates_opt_in", "on")]).await;
    assert_eq!(res.status(), 422);
    let html = res.text().await.unwrap();
    assert!(html.contains(r#"id="name-error""#) && html.contains("Enter your name."));
    assert!(html.contains(r#"id="email-error""#) && html.contains("Enter an email address in the right format"));
    assert!(html.contains(r#"id="postcode-error""#) && html.contains("Enter a real UK postcode"));
    assert!(html.contains(r#"id="consent-error""#));
    assert!(html.contains(r#"aria-describedby="email-hint email-error""#), "error tied to its field");
    assert!(html.contains(r#"value="nope""#), "what was typed is kept");
    assert!(html.contains("There are 4 problems"));
    assert_eq!(app.stored_signatures().await, 0);
});

on_both_backends!(names_with_markup_are_escaped_in_pages_and_emails, |app: TestApp| async move {
    let mut body = signer("<script>alert(1)</script> Mallory", "mallory@example.com", "NE1 4ST");
    body["show_name"] = json!(true);
    assert_eq!(app.sign(&body).await.status(), 202);
    let mail = app.wait_for_emails("mallory@example.com", 1).await;
    assert!(mail[0].text().contains("<script>alert(1)</script> Mallory"), "plain text email shows the name as typed");
    let token = mail[0].confirm_token();
    app.post_json("/api/confirmations", &json!({"token": token})).await;
    let html = app.get(&format!("/campaigns/{SLUG}/signers")).await.text().await.unwrap();
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(html.contains("&lt;script&gt;"));
});

#[tokio::test]
async fn a_form_that_is_not_utf8_is_refused_not_mangled() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let res = app
        .client
        .post(app.url(&format!("/campaigns/{SLUG}/sign")))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("name=Bad%FF%FE&email=nu%40example.com&postcode=NE1+4ST&consent=on")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("not valid UTF-8"));
    assert_eq!(app.stored_signatures().await, 0);
}

#[tokio::test]
async fn a_wrong_method_is_405_and_an_unknown_address_404() {
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let put = app.client.put(app.url(&format!("/api/campaigns/{SLUG}/signatures"))).json(&json!({})).send().await.unwrap();
    assert_eq!(put.status(), 405);
    assert_eq!(put.json::<Value>().await.unwrap()["error"], "method_not_allowed");
    assert_eq!(app.get("/api/confirmations").await.status(), 405);
    assert_eq!(app.get("/api/no-such-thing").await.status(), 404);
}

/// A client that stops sending half-way through its body is answered and let go, not waited on
/// for ever (a slow-body attack would otherwise hold connections open).
#[tokio::test]
async fn a_body_that_stops_arriving_times_out() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app(Backend::Sqlite).await.unwrap();
    let addr = app.address.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /api/campaigns/{SLUG}/signatures HTTP/1.1\r\nHost: rally.test\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"name\":\"A\""
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(30), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server answered and closed within 30 s");
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 408"), "408 Request Timeout, got: {text}");
    assert_eq!(app.stored_signatures().await, 0);
}
