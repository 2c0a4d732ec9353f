//! Email delivery: SMTP when `RALLY_SMTP_URL` is set, otherwise `.eml` files under
//! `RALLY_MAIL_DIR`, so a default install never sends anything anywhere.
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use std::sync::Arc;

use lettre::message::dkim::{DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm, DkimSigningKey};
use lettre::message::header::HeaderName;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

#[derive(Clone)]
pub struct Mailer {
    transport: Transport,
    /// DKIM signing, when a key is configured, so receiving servers can verify mail came from us.
    dkim: Option<Arc<Dkim>>,
}

/// Two signing set-ups: bulk mail (updates, digests) also signs its `List-Unsubscribe` headers,
/// as RFC 8058 requires before mail programs offer one-click unsubscribe; other mail does not
/// have those headers, and signing an absent header would be refused by some verifiers.
struct Dkim {
    plain: DkimConfig,
    bulk: DkimConfig,
}

#[derive(Clone)]
enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Files(AsyncFileTransport<Tokio1Executor>),
}

/// DKIM settings: the selector published in DNS and the private key (RSA PKCS#1 PEM, or an
/// Ed25519 key as base64), signing for the domain of the From address.
pub struct DkimSettings {
    pub selector: String,
    pub key: String,
    pub domain: String,
}

/// One plain-text email, before the platform's From address is applied.
#[derive(Debug, Clone)]
pub struct OutgoingEmail {
    pub to: Mailbox,
    pub subject: String,
    pub body: String,
    pub reply_to: Option<Mailbox>,
    /// Shown as the From display name (e.g. a letter writer's name); the address stays ours.
    pub from_name: Option<String>,
    pub also_to: Vec<Mailbox>,
    /// One-click unsubscribe address for bulk mail (RFC 8058): sets `List-Unsubscribe` and
    /// `List-Unsubscribe-Post`, so mail programs can offer their own unsubscribe button.
    pub list_unsubscribe: Option<String>,
    /// An HTML alternative to the plain text (updates written in Markdown).
    pub html: Option<String>,
}

impl OutgoingEmail {
    pub fn plain(to: Mailbox, subject: String, body: String) -> Self {
        OutgoingEmail { to, subject, body, reply_to: None, from_name: None, also_to: Vec::new(), list_unsubscribe: None, html: None }
    }
}

/// `List-Unsubscribe: <https://…>`.
#[derive(Clone)]
struct ListUnsubscribe(String);

