//! One harness for every black-box test: the whole app on a random port with a fresh database,
//! a real SMTP server on loopback, and an HTTP stub standing in for postcodes.io.
use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::Connection;
use std::io::{BufRead, BufReader, Write};

use mailin::{response, Action, Handler, Response, SessionBuilder};
use rally::config::Config;
use rally::startup::Application;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

pub const SLUG: &str = "legal-advocacy";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A message as the SMTP server received it.
#[derive(Debug, Clone)]
pub struct ReceivedEmail {
    pub envelope_to: Vec<String>,
    pub raw: Vec<u8>,
}

impl ReceivedEmail {
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default().parse(&self.raw).expect("a parseable email")
    }
    pub fn subject(&self) -> String {
        self.parsed().subject().unwrap_or_default().to_string()
    }
    pub fn text(&self) -> String {
        // Mail travels with CRLF line ends; compare as the reader sees it.
        self.parsed().body_text(0).map(|b| b.replace("\r\n", "\n")).unwrap_or_default()
    }
    /// The token in the first `/confirm/{token}` link.
    pub fn confirm_token(&self) -> String {
        let text = self.text();
        let re = regex::Regex::new(r"/confirm/([A-Za-z0-9_-]+)").unwrap();
        re.captures(&text).map(|c| c[1].to_string()).unwrap_or_else(|| panic!("no confirmation link in:\n{text}"))
    }
}

/// What the loopback SMTP server does with mail (see `SmtpServer`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpMode {
    /// Accepts every message (mailboxes starting with `refuse` excepted: those get 550).
    Accept,
    /// Answers `451 4.3.0` to MAIL, RCPT and DATA: a temporary refusal, as a busy server gives.
    RefuseTemporarily,
    /// The port is closed: connecting is refused and open sessions are cut.
    Unreachable,
}

#[derive(Clone)]
struct Inbox {
    received: Arc<Mutex<Vec<ReceivedEmail>>>,
    mode: Arc<Mutex<SmtpMode>>,
    current: Vec<u8>,
    to: Vec<String>,
}

const TRY_LATER: &str = "4.3.0 try again later";

impl Inbox {
    fn refusing(&self) -> bool {
        *self.mode.lock().unwrap() != SmtpMode::Accept
    }
}

impl Handler for Inbox {
    fn mail(&mut self, _ip: std::net::IpAddr, _domain: &str, _from: &str) -> Response {
        if self.refusing() {
            Response::custom(451, TRY_LATER.into())
        } else {
            response::OK
        }
    }

    /// Mailboxes whose name starts with `refuse` do not exist: a permanent (5xx) refusal.
    fn rcpt(&mut self, to: &str) -> Response {
        if self.refusing() {
            Response::custom(451, TRY_LATER.into())
        } else if to.trim_start_matches('<').starts_with("refuse") {
            response::NO_MAILBOX
        } else {
            response::OK
        }
    }

    fn data_start(&mut self, _domain: &str, _from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.current.clear();
        self.to = to.to_vec();
        if self.refusing() {
            Response::custom(451, TRY_LATER.into())
        } else {
            response::OK
        }
    }
    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.current.extend_from_slice(buf);
        Ok(())
    }
    fn data_end(&mut self) -> Response {
        if self.refusing() {
            self.current.clear();
            return Response::custom(451, TRY_LATER.into());
        }
        let email = ReceivedEmail { envelope_to: self.to.clone(), raw: std::mem::take(&mut self.current) };
        self.received.lock().unwrap().push(email);
        response::OK
    }
}

/// A real SMTP server on a loopback port, with a switch: accept, refuse temporarily (4xx), or
/// be unreachable (port closed). Its inbox lives as long as it does, so an app process that is
/// killed and started again sends to the same inbox. The SMTP conversation is the `mailin`
/// crate's; this only moves lines between it and the socket.
pub struct SmtpServer {
    pub port: u16,
    received: Arc<Mutex<Vec<ReceivedEmail>>>,
    mode: Arc<Mutex<SmtpMode>>,
    listener: Arc<Mutex<Option<TcpListener>>>,
    sessions: Arc<Mutex<HashMap<u64, std::net::TcpStream>>>,
}

