//! Fuzzing inside `cargo test`: property tests of the parsers at the edge (postcodes, emails,
//! names, addresses, personal edits, JSON and form bodies), of letter rendering with arbitrary
//! personal edits, and of the signing endpoints over HTTP.
//!
//! A quick smoke run by default (256 cases a property). A long run:
//! `PROPTEST_CASES=100000 cargo test --test api fuzzing`. The coverage-guided targets for
//! `cargo fuzz` are under `fuzz/` (see fuzz/README.md).
use std::collections::HashMap;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use rally::domain::{EmailAddress, PersonName, PersonalEdit, PostalAddress, UkPostcode, PERSONAL_EDIT_MAX};
use rally::letters::render::{render, CampaignContext, ConstituencyContext, LetterContext, TargetContext, WriterContext};
use rally::routes::input::Input;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Backend, SLUG};

/// `PROPTEST_CASES` (default 256) decides how many cases each property runs. Failures are not
/// written to a regressions file: proptest prints the shrunk input instead.
fn config() -> ProptestConfig {
    ProptestConfig { failure_persistence: None, ..ProptestConfig::default() }
}

// ---------------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------------

/// Any `char` at all, control characters and unpaired-looking oddities included (proptest's
/// `any::<String>()` leaves out control characters, so it is not enough here).
fn any_text(max: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(any::<char>(), 0..max).prop_map(String::from_iter)
}

/// Pieces that have broken parsers and mail headers before, glued together at random.
fn nasty_piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\r\n".to_string()),
        Just("\n".to_string()),
        Just("\r".to_string()),
        Just("\t".to_string()),
        Just(" ".to_string()),
        Just("\u{0}".to_string()),
        Just("\u{7}".to_string()),
        Just("\u{1b}[31m".to_string()),
        Just("\u{7f}".to_string()),
        Just("\u{85}".to_string()),
        Just("\u{a0}".to_string()),
        Just("\u{2028}".to_string()),
        Just("\u{2029}".to_string()),
        Just("\u{200b}".to_string()),
        Just("\u{202e}".to_string()),
        Just("\u{feff}".to_string()),
        Just("\u{3000}".to_string()),
        Just("\r\nBcc: victim@example.com\r\n".to_string()),
        Just("\nSubject: injected".to_string()),
        Just("=?utf-8?b?AA==?=".to_string()),
        Just("\"".to_string()),
        Just("<".to_string()),
        Just("@".to_string()),
        Just(".".to_string()),
        Just("{{ writer.name }}".to_string()),
        Just("{{ get_env(name=\"PATH\") }}".to_string()),
        Just("{% for x in y %}".to_string()),
        Just("{% endfor %}".to_string()),
        Just("{% raw %}".to_string()),
        Just("{% endraw %}".to_string()),
        Just("{# comment".to_string()),
        Just("#}".to_string()),
        Just("}}".to_string()),
        Just("{%".to_string()),
        Just("ß".to_string()),
        Just("ſ".to_string()),
        Just("ı".to_string()),
        Just("\u{212a}".to_string()),
        Just("é".to_string()),
        Just("e\u{301}".to_string()),
        Just("👩🏽‍⚖️".to_string()),
        Just("SW1A 1AA".to_string()),
        Just("jo@example.com".to_string()),
        "[a-zA-Z0-9]{1,8}",
        any::<char>().prop_map(String::from),
    ]
}

fn nasty(max_pieces: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        any_text(200),
        any::<String>(),
        proptest::collection::vec(nasty_piece(), 0..max_pieces).prop_map(|v| v.concat()),
    ]
}

/// Real UK postcode shapes: A9 9AA, A99 9AA, AA9 9AA, AA99 9AA, A9A 9AA, AA9A 9AA.
fn outward() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-PR-UWYZ][0-9]",
        "[A-PR-UWYZ][0-9]{2}",
        "[A-PR-UWYZ][A-HK-Y][0-9]",
        "[A-PR-UWYZ][A-HK-Y][0-9]{2}",
        "[A-PR-UWYZ][0-9][A-HJKPSTUW]",
        "[A-PR-UWYZ][A-HK-Y][0-9][ABEHMNPRVWXY]",
    ]
}

fn inward() -> impl Strategy<Value = String> {
    "[0-9][ABD-HJLNP-UW-Z]{2}"
}

