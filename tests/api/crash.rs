//! The real `rally` binary killed under load: nothing it acknowledged is lost, every acknowledged
//! signer gets their confirmation after a restart, and a SIGTERM lets requests in flight finish.
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use rally::db::schema::{outbox, signatures};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

/// Signers hammering the petition at once.
const SIGNERS: usize = 16;
const MOST_ACKNOWLEDGED: usize = 2_500;
/// The outbox sender's batch: only rows claimed at the instant of a kill may be sent twice.
const BATCH: usize = 32;
/// The lease set for these runs (`RALLY_OUTBOX_LEASE`): rows held by a dead sender come back after it.
const LEASE: &str = "3s";
/// How long delivery may make no progress at all before the test calls it stuck.
const STALL: Duration = Duration::from_secs(20);

/// Every email address stored as a signature, lower-cased.
async fn stored_emails(dep: &Deployment) -> HashSet<String> {
    let emails: Vec<String> = dep.db().read(|c| Ok(signatures::table.select(signatures::email).load(c)?)).await.unwrap();
    emails.into_iter().map(|e| e.to_ascii_lowercase()).collect()
}

/// What the signers saw while the process ran and was then killed.
struct Load {
    acknowledged: Vec<String>,
    /// Answers other than 202 while the process was alive (status, body).
    other_answers: Vec<(u16, String)>,
}

/// `SIGNERS` tasks sign as fast as they can with unique addresses; after `for_how_long` (or
/// `MOST_ACKNOWLEDGED` answers) the process is killed with SIGKILL. Requests cut off by the kill
/// are ignored.
async fn sign_until_killed(dep: &Deployment, process: &mut RallyProcess, round: usize, for_how_long: Duration) -> Load {
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let other = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for t in 0..SIGNERS {
        let (stop, acknowledged, other) = (stop.clone(), acknowledged.clone(), other.clone());
        let client = dep.client.clone();
        let url = process.url(&format!("/api/campaigns/{SLUG}/signatures"));
        tasks.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                n += 1;
                let email = format!("r{round}-t{t}-n{n}@example.com");
                match client.post(&url).json(&signer("Crash Tester", &email, "NE1 4ST")).send().await {
                    Ok(res) if res.status() == 202 => acknowledged.lock().unwrap().push(email),
                    Ok(res) => {
                        let status = res.status().as_u16();
                        let body = res.text().await.unwrap_or_default();
                        if !stop.load(Ordering::SeqCst) {
                            other.lock().unwrap().push((status, body));
                        }
                    }
                    // The process died under this request (or refuses connections now): stop.
                    Err(_) => break,
                }
            }
        }));
    }
    // Killed mid-load: after `for_how_long`, or sooner once enough are acknowledged that the
    // emails to check stay a size the loopback SMTP server delivers in well under a minute.
    let started = std::time::Instant::now();
    while started.elapsed() < for_how_long && acknowledged.lock().unwrap().len() < MOST_ACKNOWLEDGED {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    process.kill();
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let other_answers = other.lock().unwrap().clone();
    Load { acknowledged, other_answers }
}