impl SmtpServer {
    pub fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = SmtpServer {
            port,
            received: Arc::default(),
            mode: Arc::new(Mutex::new(SmtpMode::Accept)),
            listener: Arc::new(Mutex::new(Some(listener))),
            sessions: Arc::default(),
        };
        let inbox = Inbox { received: server.received.clone(), mode: server.mode.clone(), current: Vec::new(), to: Vec::new() };
        let listener = Arc::downgrade(&server.listener);
        let sessions = server.sessions.clone();
        std::thread::spawn(move || {
            let mut next_id = 0u64;
            // Polls, so the listener can be closed and opened again from the test; ends with the server.
            while let Some(listener) = listener.upgrade() {
                let accepted = match listener.lock().unwrap().as_ref() {
                    Some(l) => l.accept().ok(),
                    None => None,
                };
                drop(listener);
                let Some((stream, _)) = accepted else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = stream.set_nonblocking(false);
                next_id += 1;
                let id = next_id;
                if let Ok(copy) = stream.try_clone() {
                    sessions.lock().unwrap().insert(id, copy);
                }
                let handler = inbox.clone();
                let sessions = sessions.clone();
                std::thread::spawn(move || {
                    let _ = smtp_session(stream, handler);
                    sessions.lock().unwrap().remove(&id);
                });
            }
        });
        server
    }

    /// Accepts mail again (opening the port again on the same number if it was closed).
    pub fn accept(&self) {
        self.listen();
        *self.mode.lock().unwrap() = SmtpMode::Accept;
    }

    /// Answers 451 to every message until `accept`.
    pub fn refuse_temporarily(&self) {
        self.listen();
        *self.mode.lock().unwrap() = SmtpMode::RefuseTemporarily;
    }

    /// Closes the port and cuts every open session (pooled connections included) until `accept`.
    pub fn go_away(&self) {
        *self.mode.lock().unwrap() = SmtpMode::Unreachable;
        drop(self.listener.lock().unwrap().take());
        for (_, s) in self.sessions.lock().unwrap().drain() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }

    fn listen(&self) {
        let mut slot = self.listener.lock().unwrap();
        if slot.is_some() {
            return;
        }
        let start = Instant::now();
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)) {
                Ok(l) => break l,
                Err(e) if start.elapsed() < Duration::from_secs(5) => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("could not open the SMTP port {} again: {e}", self.port),
            }
        };
        listener.set_nonblocking(true).unwrap();
        *slot = Some(listener);
    }

    pub fn emails(&self) -> Vec<ReceivedEmail> {
        self.received.lock().unwrap().clone()
    }

    pub fn emails_to(&self, address: &str) -> Vec<ReceivedEmail> {
        self.emails().into_iter().filter(|e| e.envelope_to.iter().any(|t| t.eq_ignore_ascii_case(address))).collect()
    }

    /// How many messages each envelope recipient (lower-cased, without `<>`) has received.
    pub fn deliveries_by_recipient(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for e in self.received.lock().unwrap().iter() {
            for to in &e.envelope_to {
                *counts.entry(to.trim_matches(|c| c == '<' || c == '>').to_ascii_lowercase()).or_insert(0) += 1;
            }
        }
        counts
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        drop(self.listener.lock().unwrap().take());
        for (_, s) in self.sessions.lock().unwrap().drain() {
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn smtp_session(stream: std::net::TcpStream, handler: Inbox) -> std::io::Result<()> {
    let mut session = SessionBuilder::new("smtp.test").build(stream.peer_addr()?.ip(), handler);
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    session.greeting().write_to(&mut writer)?;
    writer.flush()?;
    let mut line = Vec::with_capacity(128);
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let res = session.process(&line);
        match res.action {
            Action::Reply => res.write_to(&mut writer)?,
            Action::Close => {
                res.write_to(&mut writer)?;
                writer.flush()?;
                return Ok(());
            }
            Action::UpgradeTls => return Ok(()),
            Action::NoReply => {}
        }
        writer.flush()?;
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub postcodes: MockServer,
    pub db_url: String,
    /// The loopback SMTP server the app sends to; switch it with `smtp_accept` and friends.
    pub smtp: SmtpServer,
    /// The app's clock for slow work (questionnaires, digests): move it with `advance_clock`.
    pub clock: rally::clock::Clock,
    _dir: tempfile::TempDir,
    pg_drop: Option<(String, String)>,
}

/// A fresh PostgreSQL database when `RALLY_TEST_POSTGRES_URL` is set; `None` (after saying so) when not.
fn fresh_postgres() -> Option<(String, String, String)> {
    let Ok(base) = std::env::var("RALLY_TEST_POSTGRES_URL") else {
        skipped("PostgreSQL part", "RALLY_TEST_POSTGRES_URL is not set; .ci/run sets it");
        return None;
    };
    let name = format!("rally_test_{}", uuid_like());
    let mut admin = diesel::PgConnection::establish(&base)
        .unwrap_or_else(|e| panic!("RALLY_TEST_POSTGRES_URL is set but PostgreSQL is unreachable: {e}"));
    admin.batch_execute(&format!("CREATE DATABASE {name}")).expect("create test database");
    let mut url = url::Url::parse(&base).expect("RALLY_TEST_POSTGRES_URL is a URL");
    url.set_path(&format!("/{name}"));
    Some((url.to_string(), base, name))
}

fn uuid_like() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..16).map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)])).collect()
}

