//! The shipped letters rendered with any personal edit: never an error, and the letter is
//! exactly the letter rendered around a marker with the edit put in the marker's place, so
//! `{{ }}`, `{% %}` or `{# #}` in an edit are never read as template. Checked for the raw text
//! and for what PersonalEdit::parse makes of it.
#![no_main]
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use rally::domain::{PersonalEdit, PostalAddress};
use rally::letters::render::{render, CampaignContext, ConstituencyContext, LetterContext, TargetContext, WriterContext};

const MARKER: &str = "\u{e000}PERSONAL-EDIT\u{e001}";

fn ctx(edit: &str) -> LetterContext {
    LetterContext {
        target: TargetContext { name: "Alex Baker".into(), salutation: "Dear Alex Baker".into(), title: "MP for Aldershot".into() },
        writer: WriterContext {
            name: "Sam Writer".into(),
            address: PostalAddress { line1: "1 High Street".into(), line2: Some("Flat 2".into()), town: "Aldershot".into() },
            postcode: "GU11 1AA".into(),
        },
        constituency: ConstituencyContext { ons_code: "E14001063".into(), name: "Aldershot".into() },
        campaign: CampaignContext { slug: "legal-advocacy".into(), title: "Legal advocacy".into() },
        personal_edit: edit.into(),
    }
}

/// (name, subject template, body template, body rendered around the marker, subject)
static LETTERS: LazyLock<Vec<(String, String, String, String, String)>> = LazyLock::new(|| {
    let mut out = Vec::new();
    for c in rally::seed::shipped().expect("shipped campaigns") {
        for (key, subject, body) in c.letters {
            let name = format!("{}/{key}", c.file.slug);
            let around = render(&name, &subject, &body, &ctx(MARKER)).expect("renders");
            assert_eq!(around.body.matches(MARKER).count(), 1);
            out.push((name, subject, body, around.body, around.subject));
        }
    }
    out
});

fuzz_target!(|data: &[u8]| {
    let raw = String::from_utf8_lossy(data).into_owned();
    let parsed = PersonalEdit::parse(&raw).ok().flatten().map(|e| e.as_str().to_string());
    for edit in parsed.iter().chain(std::iter::once(&raw)) {
        if edit.is_empty() {
            continue;
        }
        for (name, subject_t, body_t, around, subject) in LETTERS.iter() {
            let r = render(name, subject_t, body_t, &ctx(edit)).unwrap_or_else(|e| panic!("{name} with edit {edit:?}: {e}"));
            let expected = around.replacen(MARKER, edit, 1);
            let expected = format!("{}\n", expected.trim_end());
            assert_eq!(&r.body, &expected, "{name} with edit {edit:?}");
            assert_eq!(&r.subject, subject);
        }
    }
});