impl lettre::message::header::Header for ListUnsubscribe {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.trim().trim_start_matches('<').trim_end_matches('>').to_string()))
    }
    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), format!("<{}>", self.0))
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click`: a POST to the address above
/// unsubscribes without a further page.
#[derive(Clone)]
struct ListUnsubscribePost;

impl lettre::message::header::Header for ListUnsubscribePost {
    fn name() -> lettre::message::header::HeaderName {
        lettre::message::header::HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost)
    }
    fn display(&self) -> lettre::message::header::HeaderValue {
        lettre::message::header::HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".to_string())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The receiving server refused for good (5xx): retrying will not help.
    #[error("refused permanently: {0}")]
    Permanent(String),
    #[error("temporary failure: {0}")]
    Transient(String),
}

/// An email still to be written from its template. It is prepared inside a database transaction
/// (which may make link tokens) and rendered after it, so the single writer is not kept busy
/// rendering text.
pub struct Draft {
    pub to: Mailbox,
    pub template: &'static str,
    pub ctx: tera::Context,
    /// Further recipients on the same message (staff notices go to every staff member at once).
    pub also_to: Vec<Mailbox>,
    /// See `OutgoingEmail::list_unsubscribe`.
    pub list_unsubscribe: Option<String>,
    /// An HTML page template rendered with the same context as the HTML alternative.
    pub html_template: Option<&'static str>,
}

impl Draft {
    pub fn new(to: Mailbox, template: &'static str, ctx: tera::Context) -> Self {
        Draft { to, template, ctx, also_to: Vec::new(), list_unsubscribe: None, html_template: None }
    }

    pub fn render(self) -> Result<OutgoingEmail, crate::error::AppError> {
        let (subject, body) = crate::templates::render_email(self.template, &self.ctx).map_err(crate::error::AppError::internal)?;
        let html = match self.html_template {
            Some(name) => Some(crate::templates::TEMPLATES.render(name, &self.ctx).map_err(crate::error::AppError::internal)?),
            None => None,
        };
        Ok(OutgoingEmail { also_to: self.also_to, list_unsubscribe: self.list_unsubscribe, html, ..OutgoingEmail::plain(self.to, subject, body) })
    }
}

/// A stored name and address as a recipient. Addresses were checked when they were given, so a
/// failure here is ours, not the supporter's.
pub fn mailbox(name: Option<&str>, email: &str) -> Result<Mailbox, crate::error::AppError> {
    let address = email.parse().map_err(|e| crate::error::AppError::internal(anyhow::anyhow!("stored address does not parse: {e}")))?;
    Ok(Mailbox::new(name.map(str::to_string), address))
}

impl Mailer {
    pub fn from_config(smtp_url: Option<&str>, mail_dir: &Path, dkim: Option<DkimSettings>) -> anyhow::Result<Self> {
        let transport = match smtp_url {
            Some(url) => Transport::Smtp(smtp_transport(url)?),
            None => {
                std::fs::create_dir_all(mail_dir).with_context(|| format!("could not create mail folder {}", mail_dir.display()))?;
                Transport::Files(AsyncFileTransport::<Tokio1Executor>::new(mail_dir))
            }
        };
        let dkim = match dkim {
            Some(d) => {
                let algorithm = if d.key.trim_start().starts_with("-----BEGIN") { DkimSigningAlgorithm::Rsa } else { DkimSigningAlgorithm::Ed25519 };
                let key = || DkimSigningKey::new(d.key.trim(), algorithm).map_err(|e| anyhow::anyhow!("the DKIM key could not be read ({algorithm}): {e}"));
                let signed = |extra: &[&'static str]| {
                    let mut headers: Vec<HeaderName> = ["From", "Subject", "To", "Date", "Message-ID"].into_iter().map(HeaderName::new_from_ascii_str).collect();
                    headers.extend(extra.iter().copied().map(HeaderName::new_from_ascii_str));
                    headers
                };
                let canonicalization = DkimCanonicalization { header: DkimCanonicalizationType::Relaxed, body: DkimCanonicalizationType::Relaxed };
                Some(Arc::new(Dkim {
                    plain: DkimConfig::new(d.selector.clone(), d.domain.clone(), key()?, signed(&[]), canonicalization),
                    bulk: DkimConfig::new(d.selector, d.domain, key()?, signed(&["List-Unsubscribe", "List-Unsubscribe-Post"]), canonicalization),
                }))
            }
            None => None,
        };
        Ok(Mailer { transport, dkim })
    }

    pub async fn send(&self, from: &Mailbox, email: OutgoingEmail) -> Result<(), SendError> {
        let from = match &email.from_name {
            Some(name) => Mailbox::new(Some(name.clone()), from.email.clone()),
            None => from.clone(),
        };
        // Our own Message-ID on our own domain: lettre's default would name this machine.
        let message_id = format!("<{}@{}>", hex::encode(rand::random::<[u8; 16]>()), from.email.domain());
        let mut builder = Message::builder()
            .from(from)
            .to(email.to)
            .subject(email.subject)
            .message_id(Some(message_id))
            .date_now();
        for also in email.also_to {
            builder = builder.to(also);
        }
        if let Some(reply_to) = email.reply_to {
            builder = builder.reply_to(reply_to);
        }
        let bulk = email.list_unsubscribe.is_some();
        if let Some(url) = email.list_unsubscribe {
            builder = builder.header(ListUnsubscribe(url)).header(ListUnsubscribePost);
        }
        let built = match email.html {
            Some(html) => builder.multipart(MultiPart::alternative_plain_html(email.body, html)),
            None => builder.header(ContentType::TEXT_PLAIN).body(email.body),
        };
        let mut message = built.map_err(|e| SendError::Permanent(format!("could not build the message: {e}")))?;
        if let Some(dkim) = &self.dkim {
            message.sign(if bulk { &dkim.bulk } else { &dkim.plain });
        }
        match &self.transport {
            Transport::Smtp(t) => t.send(message).await.map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    SendError::Permanent(e.to_string())
                } else {
                    SendError::Transient(e.to_string())
                }
            }),
            Transport::Files(t) => t.send(message).await.map(|_| ()).map_err(|e| SendError::Transient(e.to_string())),
        }
    }
}

/// `smtp://host:port` (plain), `smtp://host:port?tls=starttls`, `smtps://host:port` (TLS from the
/// first byte), each with optional `user:pass@`.
fn smtp_transport(raw: &str) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    let url = url::Url::parse(raw).context("RALLY_SMTP_URL is not a URL")?;
    let host = url.host_str().context("RALLY_SMTP_URL names no host")?.to_string();
    let tls = url.query_pairs().find(|(k, _)| k == "tls").map(|(_, v)| v.to_string());
    let mut builder = match (url.scheme(), tls.as_deref()) {
        ("smtp", None | Some("none")) => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host).port(url.port().unwrap_or(25)),
        ("smtp", Some("starttls")) => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)?.port(url.port().unwrap_or(587)),
        ("smtps", _) => AsyncSmtpTransport::<Tokio1Executor>::relay(&host)?.port(url.port().unwrap_or(465)),
        (scheme, tls) => bail!("RALLY_SMTP_URL: unsupported scheme `{scheme}` or tls `{}`", tls.unwrap_or("")),
    };
    if !url.username().is_empty() {
        let user = percent_decode(url.username());
        let pass = percent_decode(url.password().unwrap_or(""));
        builder = builder.credentials(Credentials::new(user, pass));
    }
    Ok(builder.timeout(Some(Duration::from_secs(15))).build())
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    /// The signed header list of the one message written to `dir`.
    async fn signed_headers(email: OutgoingEmail) -> String {
        let dir = tempfile::tempdir().unwrap();
        let key = base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>());
        let dkim = DkimSettings { selector: "s1".into(), key, domain: "example.org".into() };
        let mailer = Mailer::from_config(None, dir.path(), Some(dkim)).unwrap();
        mailer.send(&"Rally <rally@example.org>".parse().unwrap(), email).await.unwrap();
        let file = std::fs::read_dir(dir.path()).unwrap().next().unwrap().unwrap().path();
        let raw = std::fs::read_to_string(file).unwrap().replace("\r\n ", " ");
        let sig = raw.lines().find(|l| l.starts_with("DKIM-Signature:")).expect("signed").to_string();
        sig.split(';').find_map(|p| p.trim().strip_prefix("h=").map(str::to_string)).expect("a header list")
    }

    #[tokio::test]
    async fn bulk_mail_signs_its_unsubscribe_headers() {
        let to: Mailbox = "Sam <sam@example.com>".parse().unwrap();
        let plain = signed_headers(OutgoingEmail::plain(to.clone(), "Hello".into(), "Body".into())).await.to_ascii_lowercase();
        assert!(plain.contains("from") && plain.contains("message-id") && !plain.contains("list-unsubscribe"), "{plain}");
        let bulk = OutgoingEmail { list_unsubscribe: Some("https://rally.example/unsubscribe/x".into()), ..OutgoingEmail::plain(to, "News".into(), "Body".into()) };
        let bulk = signed_headers(bulk).await.to_ascii_lowercase();
        assert!(bulk.contains("list-unsubscribe:list-unsubscribe-post") || (bulk.contains("list-unsubscribe") && bulk.contains("list-unsubscribe-post")), "{bulk}");
    }
}
