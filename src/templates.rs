//! Page, email and letter templates, embedded in the binary and parsed once at start-up.
use std::collections::HashMap;
use std::sync::LazyLock;

use include_dir::{include_dir, Dir};
use tera::{Tera, Value};

static TEMPLATE_DIR: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/templates");

pub static TEMPLATES: LazyLock<Tera> = LazyLock::new(|| build().expect("templates must parse; the unit test checks this"));

fn build() -> tera::Result<Tera> {
    let mut tera = Tera::default();
    let mut files = Vec::new();
    collect(&TEMPLATE_DIR, &mut files);
    tera.add_raw_templates(files)?;
    // Pages escape HTML; emails are plain text and must not be entity-escaped.
    tera.autoescape_on(vec![".html"]);
    tera.register_filter("thousands", thousands);
    tera.register_filter("markdown", markdown);
    Ok(tera)
}

fn collect(dir: &'static Dir<'static>, out: &mut Vec<(String, &'static str)>) {
    for file in dir.files() {
        if let Some(text) = file.contents_utf8() {
            out.push((file.path().to_string_lossy().into_owned(), text));
        }
    }
    for sub in dir.dirs() {
        collect(sub, out);
    }
}

/// `1500 | thousands` → `1,500`.
fn thousands(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let n = value.as_i64().ok_or_else(|| tera::Error::msg("thousands expects a whole number"))?;
    Ok(Value::String(format_thousands(n)))
}

/// `body | markdown | safe`: staff Markdown as sanitised HTML (for update emails and pages).
fn markdown(value: &Value, _: &HashMap<String, Value>) -> tera::Result<Value> {
    let text = value.as_str().ok_or_else(|| tera::Error::msg("markdown expects text"))?;
    Ok(Value::String(crate::services::markdown::to_safe_html(text)))
}

pub fn format_thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        out.insert(0, '-');
    }
    out
}

/// Renders a text email template whose first line is `Subject: …`, returning (subject, body).
pub fn render_email(name: &str, ctx: &tera::Context) -> tera::Result<(String, String)> {
    let text = TEMPLATES.render(name, ctx)?;
    let (first, rest) = text.split_once('\n').unwrap_or((&text, ""));
    let subject = first.strip_prefix("Subject:").map(str::trim).unwrap_or(first).to_string();
    Ok((subject, rest.trim_start_matches('\n').to_string()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn all_templates_parse() {
        let _ = &*super::TEMPLATES;
        assert_eq!(super::format_thousands(1500), "1,500");
        assert_eq!(super::format_thousands(100000), "100,000");
        assert_eq!(super::format_thousands(12), "12");
    }
}
