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
        // Invisible and direction-changing characters could make a name on a public list look
        // empty or read backwards; line and paragraph separators could break a line.
        if raw.chars().any(is_format_or_separator) {
            return Err("Your name can't contain invisible or text-direction characters.".into());
        }
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err("Enter your name.".into());
        }
        if !trimmed.chars().any(char::is_alphanumeric) {
            return Err("Enter your name using letters.".into());
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

/// Zero-width spaces, bidirectional controls and the Unicode line/paragraph separators. The
/// zero-width (non-)joiners are allowed: Persian and Indic names need them.
pub fn is_format_or_separator(c: char) -> bool {
    matches!(c, '\u{200B}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{2069}' | '\u{061C}' | '\u{FEFF}' | '\u{2028}' | '\u{2029}')
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
    fn refuses_invisible_and_reversing_names() {
        for bad in ["\u{200B}\u{200B}", "Eve\u{202E}lanigiro", "Ann\u{2028}Lee", "\u{FEFF}", "!!!"] {
            assert!(PersonName::parse(bad).is_err(), "{bad:?}");
        }
        // Joiners inside scripts that need them are not the problem; names in any script pass.
        assert!(PersonName::parse("Zoë Ōkubo-Ní Bhriain").is_ok());
        assert!(PersonName::parse("Mehr\u{200C}nāz").is_ok());
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
