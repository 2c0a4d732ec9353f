//! The people's-words parsers on any text: PersonName, the PostalAddress lines and PersonalEdit.
//! Never panic; accepted values are trimmed, within their limits, and carry no control
//! character (a personal edit may keep line breaks and tabs, never a carriage return).
#![no_main]
use libfuzzer_sys::fuzz_target;
use rally::domain::{PersonName, PersonalEdit, PostalAddress, PERSONAL_EDIT_MAX};

fn single_line(what: &str, s: &str, raw: &str) {
    assert!(!s.chars().any(char::is_control), "{what} {s:?} from {raw:?}");
    assert_eq!(s, raw.trim(), "{what}");
    assert!(s.chars().count() <= 100, "{what} {s:?}");
}

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    let refusable = raw.chars().any(char::is_control) || raw.trim().is_empty() || raw.trim().chars().count() > 100;
    match PersonName::parse(&raw) {
        Ok(n) => {
            single_line("name", n.as_str(), &raw);
            assert!(!n.as_str().is_empty());
            assert_eq!(PersonName::parse(n.as_str()).as_ref(), Ok(&n));
            let first = n.first_name();
            assert!(!first.is_empty() && n.as_str().starts_with(first) && !first.chars().any(char::is_whitespace));
            rally::services::mailer::mailbox(Some(n.as_str()), "jo@example.com").expect("the mailer takes any accepted name");
        }
        Err(_) => assert!(refusable, "name {raw:?} refused"),
    }
    for (what, r) in [
        ("line 1", PostalAddress::parse_line1(&raw).map(Some)),
        ("line 2", PostalAddress::parse_line2(&raw)),
        ("town", PostalAddress::parse_town(&raw).map(Some)),
    ] {
        match r {
            Ok(Some(l)) => single_line(what, &l, &raw),
            Ok(None) => assert!(what == "line 2" && raw.trim().is_empty()),
            Err(_) => assert!(refusable, "{what} {raw:?} refused"),
        }
    }
    let normal = raw.replace("\r\n", "\n").replace('\r', "\n");
    match PersonalEdit::parse(&raw) {
        Ok(Some(e)) => {
            let s = e.as_str();
            assert!(!s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') && !s.contains('\r'), "{s:?}");
            assert_eq!(s, normal.trim());
            assert!(!s.is_empty() && s.chars().count() <= PERSONAL_EDIT_MAX);
            assert_eq!(PersonalEdit::parse(s), Ok(Some(e.clone())));
        }
        Ok(None) => assert!(normal.trim().is_empty()),
        Err(_) => assert!(normal.chars().any(|c| c.is_control() && c != '\n' && c != '\t') || normal.trim().chars().count() > PERSONAL_EDIT_MAX),
    }
});
