//! UkPostcode::parse on any text: never panics; what it accepts is in normal form and parses to itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rally::domain::UkPostcode;

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data);
    if let Ok(p) = UkPostcode::parse(&raw) {
        let s = p.as_str();
        assert!(s.len() <= 8, "{raw:?} gave {s:?}");
        let (out, inw) = s.split_once(' ').expect("one space");
        assert!((2..=4).contains(&out.len()) && inw.len() == 3 && !inw.contains(' '), "{raw:?} gave {s:?}");
        assert!(s.chars().all(|c| c == ' ' || c.is_ascii_uppercase() || c.is_ascii_digit()), "{raw:?} gave {s:?}");
        assert_eq!(UkPostcode::parse(s).as_ref(), Ok(&p));
        assert_eq!(UkPostcode::parse(&s.replace(' ', "")).as_ref(), Ok(&p));
        assert_eq!(UkPostcode::parse(&s.to_lowercase()).as_ref(), Ok(&p));
    }
});
