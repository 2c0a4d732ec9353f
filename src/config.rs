//! Configuration from the environment, with an optional `rally.toml` holding the same keys.
//! Secrets (the SMTP password, the secret key) never reach a log line: `Debug` is hand-written.
use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

#[derive(Clone)]
pub struct Config {
    pub database_url: String,
    pub listen: String,
    pub public_url: String,
    pub smtp_url: Option<String>,
    pub mail_dir: PathBuf,
    pub mail_from: String,
    pub postcodes_url: String,
    pub members_api_url: String,
    pub secret_key: Option<String>,
    pub log_format: LogFormat,
    pub rate_limits: bool,
    pub letter_retention: Duration,
    pub signature_retention: Duration,
    pub quick_exit_url: String,
    /// DKIM: selector and the file holding the private key; both or neither.
    pub dkim_selector: Option<String>,
    pub dkim_key_file: Option<PathBuf>,
    /// Reverse proxies whose `X-Forwarded-For` is believed (addresses or CIDR blocks).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Letters delivered to any one inbox per minute at most.
    pub delivery_pace_per_minute: i64,
    /// Update emails queued per minute at most, so an update to every signer never crowds out
    /// confirmation emails or trips the mail provider's limits.
    pub update_rate_per_minute: i64,
    /// HTTP worker threads; `None` lets actix pick one per core.
    pub workers: Option<usize>,
    /// How long a sender may hold claimed outbox rows before another (or a restarted one) takes them.
    pub outbox_lease: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

const KEYS: &[&str] = &[
    "DATABASE_URL",
    "RALLY_LISTEN",
    "RALLY_PUBLIC_URL",
    "RALLY_SMTP_URL",
    "RALLY_MAIL_DIR",
    "RALLY_MAIL_FROM",
    "RALLY_POSTCODES_URL",
    "RALLY_MEMBERS_API_URL",
    "RALLY_SECRET_KEY",
    "RALLY_LOG_FORMAT",
    "RALLY_RATE_LIMITS",
    "RALLY_LETTER_RETENTION",
    "RALLY_SIGNATURE_RETENTION",
    "RALLY_QUICK_EXIT_URL",
    "RALLY_WORKERS",
    "RALLY_DELIVERY_PACE",
    "RALLY_UPDATE_RATE",
    "RALLY_DKIM_SELECTOR",
    "RALLY_DKIM_KEY_FILE",
    "RALLY_TRUSTED_PROXIES",
    "RALLY_OUTBOX_LEASE",
];

impl Config {
    /// Environment first, then `rally.toml` (or the file named by `RALLY_CONFIG`), then defaults.
    pub fn load() -> anyhow::Result<Self> {
        let mut values = HashMap::new();
        let file = std::env::var("RALLY_CONFIG").unwrap_or_else(|_| "rally.toml".into());
        if let Ok(text) = std::fs::read_to_string(&file) {
            let table: toml::Table = text.parse().with_context(|| format!("{file} is not valid TOML"))?;
            for (key, value) in table {
                let key = key.to_ascii_uppercase();
                if !KEYS.contains(&key.as_str()) {
                    bail!("{file}: unknown setting {key}");
                }
                let value = match value {
                    toml::Value::String(s) => s,
                    other => other.to_string(),
                };
                values.insert(key, value);
            }
        }
        for key in KEYS {
            if let Ok(v) = std::env::var(key) {
                values.insert(key.to_string(), v);
            }
        }
        Self::from_map(&values)
    }

