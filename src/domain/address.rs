/// A postal address as a writer gives it. MPs answer constituents only, so line 1 and the town
/// are required; no line may carry a line break or other control character.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PostalAddress {
    pub line1: String,
    pub line2: Option<String>,
    pub town: String,
}

const LINE_MAX: usize = 100;

fn line(raw: &str, what: &str, required: bool) -> Result<Option<String>, String> {
    if raw.chars().any(char::is_control) {
        return Err(format!("{what} can't contain line breaks or other control characters."));
    }
    let t = raw.trim();
    if t.is_empty() {
        return if required { Err(format!("Enter {}.", what.to_lowercase())) } else { Ok(None) };
    }
    if t.chars().count() > LINE_MAX {
        return Err(format!("{what} must be {LINE_MAX} characters or fewer."));
    }
    Ok(Some(t.to_string()))
}

impl PostalAddress {
    pub fn parse_line1(raw: &str) -> Result<String, String> {
        line(raw, "The first line of your address", true).map(|l| l.unwrap_or_default())
    }
    pub fn parse_line2(raw: &str) -> Result<Option<String>, String> {
        line(raw, "The second line of your address", false)
    }
    pub fn parse_town(raw: &str) -> Result<String, String> {
        line(raw, "Your town or city", true).map(|l| l.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::PostalAddress;

    #[test]
    fn lines_are_checked() {
        assert_eq!(PostalAddress::parse_line1(" 1 High Street ").unwrap(), "1 High Street");
        assert!(PostalAddress::parse_line1("").is_err());
        assert!(PostalAddress::parse_line1("1 High St\r\nBcc: x@y.z").is_err());
        assert_eq!(PostalAddress::parse_line2("  ").unwrap(), None);
        assert!(PostalAddress::parse_town(&"x".repeat(101)).is_err());
    }
}
