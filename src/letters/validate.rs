//! Checking a letter template before it is saved, so a broken letter never reaches a writer.
//! A template must parse, use only the variables Rally provides (`render::VARIABLES`, loop and
//! `set` variables), call no functions, macros or other templates, carry the writer's own words
//! and postal address, and render with sample data. Each problem names its line where the
//! template's text shows it.
use std::collections::BTreeSet;
use std::fmt;

use tera::ast::{Expr, ExprVal, Node};

use crate::domain::PostalAddress;
use crate::letters::render::{self, CampaignContext, ConstituencyContext, LetterContext, TargetContext, WriterContext, VARIABLES};

/// The longest subject and body template staff may save.
pub const SUBJECT_MAX: usize = 300;
pub const BODY_MAX: usize = 20_000;

/// Variables every letter body must use: the contract says a letter ends with the writer's
/// name, postal address and postcode (MPs answer only constituents), and a writer's own words
/// must never be silently dropped.
const REQUIRED_IN_BODY: &[(&str, &str)] = &[
    ("personal_edit", "Add `{{ personal_edit }}` (for example inside `{% if personal_edit %}…{% endif %}`), or the writer's own words would be lost."),
    ("writer.name", "Add `{{ writer.name }}`: every letter ends with the writer's name, postal address and postcode."),
    ("writer.address.line1", "Add `{{ writer.address.line1 }}`: every letter ends with the writer's postal address."),
    ("writer.address.line2", "Add `{% if writer.address.line2 %}{{ writer.address.line2 }}{% endif %}`: some writers give a second address line."),
    ("writer.address.town", "Add `{{ writer.address.town }}`: every letter ends with the writer's postal address."),
    ("writer.postcode", "Add `{{ writer.postcode }}`: every letter ends with the writer's postcode."),
];

/// One thing wrong with a template; `line` counts from 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(n) => write!(f, "line {n}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Problems with a letter, by field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LetterProblems {
    pub subject: Vec<Problem>,
    pub body: Vec<Problem>,
}

impl LetterProblems {
    pub fn is_empty(&self) -> bool {
        self.subject.is_empty() && self.body.is_empty()
    }
}

/// The sample writer used by previews and by the render check.
pub fn sample_context(target: TargetContext, campaign: CampaignContext, full: bool) -> LetterContext {
    LetterContext {
        target,
        writer: WriterContext {
            name: "Sam Sample".into(),
            address: PostalAddress { line1: "1 High Street".into(), line2: full.then(|| "Flat 2".to_string()), town: "Aldershot".into() },
            postcode: "GU11 1AA".into(),
        },
        constituency: ConstituencyContext { ons_code: "E14001063".into(), name: "Aldershot".into() },
        campaign,
        personal_edit: if full {
            "I have seen for myself how much difference good advice makes to someone who reports. (This is a sample of a writer's own words.)".into()
        } else {
            String::new()
        },
    }
}

/// The sample MP, for previews of letters to MPs (each writer's own MP in real letters).
pub fn sample_mp() -> TargetContext {
    TargetContext { name: "Alex Baker".into(), salutation: "Dear Alex Baker".into(), title: "MP for Aldershot".into() }
}

