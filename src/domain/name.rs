/// A person's name as they wrote it: 1–100 characters, no control characters.
/// A line break is refused rather than cleaned: it would otherwise end up in an email header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

pub const NAME_MAX: usize = 100;

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        if raw.chars().any(char::is_control) {
            return Err("Your name can't contain line breaks, tabs or other control characters.".into());
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("Enter your name.".into());
        }
        if trimmed.chars().count() > NAME_MAX {
            return Err(format!("Your name must be {NAME_MAX} characters or fewer."));
        }
        Ok(PersonName(trimmed.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What a public list of signers shows: the first word only.
    pub fn first_name(&self) -> &str {
        self.0.split_whitespace().next().unwrap_or(&self.0)
    }
}

impl AsRef<str> for PersonName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_names_and_trims() {
        assert_eq!(PersonName::parse("  Siân O'Brien ").unwrap().as_str(), "Siân O'Brien");
        assert_eq!(PersonName::parse("Ngozi Adichie").unwrap().first_name(), "Ngozi");
    }

    #[test]
    fn refuses_empty_long_and_control_characters() {
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse(&"a".repeat(101)).is_err());
        assert!(PersonName::parse(&"é".repeat(100)).is_ok());
        assert!(PersonName::parse("Eve\r\nBcc: x@example.com").is_err());
        assert!(PersonName::parse("Eve\u{0}").is_err());
    }
}
