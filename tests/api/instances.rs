//! Several Rally instances on one PostgreSQL (issue 8): letters written and confirmed on either
//! instance reach each office exactly once, counts agree within two seconds, an instance killed
//! holding claimed emails has them finished by another, a lost database answers 503 and recovers
//! by itself, and instances started together migrate and seed once.
//!
//! Every test here needs `RALLY_TEST_POSTGRES_URL` and says SKIPPED without it. They run one at
//! a time (see `serial`): each starts two or three instances, and the count-lag bound is the
//! requirement itself, so it is measured on a machine not also busy with its neighbours here.
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use rally::config::Config;
use rally::db::schema::{outbox, signatures};
use rally::startup::Application;
use serde_json::{json, Value};

use crate::helpers::*;

const PG_ENV: &str = "RALLY_TEST_POSTGRES_URL";

/// The outbox sender's batch (`workers::outbox::BATCH`): at most the rows in flight at a kill may repeat.
const BATCH: usize = 32;

fn postgres_configured(what: &str) -> bool {
    if std::env::var(PG_ENV).is_err() {
        skipped(what, "RALLY_TEST_POSTGRES_URL is not set; .ci/run sets it");
        return false;
    }
    true
}

/// One test of this file at a time (a failed test must not stop the others, hence `into_inner`).
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------------
// Another instance in this process, on an existing database, SMTP server and postcodes stub
// ---------------------------------------------------------------------------------------------

/// An instance as a client sees it: an address to send requests to.
#[derive(Clone)]
struct Node {
    name: &'static str,
    address: String,
    client: reqwest::Client,
}

impl Node {
    fn of(app: &TestApp, name: &'static str) -> Node {
        Node { name, address: app.address.clone(), client: app.client.clone() }
    }
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }
    async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap_or_else(|e| panic!("{}: GET {path}: {e}", self.name))
    }
    async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.unwrap_or_else(|e| panic!("{}: POST {path}: {e}", self.name))
    }
    async fn count(&self) -> i64 {
        let res = self.get(&format!("/api/campaigns/{SLUG}")).await;
        assert_eq!(res.status(), 200, "{}: GET /api/campaigns/{SLUG}", self.name);
        res.json::<Value>().await.unwrap()["signature_count"].as_i64().unwrap()
    }
}

/// An instance started in this process; it serves until the test's runtime ends.
struct Instance {
    node: Node,
    _dir: tempfile::TempDir,
}