async fn kill_and_restart_twice(backend: Backend) {
    let Some(mut dep) = Deployment::new(backend).await else { return };
    dep.env.insert("RALLY_OUTBOX_LEASE".into(), LEASE.into());
    let mut process = dep.start().await;
    let started = Instant::now();
    let mut failures = Vec::new();
    for round in 1..=2 {
        let load = sign_until_killed(&dep, &mut process, round, Duration::from_millis(1500)).await;
        // Rows the dead sender had claimed (and not finished): only its lease running out frees them.
        let held = dep
            .db()
            .read(|c| Ok(outbox::table.filter(outbox::state.eq("pending")).filter(outbox::lease_until.is_not_null()).count().get_result::<i64>(c)?))
            .await
            .unwrap();
        let queued = dep.db().read(|c| Ok(outbox::table.filter(outbox::state.eq("pending")).count().get_result::<i64>(c)?)).await.unwrap();
        process = dep.start().await;
        let restarted = Instant::now();

        // (1) Every acknowledged signature is in the database.
        let stored = stored_emails(&dep).await;
        let missing: Vec<&String> = load.acknowledged.iter().filter(|e| !stored.contains(*e)).collect();

        // (2) Every acknowledged signer gets their confirmation. The backlog takes as long as the
        // machine needs, so the wait ends when delivery stalls (nothing new for STALL: far longer
        // than the 3 s lease plus the first retry, far shorter than the default 2 min lease) or
        // after a generous cap.
        let mut undelivered: Vec<String>;
        let mut last_progress = (Instant::now(), usize::MAX);
        loop {
            let got = dep.smtp.deliveries_by_recipient();
            undelivered = load.acknowledged.iter().filter(|e| !got.contains_key(*e)).cloned().collect();
            if undelivered.len() != last_progress.1 {
                last_progress = (Instant::now(), undelivered.len());
            }
            if undelivered.is_empty() || last_progress.0.elapsed() > STALL || restarted.elapsed() > Duration::from_secs(120) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let caught_up = restarted.elapsed();
        // Let any second copy that is coming arrive before counting duplicates.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let got: HashMap<String, usize> = dep.smtp.deliveries_by_recipient();
        let duplicates = load.acknowledged.iter().filter(|e| got.get(*e).copied().unwrap_or(0) > 1).count();
        let delivered = load.acknowledged.iter().filter(|e| got.contains_key(*e)).count();

        eprintln!(
            "crash test ({backend:?}) round {round}: acknowledged {}, found {}, delivered {}, duplicates {}; at the kill {queued} emails queued, {held} of them claimed by the dead sender; all delivered {:.1?} after restart (other answers while alive: {})",
            load.acknowledged.len(),
            load.acknowledged.len() - missing.len(),
            delivered,
            duplicates,
            caught_up,
            load.other_answers.len()
        );
        if load.acknowledged.len() < SIGNERS {
            failures.push(format!("round {round}: only {} signatures were acknowledged in 1.5 s; the load did not happen", load.acknowledged.len()));
        }
        if !load.other_answers.is_empty() {
            failures.push(format!("round {round}: {} requests got an answer other than 202 under load, e.g. {:?}", load.other_answers.len(), &load.other_answers[..load.other_answers.len().min(3)]));
        }
        if !missing.is_empty() {
            failures.push(format!("round {round}: {} acknowledged signatures are not in the database after the kill, e.g. {:?}", missing.len(), &missing[..missing.len().min(5)]));
        }
        if !undelivered.is_empty() {
            failures.push(format!(
                "round {round}: {} acknowledged signers got no confirmation after the restart (delivery stalled for {STALL:?} or took over 120 s; lease {LEASE}), e.g. {:?}",
                undelivered.len(),
                &undelivered[..undelivered.len().min(5)]
            ));
        }
        if duplicates > BATCH {
            failures.push(format!("round {round}: {duplicates} signers got their confirmation twice; at most one batch ({BATCH}) in flight at the kill may repeat"));
        }
    }
    eprintln!("crash test ({backend:?}) took {:?}", started.elapsed());
    drop(process);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_acknowledged_signature_sqlite() {
    kill_and_restart_twice(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_load_loses_no_acknowledged_signature_postgres() {
    kill_and_restart_twice(Backend::Postgres).await;
}

/// One signature whose JSON body arrives in pieces over about `over`, on its own connection;
/// the HTTP status, or `None` if the connection was cut without an answer.
async fn slow_signature(port: u16, email: String, over: Duration) -> Option<u16> {
    let body = serde_json::to_vec(&signer("Slow Signer", &email, "NE1 4ST")).unwrap();
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let head = format!(
        "POST /api/campaigns/{SLUG}/signatures HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.ok()?;
    let pieces = 10;
    for piece in body.chunks(body.len().div_ceil(pieces)) {
        tokio::time::sleep(over / pieces as u32).await;
        stream.write_all(piece).await.ok()?;
    }
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    answer.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_finishes_requests_in_flight_then_exits_cleanly() {
    let dep = Deployment::new(Backend::Sqlite).await.unwrap();
    let mut process = dep.start().await;
    let port = process.port;

    // Twenty signatures whose bodies trickle in over 1.5 s; SIGTERM lands while all are mid-request.
    let requests: Vec<_> = (0..20)
        .map(|i| {
            let email = format!("inflight{i}@example.com");
            (email.clone(), tokio::spawn(slow_signature(port, email, Duration::from_millis(1500))))
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let sent_at = Instant::now();
    process.terminate();

    // New connections are refused at once, while the requests in flight are still being served.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let still_running = process.running();
    let fresh = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
    let refused = fresh.as_ref().is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused);

    let mut answers = Vec::new();
    for (email, r) in requests {
        answers.push((email, r.await.unwrap()));
    }
    let status = process.wait_exit(Duration::from_secs(10)).await;
    let exited_after = sent_at.elapsed();
    let log = process.log_text();
    eprintln!("graceful shutdown: answers {:?}; exited {status:?} {exited_after:?} after SIGTERM", answers.iter().map(|(_, a)| *a).collect::<Vec<_>>());

    let status = status.unwrap_or_else(|| panic!("rally was still running 10 s after SIGTERM; its log:\n{log}"));
    assert!(status.success(), "rally exited with {status} after SIGTERM; its log:\n{log}");
    assert!(still_running, "rally had already exited 300 ms after SIGTERM, with requests still in flight");
    assert!(refused, "a new connection after SIGTERM was not refused: {fresh:?}");
    for (email, answer) in &answers {
        assert_eq!(*answer, Some(202), "{email}: a request in flight at SIGTERM must be answered, and answered 202");
    }
    let stored = stored_emails(&dep).await;
    for (email, _) in &answers {
        assert!(stored.contains(email), "{email} was answered 202 but is not stored");
    }
}
