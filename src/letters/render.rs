//! The letter renderer. Templates are tera text; the writer's personal edit is a value in the
//! context, so `{{ }}` or `{% %}` typed by a writer arrives verbatim and can never change the
//! letter around it. A template that fails is an error naming it, never a letter with a hole.
use serde::Serialize;
use serde_json::Value;

use crate::domain::PostalAddress;

#[derive(Debug, Clone, Serialize)]
pub struct TargetContext {
    pub name: String,
    pub salutation: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct WriterContext {
    pub name: String,
    pub address: PostalAddress,
    pub postcode: String,
}

/// The writer's constituency. Templates also see `constituency.page_url`, the public page with
/// the campaign's figures for this constituency: it is made from the campaign's slug, the ONS
/// code and the public address when the letter is rendered (`render_at`), so nothing that builds
/// this context has to carry it.
#[derive(Debug, Clone, Serialize)]
pub struct ConstituencyContext {
    pub ons_code: String,
    pub name: String,
}

/// Where `constituency.page_url` points in previews and template checks, which have no real
/// writer (staff see the shape of the link; real letters use `RALLY_PUBLIC_URL`).
pub const SAMPLE_PUBLIC_URL: &str = "https://rally.example";

/// The public page for MPs' offices: `{public_url}/campaigns/{slug}/constituencies/{ons_code}`.
pub fn constituency_page_url(public_url: &str, slug: &str, ons_code: &str) -> String {
    format!("{}/campaigns/{slug}/constituencies/{ons_code}", public_url.trim_end_matches('/'))
}

#[derive(Debug, Clone, Serialize)]
pub struct CampaignContext {
    pub slug: String,
    pub title: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LetterContext {
    pub target: TargetContext,
    pub writer: WriterContext,
    pub constituency: ConstituencyContext,
    pub campaign: CampaignContext,
    /// Empty when the writer added nothing.
    pub personal_edit: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedLetter {
    pub subject: String,
    pub body: String,
}

/// Names of the variables templates may use, for editors and validation.
pub const VARIABLES: &[&str] = &[
    "target.name",
    "target.salutation",
    "target.title",
    "writer.name",
    "writer.address.line1",
    "writer.address.line2",
    "writer.address.town",
    "writer.postcode",
    "constituency.name",
    "constituency.ons_code",
    "constituency.page_url",
    "campaign.title",
    "campaign.slug",
    "personal_edit",
];

#[derive(Debug, thiserror::Error)]
#[error("the letter template {name} cannot be used: {reason}")]
pub struct TemplateError {
    pub name: String,
    pub reason: String,
}

fn explain(e: &tera::Error) -> String {
    // tera nests the useful part (line and column for parse errors, the missing variable for
    // render errors) in the source chain.
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    parts.join(": ")
}

fn render_one(name: &str, template: &str, ctx: &tera::Context) -> Result<String, TemplateError> {
    let mut tera = tera::Tera::default();
    tera.autoescape_on(vec![]);
    // tera's built-in get_env would let a template print the server's environment (secrets).
    tera.register_function("get_env", |_: &std::collections::HashMap<String, tera::Value>| -> tera::Result<tera::Value> {
        Err(tera::Error::msg("get_env is not available in letters"))
    });
    tera.add_raw_template(name, template).map_err(|e| TemplateError { name: name.into(), reason: explain(&e) })?;
    tera.render(name, ctx).map_err(|e| TemplateError { name: name.into(), reason: explain(&e) })
}

/// Renders a letter with sample links (`SAMPLE_PUBLIC_URL`): for previews and template checks.
pub fn render(name: &str, subject_template: &str, body_template: &str, ctx: &LetterContext) -> Result<RenderedLetter, TemplateError> {
    render_at(name, subject_template, body_template, ctx, SAMPLE_PUBLIC_URL)
}

/// Renders a letter whose links start with `public_url`. `name` identifies the template in
/// errors, e.g. `legal-advocacy/mp`.
pub fn render_at(name: &str, subject_template: &str, body_template: &str, ctx: &LetterContext, public_url: &str) -> Result<RenderedLetter, TemplateError> {
    let fail = |reason: String| TemplateError { name: name.into(), reason };
    let mut value = serde_json::to_value(ctx).map_err(|e| fail(e.to_string()))?;
    let page_url = constituency_page_url(public_url, &ctx.campaign.slug, &ctx.constituency.ons_code);
    if let Some(Value::Object(place)) = value.get_mut("constituency") {
        place.insert("page_url".into(), Value::String(page_url));
    }
    let context = tera::Context::from_value(value).map_err(|e| fail(explain(&e)))?;
    let subject = render_one(&format!("{name} (subject)"), subject_template, &context)?;
    // A subject is one header line: fold any line breaks a template produced.
    let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
    let body = render_one(name, body_template, &context)?;
    let body = format!("{}\n", body.trim_end());
    Ok(RenderedLetter { subject, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(edit: &str) -> LetterContext {
        LetterContext {
            target: TargetContext { name: "Alex Baker".into(), salutation: "Dear Alex Baker".into(), title: "MP for Aldershot".into() },
            writer: WriterContext {
                name: "Sam Writer".into(),
                address: PostalAddress { line1: "1 High Street".into(), line2: None, town: "Aldershot".into() },
                postcode: "GU11 1AA".into(),
            },
            constituency: ConstituencyContext { ons_code: "E14001063".into(), name: "Aldershot".into() },
            campaign: CampaignContext { slug: "c".into(), title: "C".into() },
            personal_edit: edit.into(),
        }
    }

    #[test]
    fn personal_edit_is_never_evaluated() {
        let edit = "I {{ target.name }} {% for x in y %}{% endfor %} {# c #}";
        let r = render("c/mp", "{{ writer.name }},\nconstituent", "{{ target.salutation }},\n\n{{ personal_edit }}\n\n{{ writer.name }}", &ctx(edit)).unwrap();
        assert!(r.body.contains(edit));
        assert_eq!(r.subject, "Sam Writer, constituent");
        assert!(r.body.starts_with("Dear Alex Baker,"));
    }

    #[test]
    fn templates_cannot_read_the_environment() {
        assert!(render("c/mp", "s", "{{ get_env(name=\"PATH\") }}", &ctx("")).is_err());
    }

    #[test]
    fn a_broken_template_names_itself() {
        let e = render("c/mp", "s", "{{ writer.nmae }}", &ctx("")).unwrap_err();
        assert_eq!(e.name, "c/mp");
        assert!(e.reason.contains("nmae"), "{}", e.reason);
        let e = render("c/mp", "s", "line one\n{% if %}", &ctx("")).unwrap_err();
        assert!(e.reason.contains("2:"), "parse errors give the line: {}", e.reason);
    }

    #[test]
    fn the_shipped_letters_render_with_every_variable() {
        for c in crate::seed::shipped().unwrap() {
            for (key, subject, body) in c.letters {
                let r = render(&format!("{}/{key}", c.file.slug), &subject, &body, &ctx("My own words.")).unwrap();
                assert!(r.body.contains("My own words."));
                assert!(r.body.trim_end().ends_with("GU11 1AA"), "{key} ends with the postcode");
                assert!(r.body.starts_with("Dear "));
            }
        }
    }

    #[test]
    fn letters_can_link_to_the_constituency_page() {
        let r = render_at("c/mp", "s", "See {{ constituency.page_url }}", &ctx(""), "https://rally.example.org/").unwrap();
        assert_eq!(r.body, "See https://rally.example.org/campaigns/c/constituencies/E14001063\n");
        let r = render("c/mp", "s", "{{ constituency.page_url }}", &ctx("")).unwrap();
        assert!(r.body.starts_with(SAMPLE_PUBLIC_URL), "{}", r.body);
    }
}