    pub fn from_map(values: &HashMap<String, String>) -> anyhow::Result<Self> {
        let get = |k: &str| values.get(k).map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let or = |k: &str, d: &str| get(k).unwrap_or_else(|| d.to_string());
        let log_format = match or("RALLY_LOG_FORMAT", "pretty").as_str() {
            "pretty" => LogFormat::Pretty,
            "json" => LogFormat::Json,
            other => bail!("RALLY_LOG_FORMAT must be `pretty` or `json`, not `{other}`"),
        };
        let rate_limits = match or("RALLY_RATE_LIMITS", "on").as_str() {
            "on" | "true" | "1" => true,
            "off" | "false" | "0" => false,
            other => bail!("RALLY_RATE_LIMITS must be `on` or `off`, not `{other}`"),
        };
        let duration = |k: &str, d: &str| -> anyhow::Result<Duration> {
            let text = or(k, d);
            humantime::parse_duration(&text).with_context(|| format!("{k} must be a duration such as 0s, 12h or 28d, not `{text}`"))
        };
        let workers = match get("RALLY_WORKERS") {
            Some(w) => Some(w.parse().context("RALLY_WORKERS must be a whole number")?),
            None => None,
        };
        let delivery_pace_per_minute: i64 = or("RALLY_DELIVERY_PACE", "30").parse().context("RALLY_DELIVERY_PACE must be a whole number of letters a minute")?;
        let update_rate_per_minute: i64 = or("RALLY_UPDATE_RATE", "6000").parse().context("RALLY_UPDATE_RATE must be a whole number of emails a minute")?;
        if update_rate_per_minute < 1 {
            bail!("RALLY_UPDATE_RATE must be at least 1");
        }
        if delivery_pace_per_minute < 1 {
            bail!("RALLY_DELIVERY_PACE must be at least 1");
        }
        let dkim_selector = get("RALLY_DKIM_SELECTOR");
        let dkim_key_file = get("RALLY_DKIM_KEY_FILE").map(PathBuf::from);
        if dkim_selector.is_some() != dkim_key_file.is_some() {
            bail!("DKIM needs both RALLY_DKIM_SELECTOR and RALLY_DKIM_KEY_FILE");
        }
        let trusted_proxies = get("RALLY_TRUSTED_PROXIES")
            .unwrap_or_default()
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .with_context(|| format!("RALLY_TRUSTED_PROXIES: `{p}` is not an address or CIDR block"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let public_url = or("RALLY_PUBLIC_URL", "http://127.0.0.1:8080").trim_end_matches('/').to_string();
        Ok(Config {
            database_url: or("DATABASE_URL", "sqlite://rally.db"),
            listen: or("RALLY_LISTEN", "127.0.0.1:8080"),
            public_url,
            smtp_url: get("RALLY_SMTP_URL"),
            mail_dir: PathBuf::from(or("RALLY_MAIL_DIR", "./mail")),
            mail_from: or("RALLY_MAIL_FROM", "Rally <rally@localhost>"),
            postcodes_url: or("RALLY_POSTCODES_URL", "https://api.postcodes.io").trim_end_matches('/').to_string(),
            members_api_url: or("RALLY_MEMBERS_API_URL", "https://members-api.parliament.uk").trim_end_matches('/').to_string(),
            secret_key: get("RALLY_SECRET_KEY"),
            log_format,
            rate_limits,
            letter_retention: duration("RALLY_LETTER_RETENTION", "28d")?,
            signature_retention: duration("RALLY_SIGNATURE_RETENTION", "183d")?,
            quick_exit_url: or("RALLY_QUICK_EXIT_URL", "https://www.bbc.co.uk/weather"),
            workers,
            delivery_pace_per_minute,
            update_rate_per_minute,
            dkim_selector,
            dkim_key_file,
            trusted_proxies,
            outbox_lease: outbox_lease(duration("RALLY_OUTBOX_LEASE", "2m")?)?,
        })
    }
}

/// Shorter than a second would let a slow SMTP conversation be taken over mid-send.
fn outbox_lease(d: Duration) -> anyhow::Result<Duration> {
    if d < Duration::from_secs(1) {
        bail!("RALLY_OUTBOX_LEASE must be at least 1s");
    }
    Ok(d)
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("database_url", &redact_url(&self.database_url))
            .field("listen", &self.listen)
            .field("public_url", &self.public_url)
            .field("smtp_url", &self.smtp_url.as_deref().map(redact_url))
            .field("mail_dir", &self.mail_dir)
            .field("postcodes_url", &self.postcodes_url)
            .field("members_api_url", &self.members_api_url)
            .field("secret_key", &self.secret_key.as_ref().map(|_| "<set>"))
            .field("rate_limits", &self.rate_limits)
            .finish_non_exhaustive()
    }
}

/// Drops any password from a URL before it is shown.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => raw.to_string(),
    }
}