/// The same characters in any case, with any whitespace anywhere.
fn respell(s: &str, lower: &[bool], gaps: &[String]) -> String {
    let mut out = gaps.first().cloned().unwrap_or_default();
    for (i, c) in s.chars().enumerate() {
        out.push(if lower.get(i).copied().unwrap_or(false) { c.to_ascii_lowercase() } else { c });
        out.push_str(gaps.get(i + 1).map(String::as_str).unwrap_or(""));
    }
    out
}

fn gaps() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec(prop_oneof![6 => Just(String::new()), 2 => Just(" ".to_string()), 1 => "[ \t\n\u{a0}\u{3000}]{1,3}"], 10)
}

/// Any JSON value, nested a little.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
        nasty(12).prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(field_name(), inner, 0..6).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop_oneof![
            Just("name".to_string()),
            Just("email".to_string()),
            Just("postcode".to_string()),
            Just("consent".to_string()),
            Just("updates_opt_in".to_string()),
            Just("show_name".to_string()),
        ],
        1 => nasty(4),
    ]
}

/// A signing body: each field valid, wrongly typed or nasty, so some reach the database.
fn signing_body() -> impl Strategy<Value = Value> {
    let name = prop_oneof![12 => "[A-Z][a-z]{1,10} [A-Z][a-z]{1,12}".prop_map(Value::String), 1 => nasty(8).prop_map(Value::String), 1 => json_value()];
    let email = prop_oneof![12 => "[a-z]{1,10}[.+]?[a-z0-9]{0,5}@[a-z]{1,8}\\.(com|org|co\\.uk)".prop_map(Value::String), 1 => nasty(8).prop_map(Value::String), 1 => json_value()];
    let postcode = prop_oneof![12 => (outward(), inward()).prop_map(|(o, i)| Value::String(format!("{o} {i}"))), 1 => nasty(8).prop_map(Value::String), 1 => json_value()];
    let flag = prop_oneof![12 => any::<bool>().prop_map(Value::Bool), 1 => "(on|off|yes|no|1|0|true|false|maybe|)".prop_map(Value::String), 1 => json_value()];
    let consent = prop_oneof![4 => Just(Value::Bool(true)), 1 => flag.clone()];
    (name, email, postcode, consent, flag.clone(), flag, proptest::collection::btree_map(nasty(3), json_value(), 0..3))
        .prop_map(|(name, email, postcode, consent, updates, show, extra)| {
            let mut m: serde_json::Map<String, Value> = extra.into_iter().collect();
            for (k, v) in [("name", name), ("email", email), ("postcode", postcode), ("consent", consent), ("updates_opt_in", updates), ("show_name", show)] {
                m.insert(k.into(), v);
            }
            Value::Object(m)
        })
}

// ---------------------------------------------------------------------------------------------
// Checks shared by the properties
// ---------------------------------------------------------------------------------------------

fn assert_no_control(what: &str, s: &str) {
    assert!(!s.chars().any(char::is_control), "{what} holds a control character: {s:?}");
    assert!(!s.contains('\r') && !s.contains('\n'), "{what} holds a line break: {s:?}");
}

/// Reads every field every way a route might, recursing into nested objects, and checks that
/// a string field reads back as itself and anything else is reported against its field.
fn read_every_field(input: &mut Input, depth: usize) {
    let names: Vec<String> = input.field_names().map(str::to_string).collect();
    for name in &names {
        let raw = input.raw(name).map(str::to_string);
        let before = input.errors.first(name).map(str::to_string);
        let text = input.text(name);
        match &raw {
            Some(s) => {
                assert_eq!(&text, s, "a text field reads back as itself");
                assert_eq!(input.errors.first(name).map(str::to_string), before, "reading text records no error");
            }
            None => assert!(text.is_empty(), "a non-text field reads as empty"),
        }
        let _ = input.optional_text(name);
        let _ = input.flag(name);
        if let Some(mut inner) = input.nested(name) {
            if depth < 8 {
                read_every_field(&mut inner, depth + 1);
            }
        }
    }
    let _ = input.text("a field that is not there");
    assert!(input.errors.first("a field that is not there").is_none(), "a missing field is not an error");
}