/// Checks a letter's subject and body templates. `target_key` is `mp` or a fixed target's key:
/// a letter to an MP must name the writer in its subject, as MPs' offices sort mail by it.
pub fn check_letter(target_key: &str, subject: &str, body: &str) -> Result<(), LetterProblems> {
    let mut problems = LetterProblems::default();
    if subject.trim().is_empty() {
        problems.subject.push(Problem { line: None, message: "Enter a subject.".into() });
    } else if subject.chars().count() > SUBJECT_MAX {
        problems.subject.push(Problem { line: None, message: format!("The subject must be {SUBJECT_MAX} characters or fewer.") });
    } else {
        let (p, used) = check_template(subject);
        problems.subject = p;
        if target_key == "mp" && problems.subject.is_empty() && !used.contains("writer.name") {
            problems.subject.push(Problem { line: None, message: "Add `{{ writer.name }}`: a letter to an MP names the writer in its subject, as a constituent.".into() });
        }
    }
    if body.trim().is_empty() {
        problems.body.push(Problem { line: None, message: "Enter the letter.".into() });
    } else if body.chars().count() > BODY_MAX {
        problems.body.push(Problem { line: None, message: format!("The letter must be {BODY_MAX} characters or fewer.") });
    } else {
        let (p, used) = check_template(body);
        problems.body = p;
        if problems.body.is_empty() {
            for (var, hint) in REQUIRED_IN_BODY {
                if !used.contains(*var) {
                    problems.body.push(Problem { line: None, message: format!("The letter never uses `{var}`. {hint}") });
                }
            }
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    // Both a writer with every optional part and one with none, so each branch runs once.
    let campaign = CampaignContext { slug: "sample".into(), title: "Sample campaign".into() };
    for full in [true, false] {
        let ctx = sample_context(sample_mp(), campaign.clone(), full);
        match render::render("subject", subject, "-", &ctx) {
            Ok(r) if r.subject.is_empty() => problems.subject.push(Problem { line: None, message: "The subject comes out empty for some writers.".into() }),
            Ok(_) => {}
            Err(e) => problems.subject.push(runtime_problem(subject, &e.reason)),
        }
        if let Err(e) = render::render("letter", "-", body, &ctx) {
            problems.body.push(runtime_problem(body, &e.reason));
        }
        if !problems.is_empty() {
            return Err(problems);
        }
    }
    Ok(())
}

/// Parses one template and checks every name it uses. Returns the problems and the set of
/// Rally variables it uses.
pub fn check_template(source: &str) -> (Vec<Problem>, BTreeSet<String>) {
    let mut tera = tera::Tera::default();
    if let Err(e) = tera.add_raw_template("letter", source) {
        return (vec![parse_problem(&e)], BTreeSet::new());
    }
    let Ok(template) = tera.get_template("letter") else {
        return (vec![Problem { line: None, message: "The template could not be read.".into() }], BTreeSet::new());
    };
    let mut walker = Walker { source, locals: Vec::new(), problems: Vec::new(), used: BTreeSet::new(), reported: BTreeSet::new() };
    walker.nodes(&template.ast);
    (walker.problems, walker.used)
}

/// The reason from tera's error chain, and the line and column of a syntax error.
fn parse_problem(e: &tera::Error) -> Problem {
    let mut parts = vec![e.to_string()];
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        parts.push(s.to_string());
        source = s.source();
    }
    let text = parts.join("\n");
    // pest reports `--> LINE:COLUMN` and then `= expected …`.
    let position = text.lines().find_map(|l| {
        let (line, col) = l.trim().strip_prefix("-->")?.trim().split_once(':')?;
        Some((line.trim().parse::<usize>().ok()?, col.trim().parse::<usize>().ok()?))
    });
    let reason = text.lines().find_map(|l| l.trim().strip_prefix("= ").map(str::to_string));
    match (position, reason) {
        (Some((line, col)), Some(reason)) => Problem { line: Some(line), message: format!("the template cannot be read at column {col}: {reason}.") },
        (Some((line, col)), None) => Problem { line: Some(line), message: format!("the template cannot be read at column {col}.") },
        _ => Problem { line: None, message: format!("The template cannot be read: {}.", parts.last().map(String::as_str).unwrap_or("unknown error").trim_end_matches('.')) },
    }
}

/// A problem found only when rendering with sample data, placed on a line when the reason
/// names something the template's tags contain.
fn runtime_problem(source: &str, reason: &str) -> Problem {
    let named = reason.split(['`', '\'']).skip(1).step_by(2).find_map(|name| locate(source, name));
    let last = reason.rsplit(": ").next().unwrap_or(reason).trim_end_matches('.');
    Problem { line: named, message: format!("the template fails with sample data: {last}.") }
}

struct Walker<'a> {
    source: &'a str,
    /// Names bound by `for` and `set`, innermost last.
    locals: Vec<String>,
    problems: Vec<Problem>,
    used: BTreeSet<String>,
    /// Each bad name is reported once, at its first line.
    reported: BTreeSet<String>,
}

