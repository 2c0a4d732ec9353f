use crate::helpers::*;
use crate::on_both_backends;

on_both_backends!(staff_sign_in_and_out, |app: TestApp| async move {
    app.add_staff("Organiser@Campaign.example", "Olu Organiser", "admin").await;
    let b = app.staff_browser();

    // Signed out: every admin page sends you to sign in, and shows nothing.
    let res = b.get("/admin").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/admin/login?next=%2Fadmin");
    assert!(res.text().await.unwrap().is_empty());

    let login = b.page("/admin/login").await;
    assert!(login.contains(r#"name="email""#) && login.contains(r#"name="password""#) && login.contains(r#"name="csrf_token""#));

    // Wrong password and unknown email get the same words.
    let wrong_pw = b.login("organiser@campaign.example", "not the password").await;
    assert_eq!(wrong_pw.status(), 422);
    let wrong_pw = wrong_pw.text().await.unwrap();
    let wrong_email = b.login("nobody@campaign.example", STAFF_PASSWORD).await.text().await.unwrap();
    let msg = "That email and password don&#x27;t match an account.";
    assert!(wrong_pw.contains(msg) && wrong_email.contains(msg));

    // Missing or wrong anti-forgery token: 403, not signed in.
    let forged = b.client.post(b.url("/admin/login")).form(&[("email", "organiser@campaign.example"), ("password", STAFF_PASSWORD)]).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    let forged = b.client.post(b.url("/admin/login")).form(&[("email", "organiser@campaign.example"), ("password", STAFF_PASSWORD), ("csrf_token", "guess")]).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(b.get("/admin").await.status(), 303);

    // Right details (email in any case): signed in, with a sealed HttpOnly cookie.
    let ok = b.login("ORGANISER@campaign.example", STAFF_PASSWORD).await;
    assert_eq!(ok.status(), 303);
    assert_eq!(ok.headers()["location"], "/admin");
    let cookie = ok.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).find(|c| c.starts_with("rally_staff=")).unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Max-Age"));
    let home = b.get("/admin").await;
    assert_eq!(home.status(), 200);
    assert_eq!(home.headers()["cache-control"], "no-store");
    assert!(home.text().await.unwrap().contains("Olu Organiser"));

    // Signing out needs the token too, then the session is gone.
    assert_eq!(b.client.post(b.url("/admin/logout")).send().await.unwrap().status(), 403);
    let out = b.post("/admin", "/admin/logout", &[]).await;
    assert_eq!(out.status(), 303);
    assert_eq!(b.get("/admin").await.status(), 303);
});

on_both_backends!(failed_sign_ins_are_limited_per_account, |app: TestApp| async move {
    app.add_staff("target@campaign.example", "Tara Target", "editor").await;
    let b = app.staff_browser();
    let mut limited = false;
    for _ in 0..8 {
        let res = b.login("target@campaign.example", "wrong guess").await;
        if res.status() == 429 {
            assert!(res.headers().contains_key("retry-after"));
            limited = true;
            break;
        }
    }
    assert!(limited, "guessing one account's password is slowed down");
    // Even the right password waits its turn: no way to tell the limit from a wrong password.
    assert_eq!(b.login("target@campaign.example", STAFF_PASSWORD).await.status(), 429);
});

#[test]
fn staff_add_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let run = |password: &str, email: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_rally"))
            .args(["staff", "add", "--email", email, "--name", "Cam Paigner", "--role", "editor"])
            .current_dir(dir.path())
            .env("DATABASE_URL", &db)
            .env("RALLY_STAFF_PASSWORD", password)
            .output()
            .unwrap()
    };
    let ok = run(STAFF_PASSWORD, "cam@campaign.example");
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("Added Cam Paigner"));
    let again = run(STAFF_PASSWORD, "CAM@campaign.example");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already a staff account"));
    let short = run("short", "other@campaign.example");
    assert!(!short.status.success());
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 12 characters"));
}
