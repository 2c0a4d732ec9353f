//! `rally db copy`: a running campaign's data moved to another database, through the real binary.
use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use rally::db::schema::*;
use serde_json::{json, Value};

use crate::helpers::{self, spawn_app_with, Backend, TestApp, SLUG};

const PC: &str = "GU11 1AA";
const ONS: &str = "E14001063";
const JS_EMAIL: &str = "david.lammy.mp@parliament.uk";
const STAFF: &str = "organiser@campaign.example";
const SIGNERS: [&str; 3] = ["ada@example.com", "grace@example.com", "katherine@example.com"];

fn no_rate_limits(m: &mut std::collections::HashMap<String, String>) {
    m.insert("RALLY_RATE_LIMITS".into(), "off".into());
}

/// An app with a little of everything: signatures (two confirmed, one pending), a constituency
/// and its MP, a cached postcode, a delivered letter, a staff account. Waits until the workers
/// have nothing left to do, so the database stays still while it is copied and compared.
async fn campaign_with_data() -> TestApp {
    let app = spawn_app_with(Backend::Sqlite, no_rate_limits).await.unwrap();
    app.postcode_exists(PC, ONS, "Aldershot").await;
    app.sql(&format!(
        "INSERT INTO constituencies (ons_code, name, mp_checked_at) VALUES ('{ONS}', 'Aldershot', 0);
         INSERT INTO members (id, ons_code, name, party, email, updated_at) VALUES (5173, '{ONS}', 'Alex Baker', 'Labour', 'alex.baker.mp@parliament.uk', 0);"
    ))
    .await;
    for (i, email) in SIGNERS.iter().enumerate() {
        let res = app.sign(&helpers::signer(&format!("Signer {i}"), email, PC)).await;
        assert_eq!(res.status(), 202);
    }
    for email in &SIGNERS[..2] {
        let token = app.wait_for_emails(email, 1).await[0].confirm_token();
        let res = app.post_json("/api/confirmations", &json!({"token": token})).await;
        assert_eq!(res.status(), 200);
    }
    app.wait_for_emails(SIGNERS[2], 1).await;

    let letter = json!({
        "target": "justice-secretary", "name": "Sam Writer", "email": "sam@example.com", "postcode": "gu111aa",
        "address": {"line1": "1 High Street", "town": "Aldershot"}, "personal_edit": "It matters to me.",
    });
    let res = app.post_json(&format!("/api/campaigns/{SLUG}/letters"), &letter).await;
    assert_eq!(res.status(), 202);
    let token = app.wait_for_emails("sam@example.com", 1).await[0].confirm_token();
    assert_eq!(app.post_json("/api/confirmations", &json!({"token": token})).await.status(), 200);
    app.wait_for_emails(JS_EMAIL, 1).await;
    app.wait_for_emails("sam@example.com", 2).await;

    app.add_staff(STAFF, "Olive Organiser", "admin").await;
    assert_eq!(app.count().await, 2);

    let db = app.db();
    helpers::wait_until("the outbox is empty and every signature placed", Duration::from_secs(20), || {
        let db = db.clone();
        async move {
            db.read(|c| {
                let waiting: i64 = outbox::table.filter(outbox::state.ne("sent")).count().get_result(c)?;
                let unplaced: i64 = signatures::table.filter(signatures::ons_code.is_null()).count().get_result(c)?;
                Ok(waiting == 0 && unplaced == 0)
            })
            .await
            .unwrap()
        }
    })
    .await;
    app
}

macro_rules! count_tables {
    ($conn:expr; $($table:ident),+) => {{
        let mut counts = BTreeMap::new();
        $( counts.insert(stringify!($table), $table::table.count().get_result::<i64>($conn)?); )+
        counts
    }};
}

/// Every application table's row count.
async fn counts(url: &str) -> BTreeMap<&'static str, i64> {
    rally::db::Db::connect(url)
        .unwrap()
        .read(|c| {
            Ok(count_tables!(c; settings, campaigns, milestones, targets, constituencies, members, postcodes,
                signatures, staff, audit_log, tokens, outbox, letter_templates, letters))
        })
        .await
        .unwrap()
}