impl Walker<'_> {
    fn problem(&mut self, key: &str, needle: &str, message: String) {
        if self.reported.insert(key.to_string()) {
            self.problems.push(Problem { line: locate(self.source, needle), message });
        }
    }

    fn nodes(&mut self, nodes: &[Node]) {
        for node in nodes {
            self.node(node);
        }
    }

    fn node(&mut self, node: &Node) {
        match node {
            Node::Super | Node::Text(_) | Node::Raw(..) | Node::Comment(..) | Node::Break(_) | Node::Continue(_) => {}
            Node::VariableBlock(_, e) => self.expr(e),
            Node::Set(_, set) => {
                self.expr(&set.value);
                self.locals.push(set.key.clone());
            }
            Node::FilterSection(_, section, _) => {
                for arg in section.filter.args.values() {
                    self.expr(arg);
                }
                self.nodes(&section.body);
            }
            Node::Block(_, block, _) => self.nodes(&block.body),
            Node::Forloop(_, forloop, _) => {
                self.expr(&forloop.container);
                let depth = self.locals.len();
                self.locals.extend(forloop.key.iter().cloned());
                self.locals.push(forloop.value.clone());
                self.locals.push("loop".into());
                self.nodes(&forloop.body);
                if let Some(empty) = &forloop.empty_body {
                    self.nodes(empty);
                }
                self.locals.truncate(depth);
            }
            Node::If(branches, _) => {
                for (_, condition, body) in &branches.conditions {
                    self.expr(condition);
                    self.nodes(body);
                }
                if let Some((_, body)) = &branches.otherwise {
                    self.nodes(body);
                }
            }
            Node::Extends(..) => self.problem("extends", "extends", "a letter cannot extend another template; write it out in full.".into()),
            Node::Include(..) => self.problem("include", "include", "a letter cannot include another template; write it out in full.".into()),
            Node::ImportMacro(..) | Node::MacroDefinition(..) => self.problem("macro", "macro", "macros are not available in letters.".into()),
        }
    }

    fn expr(&mut self, e: &Expr) {
        self.value(&e.val);
        for filter in &e.filters {
            for arg in filter.args.values() {
                self.expr(arg);
            }
        }
    }

    fn value(&mut self, v: &ExprVal) {
        match v {
            ExprVal::String(_) | ExprVal::Int(_) | ExprVal::Float(_) | ExprVal::Bool(_) => {}
            ExprVal::Ident(name) => self.ident(name),
            ExprVal::Math(m) => {
                self.expr(&m.lhs);
                self.expr(&m.rhs);
            }
            ExprVal::Logic(l) => {
                self.expr(&l.lhs);
                self.expr(&l.rhs);
            }
            ExprVal::Test(t) => {
                self.ident(&t.ident);
                for arg in &t.args {
                    self.expr(arg);
                }
            }
            ExprVal::MacroCall(m) => self.problem("macro", &m.name, "macros are not available in letters.".into()),
            // Functions such as get_env() could read the server's settings: none are allowed.
            ExprVal::FunctionCall(f) => self.problem(&format!("fn {}", f.name), &f.name, format!("functions such as `{}()` are not available in letters; use the variables listed.", f.name)),
            ExprVal::Array(items) => {
                for item in items {
                    self.expr(item);
                }
            }
            ExprVal::StringConcat(c) => {
                for v in &c.values {
                    self.value(v);
                }
            }
            ExprVal::In(i) => {
                self.expr(&i.lhs);
                self.expr(&i.rhs);
            }
        }
    }

    fn ident(&mut self, raw: &str) {
        let Some(path) = dotted(raw) else {
            self.problem(raw, raw, format!("`{raw}`: write variables with dots, like `writer.name`, not square brackets."));
            return;
        };
        let root = path.split('.').next().unwrap_or("");
        if self.locals.iter().any(|l| l == root) {
            return;
        }
        if let Some(v) = VARIABLES.iter().find(|v| **v == path) {
            self.used.insert((*v).to_string());
            return;
        }
        // Objects that hold variables (`writer.address`) may be tested, as in `{% if writer.address.line2 %}`.
        if VARIABLES.iter().any(|v| v.strip_prefix(path.as_str()).is_some_and(|rest| rest.starts_with('.'))) {
            return;
        }
        // A likely typo gets one suggestion; otherwise the whole list.
        let advice = match closest(&path) {
            Some(v) => format!("Did you mean `{v}`?"),
            None => format!("Use one of: {}.", VARIABLES.join(", ")),
        };
        let message = format!("`{path}` is not a variable Rally provides. {advice}");
        self.problem(raw, raw, message);
    }
}

