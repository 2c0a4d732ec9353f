//! Markdown written by staff, rendered to HTML that is safe to put on a public page.
use pulldown_cmark::{html, Options, Parser};

pub fn to_safe_html(markdown: &str) -> String {
    let mut unsafe_html = String::with_capacity(markdown.len() * 2);
    html::push_html(&mut unsafe_html, Parser::new_ext(markdown, Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH));
    // ammonia strips scripts, event handlers and unsafe URLs, and adds rel="noopener noreferrer" to links.
    ammonia::Builder::default().link_rel(Some("noopener noreferrer nofollow")).clean(&unsafe_html).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn renders_and_sanitises() {
        let html = super::to_safe_html("## Why\n\n* one\n\n<script>alert(1)</script>\n\n[x](javascript:alert(1)) <img src=x onerror=alert(1)>");
        assert!(html.contains("<h2>Why</h2>"));
        assert!(html.contains("<li>one</li>"));
        assert!(!html.contains("<script"));
        assert!(!html.contains("href=\"javascript:"));
        assert!(!html.contains("onerror"));
    }
}