/// The signatures as (id, email, state), in id order.
async fn signature_rows(url: &str) -> Vec<(i64, String, String)> {
    rally::db::Db::connect(url)
        .unwrap()
        .read(|c| Ok(signatures::table.select((signatures::id, signatures::email, signatures::state)).order(signatures::id).load(c)?))
        .await
        .unwrap()
}

/// Runs `rally db copy` as an operator would, with nothing from the developer's environment.
async fn db_copy(from: &str, to: &str) -> Output {
    let (from, to) = (from.to_string(), to.to_string());
    tokio::task::spawn_blocking(move || {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rally"));
        for (k, _) in std::env::vars() {
            if k.starts_with("RALLY_") || k == "DATABASE_URL" {
                cmd.env_remove(k);
            }
        }
        cmd.args(["db", "copy", "--from", &from, "--to", &to])
            .env("RALLY_CONFIG", dir.path().join("no-such-rally.toml"))
            .current_dir(dir.path())
            .output()
            .expect("rally runs")
    })
    .await
    .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn assert_copied(out: &Output) {
    let (stdout, stderr) = text(out);
    assert!(out.status.success(), "rally db copy failed\nstdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("every table's count matches"), "{stdout}");
    assert!(!stdout.contains("MISMATCH"), "{stdout}");
    let row = stdout.lines().find(|l| l.starts_with("signatures ")).unwrap_or_else(|| panic!("no signatures line in:\n{stdout}"));
    assert!(row.split_whitespace().collect::<Vec<_>>() == ["signatures", "3", "3", "ok"], "{row}");
}

async fn app_on(url: &str) -> TestApp {
    let url = url.to_string();
    spawn_app_with(Backend::Sqlite, move |m| {
        m.insert("DATABASE_URL".into(), url);
        no_rate_limits(m);
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_sqlite_keeps_every_row_and_the_copy_runs_the_campaign() {
    let source = campaign_with_data().await;
    let dir = tempfile::tempdir().unwrap();
    let copy_url = format!("sqlite://{}", dir.path().join("copy.db").display());

    assert_copied(&db_copy(&source.db_url, &copy_url).await);

    let before = counts(&source.db_url).await;
    assert_eq!(counts(&copy_url).await, before);
    assert_eq!(before["signatures"], 3);
    assert_eq!(before["letters"], 1);
    assert_eq!(before["staff"], 1);
    assert!(before.values().filter(|&&n| n > 0).count() >= 12, "most tables have rows to copy: {before:?}");
    assert_eq!(signature_rows(&copy_url).await, signature_rows(&source.db_url).await, "ids kept");

    let copy = app_on(&copy_url).await;
    assert_eq!(copy.count().await, source.count().await);
    assert_eq!(copy.count().await, 2);
    assert_eq!(copy.staff_browser().login(STAFF, helpers::STAFF_PASSWORD).await.status(), 303, "staff sign in on the copy");
    let res = copy.sign(&helpers::signer("New Signer", "new@example.com", PC)).await;
    assert_eq!(res.status(), 202);
    let ids: Vec<i64> = signature_rows(&copy_url).await.into_iter().map(|r| r.0).collect();
    assert_eq!(ids.len(), 4);
    assert!(ids[3] > ids[2], "{ids:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_holds_data_is_refused_and_left_alone() {
    let source = campaign_with_data().await;
    let dir = tempfile::tempdir().unwrap();

    // A copy already made: a second run would duplicate it.
    let copy_url = format!("sqlite://{}", dir.path().join("copy.db").display());
    assert_copied(&db_copy(&source.db_url, &copy_url).await);
    let copied = counts(&copy_url).await;
    let rows = signature_rows(&copy_url).await;
    let out = db_copy(&source.db_url, &copy_url).await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success(), "{stdout}");
    assert!(stderr.contains("already holds data"), "{stderr}");
    assert!(stderr.contains("signatures has 3 rows") && stderr.contains("campaigns has 1 row"), "names the tables: {stderr}");
    assert!(stderr.contains("nothing was copied"), "{stderr}");
    assert_eq!(counts(&copy_url).await, copied, "nothing changed");
    assert_eq!(signature_rows(&copy_url).await, rows);

    // The usual mistake: `rally migrate` on the target first loads the shipped campaign into it.
    let migrated = dir.path().join("migrated.db");
    let status = Command::new(env!("CARGO_BIN_EXE_rally"))
        .arg("migrate")
        .env("DATABASE_URL", format!("sqlite://{}", migrated.display()))
        .current_dir(dir.path())
        .output()
        .unwrap()
        .status;
    assert!(status.success());
    let migrated_url = format!("sqlite://{}", migrated.display());
    let before = counts(&migrated_url).await;
    let out = db_copy(&source.db_url, &migrated_url).await;
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("campaigns has 1 row"), "{stderr}");
    assert_eq!(counts(&migrated_url).await, before);
    assert_eq!(before["signatures"], 0);

    // A password in a URL is never shown, even when the database cannot be reached.
    let out = db_copy(&source.db_url, "postgres://copier:s3cret-pw@127.0.0.1:9/nowhere").await;
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(!stdout.contains("s3cret-pw") && !stderr.contains("s3cret-pw"), "{stdout}\n{stderr}");
    assert!(stderr.contains("could not open the target database postgres://copier:***@127.0.0.1:9/nowhere"), "{stderr}");

    // A missing source file is an error, not an empty copy.
    let out = db_copy(&format!("sqlite://{}", dir.path().join("typo.db").display()), &format!("sqlite://{}", dir.path().join("new.db").display())).await;
    assert!(!out.status.success());
    assert!(text(&out).1.contains("there is no SQLite database at"), "{}", text(&out).1);
    assert!(!dir.path().join("typo.db").exists());
}

/// A fresh PostgreSQL database, dropped (connections and all) when this goes.
struct FreshPostgres {
    base: String,
    name: String,
    url: String,
}

impl FreshPostgres {
    fn new() -> Option<FreshPostgres> {
        let Ok(base) = std::env::var("RALLY_TEST_POSTGRES_URL") else {
            helpers::skipped("PostgreSQL part of db copy", "RALLY_TEST_POSTGRES_URL is not set; .ci/run sets it");
            return None;
        };
        use rand::Rng;
        let mut rng = rand::rng();
        let suffix: String = (0..16).map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)])).collect();
        let name = format!("rally_test_{suffix}");
        let mut admin = diesel::PgConnection::establish(&base).expect("RALLY_TEST_POSTGRES_URL is set but PostgreSQL is unreachable");
        admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create test database");
        let mut url = url::Url::parse(&base).expect("RALLY_TEST_POSTGRES_URL is a URL");
        url.set_path(&format!("/{name}"));
        Some(FreshPostgres { base, name, url: url.to_string() })
    }
}