/// `writer["name"]` → `writer.name`; `None` for indexes that are not fixed names.
fn dotted(raw: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find(']')? + open;
        let inner = rest[open + 1..close].trim();
        let key = inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')).or_else(|| inner.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')))?;
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        out.push('.');
        out.push_str(key);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// The variable a misspelt name was probably meant to be.
fn closest(path: &str) -> Option<&'static str> {
    VARIABLES.iter().map(|v| (edit_distance(path, v), *v)).filter(|(d, _)| *d <= 3).min_by_key(|(d, _)| *d).map(|(_, v)| v)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let here = row[j + 1];
            row[j + 1] = (here + 1).min(row[j] + 1).min(prev + usize::from(ca != *cb));
            prev = here;
        }
    }
    row[b.len()]
}

/// The line of the first tag (`{{ }}` or `{% %}`) that contains `needle` as a whole name.
fn locate(source: &str, needle: &str) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
    for (start, end) in tag_spans(source) {
        let tag = &source[start..end];
        let mut from = 0;
        while let Some(i) = tag[from..].find(needle) {
            let at = from + i;
            let before = tag[..at].chars().next_back();
            let after = tag[at + needle.len()..].chars().next();
            if !before.is_some_and(is_name) && !after.is_some_and(|c| is_name(c) || c == '[') {
                return Some(source[..start + at].matches('\n').count() + 1);
            }
            from = at + needle.len();
        }
    }
    None
}

