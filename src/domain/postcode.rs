use std::sync::LazyLock;

use regex::Regex;

/// A UK postcode in its normal form: upper case, one space before the last three characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UkPostcode(String);

// Outward code (area, district, optional sub-district) then inward code (sector digit, unit letters).
static SHAPE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^([A-Z]{1,2}[0-9][A-Z0-9]?|GIR)([0-9][A-Z]{2})$").expect("postcode regex"));

impl UkPostcode {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase();
        if compact.is_empty() {
            return Err("Enter your postcode.".into());
        }
        if compact.len() > 8 {
            return Err("Enter a real UK postcode, like SW1A 1AA.".into());
        }
        match SHAPE.captures(&compact) {
            Some(c) if &c[1] != "GIR" || &c[2] == "0AA" => Ok(UkPostcode(format!("{} {}", &c[1], &c[2]))),
            _ => Err("Enter a real UK postcode, like SW1A 1AA.".into()),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises() {
        assert_eq!(UkPostcode::parse("sw1a1aa").unwrap().as_str(), "SW1A 1AA");
        assert_eq!(UkPostcode::parse(" ne1  4st ").unwrap().as_str(), "NE1 4ST");
        assert_eq!(UkPostcode::parse("m11ae").unwrap().as_str(), "M1 1AE");
        assert_eq!(UkPostcode::parse("B33 8TH").unwrap().as_str(), "B33 8TH");
    }

    #[test]
    fn refuses_non_postcodes() {
        for bad in ["", "SW1A", "12345", "SW1A 1AAA", "ZZZZ 1AA", "GIR 1AA", "SW1A\n1AA'"] {
            assert!(UkPostcode::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }
}