fn letter_context(edit: &str, writer_name: &str, line1: &str, line2: Option<&str>, town: &str) -> LetterContext {
    LetterContext {
        target: TargetContext { name: "Alex Baker".into(), salutation: "Dear Alex Baker".into(), title: "MP for Aldershot".into() },
        writer: WriterContext {
            name: writer_name.into(),
            address: PostalAddress { line1: line1.into(), line2: line2.map(str::to_string), town: town.into() },
            postcode: "GU11 1AA".into(),
        },
        constituency: ConstituencyContext { ons_code: "E14001063".into(), name: "Aldershot".into() },
        campaign: CampaignContext { slug: SLUG.into(), title: "Legal advocacy".into() },
        personal_edit: edit.into(),
    }
}

fn shipped_letters() -> Vec<(String, String, String)> {
    rally::seed::shipped()
        .expect("the shipped campaigns load")
        .into_iter()
        .flat_map(|c| {
            let slug = c.file.slug.clone();
            c.letters.into_iter().map(move |(key, subject, body)| (format!("{slug}/{key}"), subject, body))
        })
        .collect()
}

/// Stands in for the writer's words when rendering the letter around them.
const MARKER: &str = "\u{e000}PERSONAL-EDIT\u{e001}";

// ---------------------------------------------------------------------------------------------
// Postcodes
// ---------------------------------------------------------------------------------------------