/// Byte ranges of the `{{ … }}` and `{% … %}` tags, skipping comments and raw blocks.
fn tag_spans(source: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut pos = 0;
    while let Some(i) = source[pos..].find('{') {
        let start = pos + i;
        let close = match source[start + 1..].chars().next() {
            Some('{') => "}}",
            Some('%') => "%}",
            Some('#') => "#}",
            _ => {
                pos = start + 1;
                continue;
            }
        };
        let Some(j) = source[start + 2..].find(close) else { break };
        let end = start + 2 + j + 2;
        if close != "#}" {
            spans.push((start, end));
        }
        pos = end;
        let inner = source[start + 2..end - 2].trim_matches(|c: char| c == '-' || c.is_whitespace());
        if close == "%}" && inner == "raw" {
            // Text in a raw block is not template code; skip to its end.
            match source[pos..].find("endraw") {
                Some(k) => pos += k,
                None => break,
            }
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENDING: &str = "{% if personal_edit %}{{ personal_edit }}{% endif %}\n{{ writer.name }}\n{{ writer.address.line1 }}\n{% if writer.address.line2 %}{{ writer.address.line2 }}\n{% endif %}{{ writer.address.town }}\n{{ writer.postcode }}";

    fn body(middle: &str) -> String {
        format!("{{{{ target.salutation }}}},\n\n{middle}\n{ENDING}")
    }

    #[test]
    fn a_good_letter_passes() {
        assert_eq!(check_letter("mp", "{{ writer.name }} in {{ constituency.name }}", &body("Please help.")), Ok(()));
        assert_eq!(check_letter("justice-secretary", "Please help", &body("{% for x in [1, 2] %}{{ loop.index }}{{ x }}{% endfor %}{% set n = campaign.title %}{{ n }}")), Ok(()));
        assert_eq!(check_letter("x", "Hi", &body("{{ writer[\"name\"] | upper }}")), Ok(()));
    }

    #[test]
    fn the_shipped_letters_pass() {
        for c in crate::seed::shipped().unwrap() {
            for (key, subject, body) in c.letters {
                assert_eq!(check_letter(&key, &subject, &body), Ok(()), "{}/{key}", c.file.slug);
            }
        }
    }

    #[test]
    fn an_unknown_variable_is_named_with_its_line() {
        let e = check_letter("x", "Hi", &body("first\n{{ writer.nmae }} and {{ writer.nmae }}")).unwrap_err();
        assert!(e.subject.is_empty());
        assert_eq!(e.body.len(), 1, "{e:?}");
        let text = e.body[0].to_string();
        assert!(text.starts_with("line 4: `writer.nmae` is not a variable Rally provides."), "{text}");
        assert!(text.contains("Did you mean `writer.name`?"), "{text}");
        let e = check_letter("x", "Hi", &body("{% if target.email %}x{% endif %}")).unwrap_err();
        assert_eq!(e.body[0].line, Some(3));
        assert!(e.body[0].message.contains("`target.email`"));
        let e = check_letter("x", "Hi", &body("{{ shoe_size }}")).unwrap_err();
        assert!(e.body[0].message.contains("Use one of: target.name,"), "{:?}", e.body);
        let e = check_letter("x", "Re {{ campaign.name }}", &body("")).unwrap_err();
        assert_eq!(e.subject[0].line, Some(1));
        assert!(e.body.is_empty());
    }

    #[test]
    fn a_syntax_error_gives_line_and_reason() {
        let e = check_letter("x", "Hi", "line one\n{% if %}\n{% endif %}").unwrap_err();
        let p = &e.body[0];
        assert_eq!(p.line, Some(2), "{p:?}");
        assert!(p.message.contains("cannot be read at column"), "{p}");
        assert!(p.message.contains("expected"), "{p}");
        let e = check_letter("x", "{{ writer.name", &body("")).unwrap_err();
        assert_eq!(e.subject[0].line, Some(1));
    }

    #[test]
    fn functions_macros_and_includes_are_refused() {
        let e = check_letter("x", "Hi", &body("\n{{ get_env(name=\"RALLY_SECRET_KEY\") }}")).unwrap_err();
        assert_eq!(e.body[0].line, Some(4));
        assert!(e.body[0].message.contains("get_env()"));
        assert!(check_letter("x", "Hi", &body("{% include \"other\" %}")).is_err());
        assert!(check_letter("x", "Hi", &body("{{ writer[0] }}")).is_err());
    }

    #[test]
    fn the_writer_s_words_and_address_are_required() {
        let e = check_letter("x", "Hi", "Dear {{ target.name }}, {{ writer.name }}").unwrap_err();
        let all = e.body.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("\n");
        assert!(all.contains("personal_edit") && all.contains("writer.postcode") && all.contains("writer.address.town"), "{all}");
        let e = check_letter("mp", "Please help", &body("")).unwrap_err();
        assert!(e.subject[0].message.contains("writer.name"));
        assert!(check_letter("x", "", &body("")).unwrap_err().subject[0].message.contains("Enter a subject"));
    }

    #[test]
    fn runtime_failures_are_caught() {
        let e = check_letter("x", "Hi", &body("\n{{ writer.name | no_such_filter }}")).unwrap_err();
        assert_eq!(e.body[0].line, Some(4), "{:?}", e.body);
        assert!(e.body[0].message.contains("no_such_filter"), "{:?}", e.body);
        let e = check_letter("x", "{{ personal_edit }}", &body("")).unwrap_err();
        assert!(e.subject[0].message.contains("empty"));
    }

    #[test]
    fn tags_are_found_past_comments_and_raw_text() {
        let src = "{# writer.nmae #}\n{% raw %}{{ writer.nmae }}{% endraw %}\n{{ writer.nmae }}";
        assert_eq!(locate(src, "writer.nmae"), Some(3));
        assert_eq!(locate("{{ writer.names }}", "writer.name"), None);
        assert_eq!(dotted("a['b'][\"c\"]").as_deref(), Some("a.b.c"));
        assert_eq!(edit_distance("writer.nmae", "writer.name"), 2);
    }
}
