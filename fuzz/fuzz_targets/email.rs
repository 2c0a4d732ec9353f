//! EmailAddress::parse on any text: never panics; an accepted address is one line with no
//! control characters or spaces, at most 254 bytes, parses to itself, and the mailer takes it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rally::domain::EmailAddress;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    if let Ok(e) = EmailAddress::parse(&raw) {
        let s = e.as_str();
        assert!(!s.chars().any(|c| c.is_control() || c.is_whitespace()), "{s:?}");
        assert!(s.len() <= 254, "{s:?}");
        assert_eq!(s, raw.trim());
        let (_, domain) = s.rsplit_once('@').expect("an @");
        assert!(domain.contains('.') && !domain.ends_with('.'), "{s:?}");
        assert_eq!(EmailAddress::parse(s).as_ref(), Ok(&e));
        let key = e.mailbox_key();
        assert!(!key.chars().any(char::is_control) && key.contains('@'), "{key:?}");
        if let Err(err) = rally::services::mailer::mailbox(Some("Sam Writer"), s) {
            panic!("accepted {s:?} but the mailer refuses it: {err:?}");
        }
    }
});
