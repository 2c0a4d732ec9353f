use validator::ValidateEmail;

/// An email address with real address syntax and at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

pub const EMAIL_MAX: usize = 254;

impl EmailAddress {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("Enter your email address.".into());
        }
        if trimmed.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("An email address can't contain spaces or line breaks.".into());
        }
        if trimmed.len() > EMAIL_MAX {
            return Err(format!("An email address must be {EMAIL_MAX} characters or fewer."));
        }
        let domain_has_dot = trimmed.rsplit_once('@').is_some_and(|(_, d)| d.contains('.') && !d.ends_with('.'));
        // Also what the mailer will accept, so an address taken here can always be written to
        // (validator allows local parts like `.` or `a..b` that SMTP does not).
        let mailable = trimmed.parse::<lettre::Address>().is_ok();
        if !trimmed.validate_email() || !domain_has_dot || !mailable {
            return Err("Enter an email address in the right format, like name@example.com.".into());
        }
        Ok(EmailAddress(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key that decides whether two addresses reach the same mailbox, so a repeat signer is
    /// not counted twice. Addresses compare case-insensitively; for Gmail, whose servers ignore
    /// dots and `+tags` in the local part, those are dropped too. Other providers treat `+tags`
    /// differently, so they are left alone there.
    pub fn mailbox_key(&self) -> String {
        let lower = self.0.to_lowercase();
        let Some((local, domain)) = lower.rsplit_once('@') else { return lower };
        if domain == "gmail.com" || domain == "googlemail.com" {
            let local = local.split('+').next().unwrap_or(local).replace('.', "");
            format!("{local}@gmail.com")
        } else {
            lower
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_addresses_no_mail_server_would_take() {
        // Found by the fuzzer: these passed the syntax check but the mailer refused them.
        for bad in [".@a.uk", "a..b@example.com", ".a@example.com"] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_and_keys_mailboxes() {
        let a = EmailAddress::parse(" Jo.Bloggs+petition@GoogleMail.com ").unwrap();
        assert_eq!(a.as_str(), "Jo.Bloggs+petition@GoogleMail.com");
        assert_eq!(a.mailbox_key(), "jobloggs@gmail.com");
        let b = EmailAddress::parse("Jo.Bloggs+x@Example.org").unwrap();
        assert_eq!(b.mailbox_key(), "jo.bloggs+x@example.org");
    }

    #[test]
    fn refuses_bad_addresses() {
        for bad in ["", "jo", "jo@", "@example.com", "jo@example", "jo bloggs@example.com", "jo@example.com\r\nBcc: x@y.z"] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} should be refused");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert!(EmailAddress::parse(&long).is_err());
    }
}