/// Says, past the test harness's output capture, that something was skipped and why (once each).
pub fn skipped(what: &str, why: &str) {
    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut said = SAID.lock().unwrap();
    if !said.iter().any(|w| w == what) {
        said.push(what.to_string());
        let _ = writeln!(std::io::stderr(), "SKIPPED ({what}): {why}");
    }
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the app; `adjust` may change settings before it starts.
pub async fn spawn_app_with(backend: Backend, adjust: impl FnOnce(&mut HashMap<String, String>)) -> Option<TestApp> {
    let dir = tempfile::tempdir().unwrap();
    let (db_url, pg_drop) = match backend {
        Backend::Sqlite => (format!("sqlite://{}", dir.path().join("rally.db").display()), None),
        Backend::Postgres => {
            let (url, base, name) = fresh_postgres()?;
            (url, Some((base, name)))
        }
    };
    let smtp = SmtpServer::start();
    let smtp_port = smtp.port;
    let postcodes = MockServer::start().await;
    let mut settings: HashMap<String, String> = [
        ("DATABASE_URL", db_url.clone()),
        ("RALLY_LISTEN", "127.0.0.1:0".into()),
        ("RALLY_PUBLIC_URL", "http://rally.test".into()),
        ("RALLY_SMTP_URL", format!("smtp://127.0.0.1:{smtp_port}")),
        ("RALLY_MAIL_DIR", dir.path().join("mail").display().to_string()),
        ("RALLY_POSTCODES_URL", postcodes.uri()),
        ("RALLY_MEMBERS_API_URL", "http://127.0.0.1:9".into()),
        ("RALLY_WORKERS", "2".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    adjust(&mut settings);
    let config = Config::from_map(&settings).expect("test config");
    let app = Application::build(config).await.expect("app starts");
    let address = format!("http://127.0.0.1:{}", app.port());
    let clock = app.state().clock.clone();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    Some(TestApp { address, client, postcodes, db_url, smtp, clock, _dir: dir, pg_drop })
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((base, name)) = self.pg_drop.take() {
            // FORCE ends the app's pooled connections, which are still open.
            if let Ok(mut admin) = diesel::PgConnection::establish(&base) {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

/// Runs a test body on SQLite, and on PostgreSQL when it is configured.
#[macro_export]
macro_rules! on_both_backends {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let app = $crate::helpers::spawn_app($crate::helpers::Backend::Sqlite).await.unwrap();
                ($body)(app).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(app) = $crate::helpers::spawn_app($crate::helpers::Backend::Postgres).await {
                    ($body)(app).await;
                }
            }
        }
    };
}

impl TestApp {
    /// Moves the app's clock forward (the workers that watch it wake at once).
    pub fn advance_clock(&self, by: Duration) {
        self.clock.advance(by);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let res = self.get(path).await;
        assert_eq!(res.status(), 200, "GET {path}");
        res.json().await.unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client.post(self.url(path)).json(body).send().await.unwrap()
    }

    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client.post(self.url(path)).form(form).send().await.unwrap()
    }

    pub async fn sign(&self, body: &Value) -> reqwest::Response {
        self.post_json(&format!("/api/campaigns/{SLUG}/signatures"), body).await
    }

    /// Confirms `email`'s signature from the link in the first email it received.
    pub async fn confirm_from_email(&self, email: &str) {
        let token = self.wait_for_emails(email, 1).await[0].confirm_token();
        assert_eq!(self.post_json("/api/confirmations", &json!({"token": token})).await.status(), 200);
    }

    /// Signs (expecting 202) and confirms from the emailed link.
    pub async fn sign_and_confirm(&self, body: &Value) {
        assert_eq!(self.sign(body).await.status(), 202, "{body}");
        self.confirm_from_email(body["email"].as_str().expect("the body has an email")).await;
    }

    pub async fn count(&self) -> i64 {
        self.get_json(&format!("/api/campaigns/{SLUG}")).await["signature_count"].as_i64().unwrap()
    }

    pub fn emails(&self) -> Vec<ReceivedEmail> {
        self.smtp.emails()
    }

    pub fn emails_to(&self, address: &str) -> Vec<ReceivedEmail> {
        self.smtp.emails_to(address)
    }

    /// The mail server accepts mail (again).
    pub fn smtp_accept(&self) {
        self.smtp.accept()
    }

    /// The mail server answers `451 4.3.0 try again later` to every message.
    pub fn smtp_refuse_temporarily(&self) {
        self.smtp.refuse_temporarily()
    }

    /// The mail server's port closes and its open sessions are cut.
    pub fn smtp_go_away(&self) {
        self.smtp.go_away()
    }

    /// Waits up to `within` until `n` emails have reached `address`.
    pub async fn wait_for_emails_within(&self, address: &str, n: usize, within: Duration) -> Vec<ReceivedEmail> {
        let start = Instant::now();
        loop {
            let got = self.emails_to(address);
            if got.len() >= n {
                return got;
            }
            assert!(start.elapsed() < within, "expected {n} emails to {address} within {within:?}, got {}", got.len());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits (up to 10 s) until `n` emails have reached `address`.
    pub async fn wait_for_emails(&self, address: &str, n: usize) -> Vec<ReceivedEmail> {
        let start = Instant::now();
        loop {
            let got = self.emails_to(address);
            if got.len() >= n {
                return got;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "expected {n} emails to {address}, got {}", got.len());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls `check` for up to 10 s.
    pub async fn eventually<F, Fut>(&self, what: &str, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let start = Instant::now();
        while !check().await {
            assert!(start.elapsed() < Duration::from_secs(10), "timed out waiting for: {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Direct SQL for checks a user cannot make through HTTP (e.g. that nothing was stored).
    pub fn db(&self) -> rally::db::Db {
        rally::db::Db::connect(&self.db_url).unwrap()
    }

    pub async fn stored_signatures(&self) -> i64 {
        use diesel::prelude::*;
        use rally::db::schema::signatures;
        self.db().read(|c| Ok(signatures::table.count().get_result::<i64>(c)?)).await.unwrap()
    }

    pub async fn sql(&self, statement: &str) {
        let s = statement.to_string();
        self.db().write(move |c| Ok(c.batch_execute(&s)?)).await.unwrap();
    }

    /// Makes postcodes.io (the stub) know a postcode.
    pub async fn postcode_exists(&self, postcode: &str, ons_code: &str, constituency: &str) {
        Mock::given(method("GET"))
            .and(path(format!("/postcodes/{}", postcode.replace(' ', "%20"))))
            .respond_with(ResponseTemplate::new(200).set_body_json(postcodes_io_result(postcode, ons_code, constituency)))
            .mount(&self.postcodes)
            .await;
    }
}

/// The shape postcodes.io answers with for a live postcode (trimmed to the fields Rally reads
/// plus a few neighbours, as real answers carry many more).
pub fn postcodes_io_result(postcode: &str, ons_code: &str, constituency: &str) -> Value {
    json!({
        "status": 200,
        "result": {
            "postcode": postcode,
            "quality": 1,
            "country": "England",
            "region": "North East",
            "admin_district": "Newcastle upon Tyne",
            "parliamentary_constituency": constituency,
            "parliamentary_constituency_2024": constituency,
            "longitude": -1.61,
            "latitude": 54.97,
            "codes": {
                "admin_district": "E08000021",
                "parliamentary_constituency": ons_code,
                "parliamentary_constituency_2024": ons_code
            }
        }
    })
}

pub fn signer(name: &str, email: &str, postcode: &str) -> Value {
    json!({"name": name, "email": email, "postcode": postcode, "consent": true})
}

/// A browser-like client for staff pages: keeps cookies, does not follow redirects.
pub struct StaffBrowser {
    pub client: reqwest::Client,
    base: String,
}

pub const STAFF_PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    /// Creates a staff account (as `rally staff add` does).
    pub async fn add_staff(&self, email: &str, name: &str, role: &str) {
        rally::staff::accounts::create(&self.db(), email, name, STAFF_PASSWORD, role, None).await.expect("staff account");
    }

    pub fn staff_browser(&self) -> StaffBrowser {
        StaffBrowser::new(&self.address)
    }

    /// A staff member of `role`, signed in.
    pub async fn signed_in(&self, role: &str) -> StaffBrowser {
        let email = format!("{role}@campaign.example");
        self.add_staff(&email, &format!("Test {role}"), role).await;
        let b = self.staff_browser();
        let res = b.login(&email, STAFF_PASSWORD).await;
        assert_eq!(res.status(), 303, "sign-in works");
        b
    }
}

impl StaffBrowser {
    /// A browser for the Rally at `base` (a `RallyProcess`'s address, say).
    pub fn new(base: &str) -> StaffBrowser {
        let client = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        StaffBrowser { client, base: base.to_string() }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn page(&self, path: &str) -> String {
        let res = self.get(path).await;
        assert_eq!(res.status(), 200, "GET {path}");
        res.text().await.unwrap()
    }

    /// The anti-forgery token on a page's forms.
    pub async fn csrf(&self, path: &str) -> String {
        let html = self.page(path).await;
        let re = regex::Regex::new(r#"name="csrf_token" value="([^"]+)""#).unwrap();
        re.captures(&html).map(|c| c[1].to_string()).unwrap_or_else(|| panic!("no csrf_token on {path}"))
    }

    /// Posts a form with the token from `from_page` added.
    pub async fn post(&self, from_page: &str, action: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf(from_page).await;
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf_token", &token));
        self.client.post(self.url(action)).form(&form).send().await.unwrap()
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        self.post("/admin/login", "/admin/login", &[("email", email), ("password", password)]).await
    }
}

/// Polls `check` until it holds, for up to `within`; panics naming `what` if it never does.
pub async fn wait_until<F, Fut>(what: &str, within: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < within, "timed out after {within:?} waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// The real binary as a child process
// ---------------------------------------------------------------------------------------------

/// Everything around Rally that outlives one run of the `rally` binary: its database, the SMTP
/// server and its inbox, and the postcodes.io stub. `start` runs the binary against them; kill it
/// and start it again and it finds the same database and sends to the same inbox.
pub struct Deployment {
    pub dir: tempfile::TempDir,
    pub db_url: String,
    pub smtp: SmtpServer,
    pub postcodes: MockServer,
    pub client: reqwest::Client,
    /// Settings added to (or overriding) the defaults below for every start.
    pub env: HashMap<String, String>,
    starts: std::sync::atomic::AtomicUsize,
    pg_drop: Option<(String, String)>,
}

/// One run of the `rally` binary.
pub struct RallyProcess {
    child: std::process::Child,
    pub port: u16,
    pub address: String,
    pub log: std::path::PathBuf,
}

impl Deployment {
    /// A fresh database on `backend` (`None`, after saying so, when PostgreSQL is not configured).
    pub async fn new(backend: Backend) -> Option<Deployment> {
        let dir = tempfile::tempdir().unwrap();
        let (db_url, pg_drop) = match backend {
            Backend::Sqlite => (format!("sqlite://{}", dir.path().join("rally.db").display()), None),
            Backend::Postgres => {
                let (url, base, name) = fresh_postgres()?;
                (url, Some((base, name)))
            }
        };
        let smtp = SmtpServer::start();
        let postcodes = MockServer::start().await;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap();
        Some(Deployment { dir, db_url, smtp, postcodes, client, env: HashMap::new(), starts: Default::default(), pg_drop })
    }

    /// Direct SQL for checks (the same database the binary uses).
    pub fn db(&self) -> rally::db::Db {
        rally::db::Db::connect(&self.db_url).unwrap()
    }

    /// Starts the binary on a free port and waits (up to 60 s) until `/healthz` answers 200.
    pub async fn start(&self) -> RallyProcess {
        let n = self.starts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = self.dir.path().join(format!("rally-{n}.log"));
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_rally"));
        // Only what is set here: nothing from the developer's environment or a stray rally.toml.
        for (k, _) in std::env::vars() {
            if k.starts_with("RALLY_") || k == "DATABASE_URL" || k == "RUST_LOG" {
                cmd.env_remove(k);
            }
        }
        let mut env: HashMap<String, String> = [
            ("DATABASE_URL", self.db_url.clone()),
            ("RALLY_LISTEN", format!("127.0.0.1:{port}")),
            ("RALLY_PUBLIC_URL", "http://rally.test".into()),
            ("RALLY_SMTP_URL", format!("smtp://127.0.0.1:{}", self.smtp.port)),
            ("RALLY_MAIL_DIR", self.dir.path().join("mail").display().to_string()),
            ("RALLY_POSTCODES_URL", self.postcodes.uri()),
            ("RALLY_MEMBERS_API_URL", "http://127.0.0.1:9".into()),
            ("RALLY_RATE_LIMITS", "off".into()),
            ("RALLY_WORKERS", "2".into()),
            ("RALLY_CONFIG", self.dir.path().join("no-such-rally.toml").display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        env.extend(self.env.clone());
        let child = cmd
            .envs(&env)
            .current_dir(self.dir.path())
            .stdin(std::process::Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("the rally binary starts");
        let mut process = RallyProcess { child, port, address: format!("http://127.0.0.1:{port}"), log };
        let start = Instant::now();
        loop {
            if let Some(status) = process.child.try_wait().unwrap() {
                panic!("rally exited ({status}) before it was ready; its log:\n{}", process.log_text());
            }
            let ready = self.client.get(process.url("/healthz")).timeout(Duration::from_secs(2)).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return process;
            }
            assert!(start.elapsed() < Duration::from_secs(60), "rally was not ready after 60 s; its log:\n{}", process.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Deployment {
    fn drop(&mut self) {
        if let Some((base, name)) = self.pg_drop.take() {
            if let Ok(mut admin) = diesel::PgConnection::establish(&base) {
                let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        }
    }
}

impl RallyProcess {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`: no chance to finish anything. Returns once the process is gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill(); // SIGKILL on Unix
        let _ = self.child.wait();
    }

    /// `kill -TERM`: asks for a graceful shutdown and returns at once.
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().expect("kill(1) runs");
        assert!(status.success(), "kill -TERM {} failed", self.pid());
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Waits up to `within` for the process to exit; its status, or `None` if it is still running.
    pub async fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if start.elapsed() >= within {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for RallyProcess {
    fn drop(&mut self) {
        if self.running() {
            self.kill();
        }
    }
}