impl Drop for FreshPostgres {
    fn drop(&mut self) {
        if let Ok(mut admin) = diesel::PgConnection::establish(&self.base) {
            let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_to_postgres_and_back() {
    let Some(pg) = FreshPostgres::new() else { return };
    let source = campaign_with_data().await;

    assert_copied(&db_copy(&source.db_url, &pg.url).await);
    let before = counts(&source.db_url).await;
    assert_eq!(counts(&pg.url).await, before);
    assert_eq!(signature_rows(&pg.url).await, signature_rows(&source.db_url).await, "ids kept");

    {
        let app = app_on(&pg.url).await;
        assert_eq!(app.count().await, 2);
        assert_eq!(app.staff_browser().login(STAFF, helpers::STAFF_PASSWORD).await.status(), 303);
        // The sequences were moved past the copied ids: a new signature (and its outbox row) is stored.
        let res = app.sign(&helpers::signer("New Signer", "new@example.com", PC)).await;
        assert_eq!(res.status(), 202, "{}", res.text().await.unwrap());
        app.wait_for_emails("new@example.com", 1).await;
        let rows = signature_rows(&pg.url).await;
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[3].1, "new@example.com");
        assert!(rows[3].0 > rows[2].0, "{rows:?}");
    }

    // And back again, new signature included.
    let dir = tempfile::tempdir().unwrap();
    let back_url = format!("sqlite://{}", dir.path().join("back.db").display());
    let out = db_copy(&pg.url, &back_url).await;
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("every table's count matches"), "{stdout}");
    assert_eq!(counts(&back_url).await, counts(&pg.url).await);
    assert_eq!(signature_rows(&back_url).await, signature_rows(&pg.url).await);
    let _: Value = app_on(&back_url).await.get_json(&format!("/api/campaigns/{SLUG}")).await;
}
