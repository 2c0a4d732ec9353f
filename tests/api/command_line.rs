//! The binary as a new user runs it: embedded SQLite, mail written to files, nothing sent.
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

struct Running(Child);
impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn serve_on_defaults_writes_mail_as_eml_files_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_rally"))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("RALLY_LISTEN", format!("127.0.0.1:{port}"))
        .env("RALLY_POSTCODES_URL", "http://127.0.0.1:9")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("rally starts");
    let _guard = Running(child);
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let start = Instant::now();
    while client.get(format!("{base}/healthz")).send().await.map(|r| r.status() != 200).unwrap_or(true) {
        assert!(start.elapsed() < Duration::from_secs(30), "rally did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(dir.path().join("rally.db").exists(), "default database is ./rally.db");
    let res = client
        .post(format!("{base}/api/campaigns/legal-advocacy/signatures"))
        .json(&json!({"name": "New User", "email": "new.user@example.com", "postcode": "NE1 4ST", "consent": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let mail_dir = dir.path().join("mail");
    let start = Instant::now();
    let eml = loop {
        let found: Vec<_> = std::fs::read_dir(&mail_dir).map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect()).unwrap_or_default();
        if let Some(p) = found.iter().find(|p| p.extension().is_some_and(|e| e == "eml")) {
            break std::fs::read_to_string(p).unwrap();
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no .eml written under ./mail");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(eml.contains("new.user@example.com"));
    assert!(eml.contains("/confirm/"));
}

#[test]
fn migrate_prepares_a_database_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rally"))
        .arg("migrate")
        .current_dir(dir.path())
        .env("DATABASE_URL", format!("sqlite://{}", dir.path().join("x.db").display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.path().join("x.db").exists());

    let bad = Command::new(env!("CARGO_BIN_EXE_rally")).arg("migrate").env("DATABASE_URL", "mysql://nope").output().unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("DATABASE_URL must start with sqlite:// or postgres://"));
}

#[test]
fn privacy_purge_runs_the_retention_job_now() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rally"))
        .args(["privacy", "purge"])
        .current_dir(dir.path())
        .env("DATABASE_URL", format!("sqlite://{}", dir.path().join("p.db").display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Removed 0 unconfirmed signatures, 0 unconfirmed letters"));
}