/// The settings `spawn_app_with` gives an app, but on an existing database, SMTP server and stub.
fn settings_for(db_url: &str, smtp_port: u16, postcodes_url: &str, dir: &std::path::Path) -> HashMap<String, String> {
    [
        ("DATABASE_URL", db_url.to_string()),
        ("RALLY_LISTEN", "127.0.0.1:0".into()),
        ("RALLY_PUBLIC_URL", "http://rally.test".into()),
        ("RALLY_SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}")),
        ("RALLY_MAIL_DIR", dir.join("mail").display().to_string()),
        ("RALLY_POSTCODES_URL", postcodes_url.to_string()),
        ("RALLY_MEMBERS_API_URL", "http://127.0.0.1:9".into()),
        ("RALLY_WORKERS", "2".into()),
        ("RALLY_RATE_LIMITS", "off".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Builds and runs an instance; the start-up error (with its causes) if it does not start.
async fn start_instance(name: &'static str, settings: HashMap<String, String>, dir: tempfile::TempDir) -> Result<Instance, String> {
    let config = Config::from_map(&settings).map_err(|e| format!("{e:#}"))?;
    let app = Application::build(config).await.map_err(|e| format!("{e:#}"))?;
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(Duration::from_secs(30)).build().unwrap();
    Ok(Instance { node: Node { name, address, client }, _dir: dir })
}

/// A second instance beside `app`: same database, same SMTP server, same postcodes.io stub.
async fn beside(app: &TestApp, name: &'static str, extra: &[(&str, &str)]) -> Instance {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = settings_for(&app.db_url, app.smtp.port, &app.postcodes.uri(), dir.path());
    for (k, v) in extra {
        settings.insert(k.to_string(), v.to_string());
    }
    start_instance(name, settings, dir).await.unwrap_or_else(|e| panic!("instance {name} did not start beside the first: {e}"))
}

/// The database's name in a `postgres://…/name` URL.
fn db_name(url: &str) -> String {
    url::Url::parse(url).unwrap().path().trim_start_matches('/').to_string()
}

/// A plain connection to the server's maintenance database, for what an operator would do.
fn admin() -> diesel::PgConnection {
    diesel::PgConnection::establish(&std::env::var(PG_ENV).unwrap()).expect("admin connection to PostgreSQL")
}

// ---------------------------------------------------------------------------------------------
// MPs
// ---------------------------------------------------------------------------------------------

const SEATS: usize = 10;

/// (postcode, ONS code, seat, MP id, MP email) of test seat `k` (0-based).
fn seat(k: usize) -> (String, String, String, i64, String) {
    (format!("TS{} 1AA", k + 1), format!("E1400{}", 9001 + k), format!("Test Seat {}", k + 1), 90001 + k as i64, format!("mp{}.test@parliament.uk", k + 1))
}

async fn with_mps(app: &TestApp) {
    for k in 0..SEATS {
        let (pc, ons, name, id, email) = seat(k);
        app.postcode_exists(&pc, &ons, &name).await;
        app.sql(&format!(
            "INSERT INTO constituencies (ons_code, name, mp_checked_at) VALUES ('{ons}', '{name}', 0);
             INSERT INTO members (id, ons_code, name, party, email, updated_at) VALUES ({id}, '{ons}', 'MP {}', 'Labour', '{email}', 0);",
            k + 1
        ))
        .await;
    }
}

fn letter(email: &str, postcode: &str, marker: &str) -> Value {
    json!({
        "target": "mp", "name": "Sam Writer", "email": email, "postcode": postcode,
        "address": {"line1": "1 High Street", "town": "Somewhere"},
        "personal_edit": format!("Please act on this. Reference {marker}."),
    })
}

/// Waits (up to `within`) until every address has at least one email; their first emails.
async fn first_emails(smtp: &SmtpServer, addresses: &[String], within: Duration) -> Vec<ReceivedEmail> {
    let start = Instant::now();
    loop {
        let got = smtp.deliveries_by_recipient();
        let missing: Vec<&String> = addresses.iter().filter(|a| !got.contains_key(&a.to_ascii_lowercase())).collect();
        if missing.is_empty() {
            return addresses.iter().map(|a| smtp.emails_to(a).remove(0)).collect();
        }
        assert!(start.elapsed() < within, "{} of {} addresses got no email within {within:?}, e.g. {:?}", missing.len(), addresses.len(), &missing[..missing.len().min(5)]);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Two instances, one database, one SMTP server
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_deliver_each_letter_once_and_agree_on_counts_within_two_seconds() {
    if !postgres_configured("instances on one PostgreSQL") {
        return;
    }
    let _serial = serial();
    let app = spawn_app_with(Backend::Postgres, |s| {
        s.insert("RALLY_RATE_LIMITS".into(), "off".into());
    })
    .await
    .unwrap();
    let b = beside(&app, "B", &[]).await;
    let (a, b) = (Node::of(&app, "A"), b.node.clone());
    with_mps(&app).await;

    // 100 writers, ten to each MP; even ones write through A, odd ones through B, at ten at a time.
    const LETTERS: usize = 100;
    let writers: Vec<(String, usize, String)> =
        (0..LETTERS).map(|i| (format!("writer{i:03}@example.com"), i % SEATS, format!("L{i:03}-{}", i * 7919 % 1000))).collect();
    for (c, chunk) in writers.chunks(10).enumerate() {
        let first = c * 10;
        let posts = chunk.iter().enumerate().map(|(j, (email, k, marker))| {
            let node = if (first + j) % 2 == 0 { a.clone() } else { b.clone() };
            let body = letter(email, &seat(*k).0, marker);
            async move {
                let res = node.post_json(&format!("/api/campaigns/{SLUG}/letters"), &body).await;
                (node.name, res.status().as_u16(), res.text().await.unwrap_or_default())
            }
        });
        for (i, (node, status, body)) in futures_util::future::join_all(posts).await.into_iter().enumerate() {
            assert_eq!(status, 202, "{}: letter written through {node}: {body}", chunk[i].0);
        }
    }

    // Each writer's confirmation link arrives once; they confirm through A and B in turn, so
    // letters written on A are confirmed on A and on B, and the same for letters written on B.
    let addresses: Vec<String> = writers.iter().map(|w| w.0.clone()).collect();
    let confirmations = first_emails(&app.smtp, &addresses, Duration::from_secs(90)).await;
    for (i, mail) in confirmations.iter().enumerate() {
        let node = if (i / 2) % 2 == 0 { &a } else { &b };
        let res = node.post_json("/api/confirmations", &json!({"token": mail.confirm_token()})).await;
        assert_eq!(res.status(), 200, "{}: confirming through {}", writers[i].0, node.name);
        assert_eq!(res.json::<Value>().await.unwrap()["kind"], "letter");
    }
    let confirmed = confirmations.len();

    // Every office receives each of its letters; then a pause for any second copy to arrive.
    let mp_of: HashMap<String, usize> = (0..SEATS).map(|k| (seat(k).4, k)).collect();
    let markers_at = |smtp: &SmtpServer| -> Vec<(String, String)> {
        let re = regex::Regex::new(r"Reference (L\d{3}-\d+)\.").unwrap();
        let mut out = Vec::new();
        for mail in smtp.emails() {
            for to in &mail.envelope_to {
                let to = to.trim_matches(|c| c == '<' || c == '>').to_ascii_lowercase();
                if mp_of.contains_key(&to) {
                    let marker = re.captures(&mail.text()).map(|c| c[1].to_string()).unwrap_or_else(|| "(no marker)".into());
                    out.push((to, marker));
                }
            }
        }
        out
    };
    let started = Instant::now();
    wait_until("every letter reaches its MP", Duration::from_secs(120), || async {
        let got: HashSet<String> = markers_at(&app.smtp).into_iter().map(|(_, m)| m).collect();
        writers.iter().all(|w| got.contains(&w.2))
    })
    .await;
    let took = started.elapsed();
    // The writers' copies ("has been sent") come after the deliveries; wait for those too.
    wait_until("every writer gets a copy", Duration::from_secs(60), || async {
        let got = app.smtp.deliveries_by_recipient();
        addresses.iter().all(|a| got.get(a).copied().unwrap_or(0) >= 2)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let delivered = markers_at(&app.smtp);
    let mut per_marker: HashMap<&str, Vec<&str>> = HashMap::new();
    for (to, marker) in &delivered {
        per_marker.entry(marker.as_str()).or_default().push(to.as_str());
    }
    let duplicates: usize = per_marker.values().map(|v| v.len().saturating_sub(1)).sum();
    let missing: Vec<&str> = writers.iter().filter(|w| !per_marker.contains_key(w.2.as_str())).map(|w| w.2.as_str()).collect();
    let misdirected: Vec<String> = writers
        .iter()
        .filter_map(|(email, k, marker)| {
            let to = per_marker.get(marker.as_str())?;
            to.iter().any(|t| *t != seat(*k).4).then(|| format!("{email} ({marker}) reached {to:?}, not {}", seat(*k).4))
        })
        .collect();
    let writer_mail = app.smtp.deliveries_by_recipient();
    let extra_copies: Vec<(&String, usize)> =
        addresses.iter().map(|a| (a, writer_mail.get(a).copied().unwrap_or(0))).filter(|(_, n)| *n != 2).collect();
    eprintln!(
        "two instances: letters confirmed {confirmed}, delivered to MPs {} ({} distinct), duplicates {duplicates}, missing {}, misdirected {}; all delivered {took:.1?} after the last confirmation; writers with other than 2 emails (link + copy): {}",
        delivered.len(),
        per_marker.len(),
        missing.len(),
        misdirected.len(),
        extra_copies.len()
    );
    assert_eq!(confirmed, LETTERS);
    assert!(missing.is_empty(), "letters that never reached their MP: {missing:?}");
    assert_eq!(duplicates, 0, "letters delivered more than once: {:?}", per_marker.iter().filter(|(_, v)| v.len() > 1).collect::<Vec<_>>());
    assert!(misdirected.is_empty(), "{misdirected:?}");
    for k in 0..SEATS {
        let mp = seat(k).4;
        assert_eq!(delivered.iter().filter(|(to, _)| *to == mp).count(), LETTERS / SEATS, "{mp} gets each of its letters once");
    }
    assert!(extra_copies.is_empty(), "each writer gets one confirmation link and one copy: {extra_copies:?}");

    // Counts: a signature confirmed on one instance shows on the other within 2 s.
    let mut lags = Vec::new();
    for round in 0..6 {
        let (on, other) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let email = format!("counted{round}@example.com");
        let res = on.post_json(&format!("/api/campaigns/{SLUG}/signatures"), &signer("Count Tester", &email, &seat(round).0)).await;
        assert_eq!(res.status(), 202);
        let token = app.wait_for_emails_within(&email, 1, Duration::from_secs(30)).await[0].confirm_token();
        // Both show the same count before (the previous round may still be settling).
        wait_until("both instances show the same count", Duration::from_secs(10), || async { a.count().await == b.count().await }).await;
        let before = other.count().await;
        let res = on.post_json("/api/confirmations", &json!({"token": token})).await;
        assert_eq!(res.status(), 200);
        let confirmed_at = Instant::now();
        let after = on.count().await;
        assert_eq!(after, before + 1, "{} shows its own confirmation at once", on.name);
        let lag = loop {
            if other.count().await >= after {
                break confirmed_at.elapsed();
            }
            assert!(confirmed_at.elapsed() < Duration::from_secs(10), "{} never showed the signature confirmed on {}", other.name, on.name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        eprintln!("count lag round {round}: confirmed on {}, shown on {} after {lag:.0?}", on.name, other.name);
        lags.push(lag);
    }
    let max = lags.iter().max().unwrap();
    eprintln!("count lag: max {max:.0?} over {} rounds", lags.len());
    assert!(*max <= Duration::from_secs(2), "a confirmed signature took {max:?} to show on the other instance (lags {lags:?}); at most 2 s");
}

// ---------------------------------------------------------------------------------------------
// 2. An instance killed holding claimed rows; the other finishes them
// ---------------------------------------------------------------------------------------------

/// A TCP relay to the SMTP server that holds each of the server's answers for `delay`, so a
/// sender going through it is always in the middle of sending something.
async fn slow_relay(upstream: u16, delay: Duration) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await else { return };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = tokio::spawn(async move {
                    let mut buf = [0u8; 8192];
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                    let _ = sw.shutdown().await;
                });
                let mut buf = [0u8; 8192];
                while let Ok(n) = sr.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    tokio::time::sleep(delay).await;
                    if cw.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
                let _ = cw.shutdown().await;
                up.abort();
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_killed_holding_claimed_emails_has_them_finished_by_another() {
    if !postgres_configured("instances on one PostgreSQL") {
        return;
    }
    let _serial = serial();
    let mut dep = Deployment::new(Backend::Postgres).await.unwrap();
    dep.env.insert("RALLY_OUTBOX_LEASE".into(), "3s".into());
    let db = dep.db();

    // A sends through a relay that answers slowly, so it is always mid-batch.
    let relay = slow_relay(dep.smtp.port, Duration::from_millis(150)).await;
    dep.env.insert("RALLY_SMTP_URL".into(), format!("smtp://127.0.0.1:{relay}"));
    let mut a = dep.start().await;
    dep.env.remove("RALLY_SMTP_URL");

    // 160 supporters sign through A.
    const QUEUED: usize = 160;
    let people: Vec<String> = (0..QUEUED).map(|i| format!("queued{i:03}@example.com")).collect();
    for chunk in people.chunks(8) {
        let posts = chunk.iter().map(|email| {
            let (client, url) = (dep.client.clone(), a.url(&format!("/api/campaigns/{SLUG}/signatures")));
            let body = signer("Queued Person", email, "NE1 4ST");
            async move { client.post(url).json(&body).send().await.map(|r| r.status().as_u16()) }
        });
        for (email, status) in chunk.iter().zip(futures_util::future::join_all(posts).await) {
            assert_eq!(status.as_ref().ok(), Some(&202), "{email}: {status:?}");
        }
    }

    // Once A has delivered some, it is killed mid-send.
    let start = Instant::now();
    while dep.smtp.emails().len() < 20 {
        assert!(start.elapsed() < Duration::from_secs(60), "A delivered only {} emails in 60 s; its log:\n{}", dep.smtp.emails().len(), a.log_text());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    a.kill();
    let delivered_by_a = dep.smtp.emails().len();
    let killed_at = Instant::now();

    // The rows A died holding: pending, with a lease set.
    let held_rows: Vec<(i64, i64)> = db
        .read(|c| {
            Ok(outbox::table
                .filter(outbox::state.eq("pending"))
                .filter(outbox::lease_until.is_not_null())
                .select((outbox::id, outbox::subject_id))
                .load(c)?)
        })
        .await
        .unwrap();
    let held: Vec<i64> = held_rows.iter().map(|r| r.0).collect();
    // Whose emails those were: only they may get a second copy.
    let subjects: Vec<i64> = held_rows.iter().map(|r| r.1).collect();
    let in_flight: HashSet<String> = db
        .read(move |c| Ok(signatures::table.filter(signatures::id.eq_any(subjects)).select(signatures::email).load::<String>(c)?))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.to_ascii_lowercase())
        .collect();
    let pending: i64 = db.read(|c| Ok(outbox::table.filter(outbox::state.eq("pending")).count().get_result(c)?)).await.unwrap();
    assert!(!held.is_empty(), "A was killed holding no claimed rows ({delivered_by_a} delivered, {pending} pending): the test did not test anything");

    // B starts (straight to the SMTP server) and finishes everything.
    let b = dep.start().await;
    let mut undelivered: Vec<String> = Vec::new();
    while killed_at.elapsed() < Duration::from_secs(120) {
        let got = dep.smtp.deliveries_by_recipient();
        undelivered = people.iter().filter(|p| !got.contains_key(*p)).cloned().collect();
        if undelivered.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let caught_up = killed_at.elapsed();
    let held_for_check = held.clone();
    let held_states = || {
        let (db, ids) = (db.clone(), held_for_check.clone());
        async move {
            db.read(move |c| Ok(outbox::table.filter(outbox::id.eq_any(ids)).select((outbox::id, outbox::state)).load::<(i64, String)>(c)?)).await.unwrap()
        }
    };
    let wait = Instant::now();
    while held_states().await.iter().any(|(_, s)| s != "sent") && wait.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = dep.smtp.deliveries_by_recipient();
    let duplicated: Vec<&String> = people.iter().filter(|p| got.get(*p).copied().unwrap_or(0) > 1).collect();
    let duplicates = duplicated.len();
    let repeated_outside_batch: Vec<&&String> = duplicated.iter().filter(|p| !in_flight.contains(p.as_str())).collect();
    let delivered = people.iter().filter(|p| got.contains_key(*p)).count();
    let states = held_states().await;
    let not_sent: Vec<&(i64, String)> = states.iter().filter(|(_, s)| s != "sent").collect();
    eprintln!(
        "killed instance: queued {QUEUED}, delivered by A before the kill {delivered_by_a}, pending at the kill {pending} ({} claimed by A), delivered {delivered}, duplicates {duplicates}; all delivered {caught_up:.1?} after the kill (lease 3 s)",
        held.len()
    );
    drop(b);
    assert!(undelivered.is_empty(), "{} signers never got their confirmation after A died, e.g. {:?}", undelivered.len(), &undelivered[..undelivered.len().min(5)]);
    assert!(not_sent.is_empty(), "rows A claimed and died holding are not sent: {not_sent:?}");
    assert!(repeated_outside_batch.is_empty(), "emails A had not claimed at its death were sent twice: {repeated_outside_batch:?}");
    assert!(duplicates <= BATCH, "{duplicates} signers got their confirmation twice; at most the batch A was sending may repeat");
}

// ---------------------------------------------------------------------------------------------
// 3. The database goes away and comes back
// ---------------------------------------------------------------------------------------------

/// Ends every connection to `db` but the caller's.
fn terminate_connections(admin: &mut diesel::PgConnection, db: &str) {
    diesel::sql_query(format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"))
        .execute(admin)
        .expect("terminate the app's connections");
}

/// (status, Retry-After, body) of a signature and of `/healthz`, sent together.
async fn sign_and_health(app: &TestApp, email: &str) -> [(u16, Option<String>, String); 2] {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(40)).build().unwrap();
    let answer = |r: reqwest::Response| async move {
        let retry = r.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
        (r.status().as_u16(), retry, r.text().await.unwrap_or_default())
    };
    let (s, h) = tokio::join!(
        client.post(app.url(&format!("/api/campaigns/{SLUG}/signatures"))).json(&signer("Steady Person", email, "NE1 4ST")).send(),
        client.get(app.url("/healthz")).send()
    );
    [answer(s.expect("the sign request is answered")).await, answer(h.expect("/healthz is answered")).await]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_lost_database_answers_503_and_recovers_by_itself() {
    if !postgres_configured("instances on one PostgreSQL") {
        return;
    }
    let _serial = serial();
    let app = spawn_app_with(Backend::Postgres, |s| {
        s.insert("RALLY_RATE_LIMITS".into(), "off".into());
    })
    .await
    .unwrap();
    app.postcode_exists("NE1 4ST", "E14001402", "Newcastle upon Tyne Central and West").await;
    let name = db_name(&app.db_url);
    let mut admin = admin();
    let [(s, ..), (h, ..)] = sign_and_health(&app, "before@example.com").await;
    assert_eq!((s, h), (202, 200), "all is well to begin with");

    // (a) Its connections are cut but the database takes new ones: the app reconnects, and no
    // request in the meantime gets a 500.
    terminate_connections(&mut admin, &name);
    let mut answers = Vec::new();
    for i in 0..5 {
        for (status, _, body) in sign_and_health(&app, &format!("cut{i}@example.com")).await {
            assert!(status != 500, "a 500 after the database cut the connections: {body}");
            answers.push(status);
        }
    }
    eprintln!("database connections cut: answers {answers:?}");
    assert!(answers.iter().any(|s| *s == 202), "no signature was accepted after reconnecting: {answers:?}");

    // (b) The database refuses connections for a while: 503 database_unavailable with Retry-After.
    diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false")).execute(&mut admin).unwrap();
    terminate_connections(&mut admin, &name);
    // A connection the pool was opening as the database closed its doors can slip past the
    // first sweep; a second one after a moment catches it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    terminate_connections(&mut admin, &name);
    let down = Instant::now();
    let during = sign_and_health(&app, "during@example.com").await;
    let answered_in = down.elapsed();
    let again = sign_and_health(&app, "during2@example.com").await;
    eprintln!(
        "database refusing connections: answered {:?} after {answered_in:.1?}, then {:?}",
        during.iter().map(|(s, r, _)| (*s, r.clone())).collect::<Vec<_>>(),
        again.iter().map(|(s, r, _)| (*s, r.clone())).collect::<Vec<_>>()
    );
    let mut problems = Vec::new();
    for (what, (status, retry, body)) in ["POST signature", "GET /healthz", "POST signature (again)", "GET /healthz (again)"].iter().zip(during.iter().chain(again.iter())) {
        let error = serde_json::from_str::<Value>(body).ok().and_then(|v| v["error"].as_str().map(str::to_string));
        if *status != 503 || error.as_deref() != Some("database_unavailable") || retry.is_none() {
            problems.push(format!("{what}: {status}, Retry-After {retry:?}, body {body}"));
        }
    }
    assert!(answered_in < Duration::from_secs(20), "the first answers took {answered_in:?} with the database away");

    // The database takes connections again: within seconds, requests succeed, no restart.
    diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true")).execute(&mut admin).unwrap();
    let back = Instant::now();
    let mut last = Vec::new();
    let recovered = loop {
        let [(s, _, sb), (h, _, hb)] = sign_and_health(&app, "after@example.com").await;
        if s == 202 && h == 200 {
            break Some(back.elapsed());
        }
        if s == 500 || h == 500 {
            problems.push(format!("a 500 while recovering: {sb} {hb}"));
        }
        last = vec![s, h];
        if back.elapsed() > Duration::from_secs(30) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    eprintln!("database back: requests succeed again {recovered:.1?} after it accepted connections (last answers before: {last:?})");
    assert!(problems.is_empty(), "while the database was away:\n{}", problems.join("\n"));
    let recovered = recovered.unwrap_or_else(|| panic!("requests still fail 30 s after the database came back: {last:?}"));
    assert!(recovered <= Duration::from_secs(15), "requests succeeded only {recovered:?} after the database came back");
    // The sender recovered too: the signer who signed after it came back gets their link.
    let mail = app.wait_for_emails_within("after@example.com", 1, Duration::from_secs(30)).await;
    assert!(mail[0].text().contains("/confirm/"));
}

// ---------------------------------------------------------------------------------------------
// 4. Instances started together on an empty database
// ---------------------------------------------------------------------------------------------

#[derive(QueryableByName, Debug)]
struct VersionCount {
    #[diesel(sql_type = Text)]
    version: String,
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[derive(QueryableByName, Debug)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn count(conn: &mut diesel::PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql).get_result::<Count>(conn).unwrap_or_else(|e| panic!("{sql}: {e}")).n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_started_together_migrate_and_seed_once() {
    if !postgres_configured("instances on one PostgreSQL") {
        return;
    }
    let _serial = serial();
    let migrations = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres")).unwrap().filter(|e| e.as_ref().unwrap().path().is_dir()).count() as i64;
    let shipped = rally::seed::shipped().unwrap();
    let expected = [
        ("campaigns", shipped.len()),
        ("milestones", shipped.iter().map(|c| c.file.milestones.len()).sum()),
        ("targets", shipped.iter().map(|c| c.file.targets.len()).sum()),
        ("letter_templates", shipped.iter().map(|c| c.letters.len()).sum()),
    ];
    let mut failures = Vec::new();
    // A race shows only sometimes: three rounds, each three instances on a fresh, empty database.
    for round in 1..=3 {
        let dep = Deployment::new(Backend::Postgres).await.unwrap();
        let gate = Arc::new(tokio::sync::Barrier::new(3));
        let starts: Vec<_> = ["first", "second", "third"]
            .into_iter()
            .map(|name| {
                let dir = tempfile::tempdir().unwrap();
                let settings = settings_for(&dep.db_url, dep.smtp.port, &dep.postcodes.uri(), dir.path());
                let gate = gate.clone();
                tokio::spawn(async move {
                    gate.wait().await;
                    let t = Instant::now();
                    (name, start_instance(name, settings, dir).await, t.elapsed())
                })
            })
            .collect();
        let mut started = Vec::new();
        for s in starts {
            let (name, result, took) = s.await.unwrap();
            match result {
                Ok(instance) => started.push((instance, took)),
                Err(e) => failures.push(format!("round {round}: instance {name} did not start: {e}")),
            }
        }
        for (instance, _) in &started {
            let res = instance.node.get(&format!("/api/campaigns/{SLUG}")).await;
            if res.status() != 200 {
                failures.push(format!("round {round}: instance {} answers {} for the default campaign", instance.node.name, res.status()));
            }
        }

        let mut conn = diesel::PgConnection::establish(&dep.db_url).unwrap();
        let versions = diesel::sql_query("SELECT version, count(*) AS n FROM __diesel_schema_migrations GROUP BY version ORDER BY version")
            .load::<VersionCount>(&mut conn)
            .unwrap();
        if versions.len() as i64 != migrations || versions.iter().any(|v| v.n != 1) {
            failures.push(format!("round {round}: migrations recorded {versions:?}, expected each of {migrations} once"));
        }
        let mut seeded = Vec::new();
        for (table, want) in expected {
            let n = count(&mut conn, &format!("SELECT count(*) AS n FROM {table}"));
            seeded.push(format!("{table} {n}"));
            if n != want as i64 {
                failures.push(format!("round {round}: {table} holds {n} rows, the shipped campaigns have {want}"));
            }
        }
        let default = count(&mut conn, &format!("SELECT count(*) AS n FROM campaigns WHERE slug = '{SLUG}'"));
        if default != 1 {
            failures.push(format!("round {round}: the default campaign exists {default} times"));
        }
        eprintln!(
            "started together, round {round}: {} of 3 started ({:?}); migrations {:?}; {}",
            started.len(),
            started.iter().map(|(i, t)| format!("{} {t:.1?}", i.node.name)).collect::<Vec<_>>(),
            versions.iter().map(|v| format!("{} x{}", v.version, v.n)).collect::<Vec<_>>(),
            seeded.join(", ")
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
