/// The writer's own words, added to a template letter. Kept exactly as written (line breaks
/// included) and only ever inserted as text: it is never read as a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalEdit(String);

pub const PERSONAL_EDIT_MAX: usize = 2000;

impl PersonalEdit {
    /// `None` when blank.
    pub fn parse(raw: &str) -> Result<Option<Self>, String> {
        let text = raw.replace("\r\n", "\n").replace('\r', "\n");
        if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return Err("Your words can't contain control characters.".into());
        }
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        let n = text.chars().count();
        if n > PERSONAL_EDIT_MAX {
            return Err(format!("Keep your words to {PERSONAL_EDIT_MAX} characters or fewer (you have {n})."));
        }
        Ok(Some(PersonalEdit(text.to_string())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::PersonalEdit;

    #[test]
    fn keeps_text_verbatim_and_limits_length() {
        let e = PersonalEdit::parse("As a survivor, I {{ know }}\r\n{% if x %}this{% endif %}").unwrap().unwrap();
        assert_eq!(e.as_str(), "As a survivor, I {{ know }}\n{% if x %}this{% endif %}");
        assert_eq!(PersonalEdit::parse("   ").unwrap(), None);
        assert!(PersonalEdit::parse(&"a".repeat(2001)).is_err());
        assert!(PersonalEdit::parse(&"é".repeat(2000)).unwrap().is_some());
        assert!(PersonalEdit::parse("bell\u{7}").is_err());
    }
}