fn check_postcode_answer(raw: &str) {
    if let Ok(p) = UkPostcode::parse(raw) {
        let s = p.as_str();
        assert!(s.len() <= 8, "{raw:?} gave {s:?}");
        assert_eq!(s.matches(' ').count(), 1, "one space: {raw:?} gave {s:?}");
        let (out, inw) = s.split_once(' ').unwrap();
        assert!((2..=4).contains(&out.len()) && inw.len() == 3, "{raw:?} gave {s:?}");
        assert!(s.chars().all(|c| c == ' ' || c.is_ascii_uppercase() || c.is_ascii_digit()), "{raw:?} gave {s:?}");
        assert_eq!(UkPostcode::parse(s), Ok(p.clone()), "the normal form parses to itself");
        assert_eq!(UkPostcode::parse(&s.replace(' ', "")), Ok(p.clone()), "without its space");
        assert_eq!(UkPostcode::parse(&s.to_lowercase()), Ok(p.clone()), "in lower case");
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn postcode_parse_never_panics_and_normalises(raw in nasty(16)) {
        check_postcode_answer(&raw);
    }

    #[test]
    fn postcode_like_strings_are_judged_by_their_letters_and_digits(raw in "[A-Za-z0-9 \t]{0,12}") {
        check_postcode_answer(&raw);
        // For plain ASCII the rule is simple enough to state directly.
        let compact: String = raw.chars().filter(|c| !c.is_whitespace()).collect::<String>().to_ascii_uppercase();
        let shape = regex::Regex::new(r"^([A-Z]{1,2}[0-9][A-Z0-9]?|GIR)([0-9][A-Z]{2})$").unwrap();
        let expected = shape.captures(&compact).filter(|c| &c[1] != "GIR" || &c[2] == "0AA").map(|c| format!("{} {}", &c[1], &c[2]));
        prop_assert_eq!(UkPostcode::parse(&raw).ok().map(|p| p.as_str().to_string()), expected);
    }

    #[test]
    fn real_postcode_shapes_are_accepted_in_any_case_and_spacing(
        out in outward(), inw in inward(),
        lower in proptest::collection::vec(any::<bool>(), 8), gaps in gaps(),
    ) {
        let normal = format!("{out} {inw}");
        let typed = respell(&format!("{out}{inw}"), &lower, &gaps);
        let parsed = UkPostcode::parse(&typed);
        prop_assert_eq!(parsed.as_ref().map(UkPostcode::as_str), Ok(normal.as_str()), "typed as {:?}", typed);
    }
}

// ---------------------------------------------------------------------------------------------
// Emails, names, addresses, personal edits
// ---------------------------------------------------------------------------------------------

fn check_email_answer(raw: &str) {
    let Ok(e) = EmailAddress::parse(raw) else { return };
    let s = e.as_str();
    assert_no_control("an accepted email address", s);
    assert!(!s.chars().any(char::is_whitespace), "{s:?}");
    assert!(s.len() <= 254, "{s:?} is {} bytes", s.len());
    assert_eq!(s, raw.trim());
    let (_, domain) = s.rsplit_once('@').expect("an @");
    assert!(domain.contains('.') && !domain.ends_with('.'), "{s:?}");
    assert_eq!(EmailAddress::parse(s), Ok(e.clone()), "parses to itself");
    let key = e.mailbox_key();
    assert_no_control("a mailbox key", &key);
    assert!(key.contains('@'), "{key:?}");
}

/// Rally promises that an address it accepted can always be mailed (`services::mailer::mailbox`
/// treats a refusal as an internal error): the mailer must take every accepted address.
fn check_email_is_mailable(raw: &str) -> Result<(), TestCaseError> {
    if let Ok(e) = EmailAddress::parse(raw) {
        let mailbox = rally::services::mailer::mailbox(Some("Sam Writer"), e.as_str());
        prop_assert!(mailbox.is_ok(), "accepted {:?} but the mailer refuses it: {:?}", e.as_str(), mailbox.err());
    }
    Ok(())
}

/// Regression: found by fuzzing (`accepted_emails_can_be_mailed` and the `fuzz/` target
/// `email`), addresses `EmailAddress::parse` used to accept but the mailer (lettre) refuses, so
/// the confirmation email could never be sent. (a) A local part that starts or ends with a dot
/// or holds two dots in a row. (b) An internationalised domain the mailer only takes in ASCII
/// (punycode) form, when that form is longer than 254 characters (here 244 bytes as typed, 272
/// as punycode). (c) Any domain that merely *ends* in an IP literal, whatever comes before it,
/// `<>,;"` included: validator 0.20's literal regex is not anchored at the start.
#[test]
fn accepted_addresses_the_mailer_refuses() {
    let long_idn = format!("x@{}.uk", vec![format!("{}\u{2f4}", "a".repeat(45)); 5].join("."));
    for raw in [
        ".@0.A",
        ".jo@example.com",
        "jo.@example.com",
        "jo..bloggs@example.com",
        long_idn.as_str(),
        "jo@example.com[1.2.3.4]",
        "jo@a.b>,\"<x.y[::1]",
    ] {
        check_email_is_mailable(raw).unwrap_or_else(|e| panic!("{e}"));
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn email_parse_never_panics_and_accepts_only_single_line_addresses(raw in nasty(16)) {
        check_email_answer(&raw);
    }

    #[test]
    fn email_shaped_strings(local in "[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]{1,70}", domain in "[a-zA-Z0-9-]{1,20}(\\.[a-zA-Z0-9-]{1,20}){0,3}\\.?", pad in "[ \t\r\n]{0,2}") {
        let raw = format!("{pad}{local}@{domain}{pad}");
        check_email_answer(&raw);
    }

    #[test]
    fn accepted_emails_can_be_mailed(raw in prop_oneof![
        nasty(16),
        ("[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]{1,70}", "[a-zA-Z0-9-]{1,20}(\\.[a-zA-Z0-9-]{1,20}){0,3}").prop_map(|(l, d)| format!("{l}@{d}")),
    ]) {
        check_email_is_mailable(&raw)?;
    }

    #[test]
    fn ordinary_emails_are_accepted_and_header_injection_is_not(local in "[a-z0-9]{1,20}([.+_-][a-z0-9]{1,10})?", domain in "[a-z0-9]{1,15}(\\.[a-z0-9]{1,15}){0,2}\\.(com|org|uk|io)", tail in nasty(6)) {
        let addr = format!("{local}@{domain}");
        prop_assert_eq!(EmailAddress::parse(&format!(" {addr} ")).map(|e| e.as_str().to_string()), Ok(addr.clone()));
        for sep in ["\r\n", "\n", "\r", "\0", " "] {
            let injected = format!("{addr}{sep}Bcc: x@example.com{tail}");
            prop_assert!(EmailAddress::parse(&injected).is_err(), "{:?} was accepted", injected);
        }
    }

    #[test]
    fn name_parse_never_panics_and_accepts_only_single_line_names(raw in nasty(40)) {
        if let Ok(n) = PersonName::parse(&raw) {
            let s = n.as_str();
            assert_no_control("an accepted name", s);
            prop_assert_eq!(s, raw.trim());
            prop_assert!(!s.is_empty() && s.chars().count() <= 100, "{:?}", s);
            prop_assert_eq!(PersonName::parse(s), Ok(n.clone()));
            let first = n.first_name();
            prop_assert!(!first.is_empty() && s.starts_with(first) && !first.chars().any(char::is_whitespace), "{:?} of {:?}", first, s);
            // A name is shown in a From/To header: the mailer must take it without a new header line.
            let mailbox = rally::services::mailer::mailbox(Some(s), "jo@example.com").expect("a mailbox");
            let header = lettre::Message::builder()
                .from("Rally <rally@example.org>".parse().unwrap())
                .to(mailbox)
                .subject("s")
                .body(String::from("b"))
                .expect("a message")
                .formatted();
            let header = String::from_utf8_lossy(&header);
            let head = header.split("\r\n\r\n").next().unwrap();
            let injected = head.lines().filter(|l| l.starts_with("Bcc:") || l.starts_with("Subject: injected")).count();
            prop_assert_eq!(injected, 0, "the name {:?} added a header:\n{}", s, head);
        } else {
            let t = raw.trim();
            let invisible = raw.chars().any(rally::domain::is_format_or_separator);
            let no_letters = !t.chars().any(char::is_alphanumeric);
            prop_assert!(raw.chars().any(char::is_control) || invisible || no_letters || t.chars().count() > 100, "{:?} was refused", raw);
        }
    }

    #[test]
    fn address_lines_are_single_lines_within_limits(raw in nasty(40)) {
        for (which, parsed) in [
            ("line 1", PostalAddress::parse_line1(&raw).map(Some)),
            ("line 2", PostalAddress::parse_line2(&raw)),
            ("town", PostalAddress::parse_town(&raw).map(Some)),
        ] {
            match parsed {
                Ok(Some(l)) => {
                    assert_no_control(which, &l);
                    prop_assert_eq!(l.as_str(), raw.trim());
                    prop_assert!(!l.is_empty() || which == "line 2", "{} empty", which);
                    prop_assert!(l.chars().count() <= 100);
                }
                Ok(None) => prop_assert!(which == "line 2" && raw.trim().is_empty()),
                Err(_) => {
                    let t = raw.trim();
                    prop_assert!(raw.chars().any(char::is_control) || t.is_empty() || t.chars().count() > 100, "{} refused {:?}", which, raw);
                }
            }
        }
    }

    #[test]
    fn personal_edits_are_kept_verbatim_without_control_characters(raw in prop_oneof![nasty(60), any_text(2100), "(a|é|\r\n| ){1900,2100}"]) {
        let normal = raw.replace("\r\n", "\n").replace('\r', "\n");
        match PersonalEdit::parse(&raw) {
            Ok(Some(e)) => {
                let s = e.as_str();
                prop_assert!(!s.chars().any(|c| c.is_control() && c != '\n' && c != '\t'), "{:?}", s);
                prop_assert!(!s.contains('\r'));
                prop_assert_eq!(s, normal.trim());
                prop_assert!(!s.is_empty() && s.chars().count() <= PERSONAL_EDIT_MAX);
                prop_assert_eq!(PersonalEdit::parse(s), Ok(Some(e.clone())));
            }
            Ok(None) => prop_assert!(normal.trim().is_empty()),
            Err(_) => prop_assert!(
                normal.chars().any(|c| c.is_control() && c != '\n' && c != '\t') || normal.trim().chars().count() > PERSONAL_EDIT_MAX,
                "{:?} was refused", raw
            ),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Body parsers
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn json_bodies_of_any_bytes_give_an_input_or_invalid_json(bytes in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        (json_value(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(v, i, b)| {
            let mut bytes = serde_json::to_vec(&v).unwrap();
            let at = i.index(bytes.len() + 1);
            bytes.insert(at, b);
            bytes
        }),
    ]) {
        match Input::from_json_slice(&bytes) {
            Ok(mut input) => {
                let v: Value = serde_json::from_slice(&bytes).expect("accepted bytes are JSON");
                prop_assert!(v.is_object());
                read_every_field(&mut input, 0);
            }
            Err(e) => prop_assert_eq!(e.code(), "invalid_json", "{}", e),
        }
    }

    #[test]
    fn json_objects_read_back_field_by_field(obj in proptest::collection::btree_map(field_name(), json_value(), 0..8)) {
        let body = serde_json::to_vec(&obj).unwrap();
        let mut input = Input::from_json_slice(&body).expect("an object is accepted");
        for (k, v) in &obj {
            let text = input.text(k);
            match v {
                Value::String(s) => prop_assert_eq!(&text, s),
                Value::Null => {
                    prop_assert_eq!(text, "");
                    prop_assert!(input.errors.first(k).is_none());
                }
                _ => {
                    prop_assert_eq!(text, "");
                    prop_assert_eq!(input.errors.first(k), Some("Must be text."));
                }
            }
        }
        read_every_field(&mut input, 0);
    }

    #[test]
    fn deeply_nested_json_is_refused_or_read(depth in 0usize..5000, kind in 0u8..3) {
        let (open, close) = match kind { 0 => ("[", "]"), 1 => ("{\"a\":", "}"), _ => ("{\"a\":[", "]}") };
        let body = format!("{{\"x\":{}1{}}}", open.repeat(depth), close.repeat(depth));
        match Input::from_json_slice(body.as_bytes()) {
            Ok(mut input) => {
                prop_assert!(depth < 128, "nesting {} was accepted", depth);
                read_every_field(&mut input, 0);
            }
            Err(e) => {
                prop_assert_eq!(e.code(), "invalid_json");
                prop_assert!(depth >= 60, "nesting {} was refused: {}", depth, e);
            }
        }
    }

    #[test]
    fn form_bodies_of_any_bytes_give_text_fields(bytes in prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        "[a-z=&%+0-9A-F;]{0,200}".prop_map(String::into_bytes),
    ]) {
        let mut input = match Input::from_form_slice(&bytes) {
            Ok(input) => input,
            // Refused only when some field, once decoded, is not UTF-8 text.
            Err(_) => {
                let decoded: Vec<u8> = bytes.iter().map(|b| if *b == b'+' { b' ' } else { *b }).collect();
                prop_assert!(percent_encoding::percent_decode(&decoded).decode_utf8().is_err(), "{:?} was refused", bytes);
                return Ok(());
            }
        };
        let names: Vec<String> = input.field_names().map(str::to_string).collect();
        for name in &names {
            prop_assert!(input.raw(name).is_some(), "form field {:?} is text", name);
        }
        read_every_field(&mut input, 0);
        prop_assert!(input.nested("name").is_none() || names.iter().any(|n| n == "name"));
    }

    #[test]
    fn form_fields_read_back_with_the_last_value_winning(pairs in proptest::collection::vec((field_name(), nasty(10)), 0..10)) {
        let body = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs.iter()).finish();
        let mut input = Input::from_form_slice(body.as_bytes()).unwrap();
        let mut last: HashMap<&str, &str> = HashMap::new();
        for (k, v) in &pairs {
            last.insert(k, v);
        }
        prop_assert_eq!(input.field_names().count(), last.len());
        for (k, v) in last {
            prop_assert_eq!(input.text(k), v);
            prop_assert!(input.errors.first(k).is_none());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Letter rendering
// ---------------------------------------------------------------------------------------------

fn writer() -> impl Strategy<Value = (String, String, Option<String>, String)> {
    // Whatever the parsers let through, or a plain default when they refuse it.
    (nasty(12), nasty(12), nasty(12), nasty(12)).prop_map(|(n, l1, l2, t)| {
        (
            PersonName::parse(&n).map(|n| n.as_str().to_string()).unwrap_or_else(|_| "Sam Writer".into()),
            PostalAddress::parse_line1(&l1).unwrap_or_else(|_| "1 High Street".into()),
            PostalAddress::parse_line2(&l2).unwrap_or(None),
            PostalAddress::parse_town(&t).unwrap_or_else(|_| "Aldershot".into()),
        )
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_personal_edit_is_inserted_verbatim_and_never_read_as_a_template(
        raw in prop_oneof![nasty(80), any_text(3000), "(\\{\\{|\\}\\}|\\{%|%\\}|\\{#|#\\}|raw|endraw| |\n|[a-z._()\"=]){0,200}"],
        (name, line1, line2, town) in writer(),
    ) {
        // Both what a writer could send (a parsed edit) and raw text the parser never saw.
        let parsed = PersonalEdit::parse(&raw).ok().flatten().map(|e| e.as_str().to_string());
        for (key, subject_t, body_t) in shipped_letters() {
            let around = render(&key, &subject_t, &body_t, &letter_context(MARKER, &name, &line1, line2.as_deref(), &town))
                .unwrap_or_else(|e| panic!("{key} renders: {e}"));
            prop_assert_eq!(around.body.matches(MARKER).count(), 1, "{} shows the personal edit once", key);
            assert_no_control("a subject", &around.subject);
            prop_assert!(!around.subject.contains(MARKER), "{} keeps the edit out of the subject", key);
            for edit in parsed.iter().chain(std::iter::once(&raw)) {
                if edit.is_empty() {
                    continue;
                }
                let r = render(&key, &subject_t, &body_t, &letter_context(edit, &name, &line1, line2.as_deref(), &town));
                let r = match r {
                    Ok(r) => r,
                    Err(e) => return Err(TestCaseError::fail(format!("{key} failed with edit {edit:?}: {e}"))),
                };
                // The letter is exactly the letter around the marker, with the edit in its place.
                let mut expected = around.body.replacen(MARKER, edit, 1);
                // (the renderer trims the end of the letter; the edit is never last, so this is a no-op)
                expected = format!("{}\n", expected.trim_end());
                prop_assert_eq!(&r.body, &expected, "{} with edit {:?}", key, edit);
                prop_assert_eq!(&r.subject, &around.subject);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Over HTTP
// ---------------------------------------------------------------------------------------------

/// What the pure parsers say the signing endpoint should answer for a JSON body.
fn expected_status(body: &[u8]) -> u16 {
    match Input::from_json_slice(body) {
        Err(_) => 400,
        Ok(mut input) => match rally::petition::sign::SignatureRequest::parse(&mut input) {
            Ok(_) => 202,
            Err(_) => 422,
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posting_arbitrary_bodies_to_sign_never_gives_a_server_error() {
    let app = spawn_app_with(Backend::Sqlite, |m| {
        m.insert("RALLY_RATE_LIMITS".into(), "off".into());
    })
    .await
    .unwrap();
    let cases: u32 = std::env::var("RALLY_FUZZ_HTTP_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64);
    let mut runner = TestRunner::new(ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() });
    let bodies = prop_oneof![
        3 => signing_body().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        1 => proptest::collection::vec(any::<u8>(), 0..300),
        1 => (0usize..400).prop_map(|d| format!("{}{}", "[".repeat(d), "]".repeat(d)).into_bytes()),
    ];
    let api = app.url(&format!("/api/campaigns/{SLUG}/signatures"));
    let page = app.url(&format!("/campaigns/{SLUG}/sign"));
    let (mut accepted, mut statuses) = (0, std::collections::BTreeMap::<u16, u32>::new());
    for case in 0..cases {
        let body = bodies.new_tree(&mut runner).expect("a body").current();
        let shown = String::from_utf8_lossy(&body).into_owned();

        let res = app.client.post(&api).header("content-type", "application/json").body(body.clone()).send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        *statuses.entry(status).or_default() += 1;
        assert!(status < 500, "case {case}: {status} for {shown:?}: {text}");
        assert_eq!(status, expected_status(&body), "case {case}: {shown:?} answered {text}");
        if status == 202 {
            accepted += 1;
        } else {
            let v: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("case {case}: error body is not JSON ({e}): {text}"));
            assert!(v["error"].is_string() && v["message"].is_string(), "case {case}: {v}");
        }

        // The same bytes as an HTML form (and, as JSON, the object turned into form fields).
        let form = match serde_json::from_slice::<Value>(&body) {
            Ok(Value::Object(m)) => url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(m.iter().map(|(k, v)| (k.clone(), v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()))))
                .finish()
                .into_bytes(),
            _ => body.clone(),
        };
        let res = app.client.post(&page).header("content-type", "application/x-www-form-urlencoded").body(form.clone()).send().await.unwrap();
        let status = res.status().as_u16();
        // A form whose bytes are not UTF-8 is refused whole (400); otherwise it signs or names its fields.
        let expected = match Input::from_form_slice(&form) {
            Err(_) => 400,
            Ok(mut input) => if rally::petition::sign::SignatureRequest::parse(&mut input).is_ok() { 303 } else { 422 },
        };
        assert_eq!(status, expected, "case {case}: the form page answered {status} for {:?}", String::from_utf8_lossy(&form));
    }
    // Other content types are refused before the body is read.
    let res = app.client.post(&api).header("content-type", "text/plain").body(json!({"name": "x"}).to_string()).send().await.unwrap();
    assert_eq!(res.status(), 415);
    eprintln!("fuzzing over HTTP: {cases} bodies, {accepted} accepted (202); JSON statuses {statuses:?}");
}
