//! Markdown as mail carries it: plain text for the text part, HTML for the other, and
//! the part of an article that answers (its first steps) kept short. Raw HTML in an
//! article is shown as text, never passed through: an article is not a way into a mail's
//! markup.

use pulldown_cmark::{Event, HeadingLevel, Options, Parser, Tag, TagEnd};

/// The most list items an excerpt shows, and roughly the most characters.
const EXCERPT_ITEMS: usize = 6;
const EXCERPT_CHARS: usize = 700;

fn parser(md: &str) -> Parser<'_> {
    Parser::new_ext(md, Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES)
}

/// Raw HTML as text.
fn tamed(event: Event<'_>) -> Event<'_> {
    match event {
        Event::Html(h) | Event::InlineHtml(h) => Event::Text(h),
        other => other,
    }
}

/// Link targets that are neither web addresses, mail addresses nor anchors: files beside
/// the article, which `kb check` makes sure exist.
pub fn relative_links(md: &str) -> Vec<String> {
    parser(md)
        .filter_map(|e| match e {
            Event::Start(Tag::Link { dest_url, .. })
            | Event::Start(Tag::Image { dest_url, .. }) => Some(dest_url.to_string()),
            _ => None,
        })
        .filter(|d| !d.contains("://") && !d.starts_with("mailto:") && !d.starts_with('#'))
        .collect()
}

/// The part that answers: the first list (the steps, at most six, cut near 700
/// characters), else the first paragraph; as text and as HTML.
pub fn excerpt(md: &str) -> (String, String) {
    let events: Vec<Event<'_>> = parser(md).map(tamed).collect();
    let chosen = first_block(&events, |t| matches!(t, Tag::List(_)))
        .or_else(|| first_block(&events, |t| matches!(t, Tag::Paragraph)))
        .unwrap_or_default();
    let chosen = shortened(chosen);
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, chosen.iter().cloned());
    (render_text(chosen.iter().cloned()).trim().to_string(), html)
}

/// The whole body as HTML.
pub fn to_html(md: &str) -> String {
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, parser(md).map(tamed));
    html
}

/// The whole body as plain text.
pub fn to_text(md: &str) -> String {
    render_text(parser(md).map(tamed)).trim().to_string()
}

/// The events of the first top-level block whose start `wanted` accepts.
fn first_block<'a>(
    events: &[Event<'a>],
    wanted: impl Fn(&Tag<'_>) -> bool,
) -> Option<Vec<Event<'a>>> {
    let mut depth = 0usize;
    for (i, e) in events.iter().enumerate() {
        match e {
            Event::Start(tag) if depth == 0 && wanted(tag) => {
                let mut inner = 0usize;
                for (j, f) in events[i..].iter().enumerate() {
                    match f {
                        Event::Start(_) => inner += 1,
                        Event::End(_) => {
                            inner -= 1;
                            if inner == 0 {
                                return Some(events[i..=i + j].to_vec());
                            }
                        }
                        _ => {}
                    }
                }
                return None;
            }
            Event::Start(_) => depth += 1,
            Event::End(_) => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// A list cut after the item that passes the length, or the sixth.
fn shortened(block: Vec<Event<'_>>) -> Vec<Event<'_>> {
    if !matches!(block.first(), Some(Event::Start(Tag::List(_)))) {
        return block;
    }
    let mut out = Vec::new();
    let (mut depth, mut items, mut chars) = (0usize, 0usize, 0usize);
    let last = block.last().cloned();
    for e in block {
        match &e {
            Event::Start(_) => depth += 1,
            Event::End(TagEnd::Item) if depth == 2 => {
                depth -= 1;
                items += 1;
                out.push(e);
                if items >= EXCERPT_ITEMS || chars >= EXCERPT_CHARS {
                    break;
                }
                continue;
            }
            Event::End(_) => depth -= 1,
            Event::Text(t) | Event::Code(t) => chars += t.chars().count(),
            _ => {}
        }
        out.push(e);
    }
    if !matches!(out.last(), Some(Event::End(TagEnd::List(_)))) {
        out.extend(last);
    }
    out
}

/// Plain text the way a person would type it: numbered and dashed lists, "text (url)"
/// links, blank lines between blocks.
fn render_text<'a>(events: impl Iterator<Item = Event<'a>>) -> String {
    let mut out = String::new();
    // Per open list: the next number (ordered) or `None` (bullets).
    let mut lists: Vec<Option<u64>> = Vec::new();
    let mut links: Vec<String> = Vec::new();
    let mut link_text = String::new();
    let mut in_code_block = false;
    let newline = |out: &mut String| {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
    };
    let blank = |out: &mut String| {
        if !out.is_empty() {
            if !out.ends_with('\n') {
                out.push('\n');
            }
            if !out.ends_with("\n\n") {
                out.push('\n');
            }
        }
    };
    for e in events {
        match e {
            Event::Start(Tag::Heading { level, .. }) => {
                blank(&mut out);
                if level == HeadingLevel::H1 {
                    out.push_str("# ");
                }
            }
            Event::Start(Tag::Paragraph) if lists.is_empty() => blank(&mut out),
            Event::Start(Tag::List(start)) => {
                if lists.is_empty() {
                    blank(&mut out);
                } else {
                    newline(&mut out);
                }
                lists.push(start);
            }
            Event::Start(Tag::Item) => {
                newline(&mut out);
                out.push_str(&"   ".repeat(lists.len().saturating_sub(1)));
                match lists.last_mut() {
                    Some(Some(n)) => {
                        out.push_str(&format!("{n}. "));
                        *n += 1;
                    }
                    _ => out.push_str("- "),
                }
            }
            Event::End(TagEnd::List(_)) => {
                lists.pop();
                newline(&mut out);
            }
            Event::Start(Tag::CodeBlock(_)) => {
                blank(&mut out);
                in_code_block = true;
            }
            Event::End(TagEnd::CodeBlock) => in_code_block = false,
            Event::Start(Tag::Link { dest_url, .. }) => {
                links.push(dest_url.to_string());
                link_text.clear();
            }
            Event::End(TagEnd::Link) => {
                if let Some(url) = links.pop() {
                    let shown = url.trim_start_matches("mailto:");
                    if link_text.trim() != shown {
                        out.push_str(&format!(" ({shown})"));
                    }
                }
            }
            Event::Text(t) if in_code_block => {
                for line in t.lines() {
                    out.push_str("    ");
                    out.push_str(line);
                    out.push('\n');
                }
            }
            Event::Text(t) | Event::Code(t) => {
                if !links.is_empty() {
                    link_text.push_str(&t);
                }
                out.push_str(&t);
            }
            Event::SoftBreak => out.push(' '),
            Event::HardBreak => out.push('\n'),
            Event::Rule => {
                blank(&mut out);
                out.push_str("----");
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARTICLE: &str = "Si votre compte est **bloqué** :\n\n\
        1. Attendez 15 minutes.\n2. Ouvrez [le portail](https://portail.example.test).\n\
        3. Tapez `Ctrl+Alt+Suppr`.\n\n## Ensuite\n\nÉcrivez-nous.\n\n<script>alert(1)</script>\n";

    #[test]
    fn text_reads_like_typed_text() {
        let text = to_text(ARTICLE);
        assert!(text.starts_with("Si votre compte est bloqué :"), "{text}");
        assert!(
            text.contains("2. Ouvrez le portail (https://portail.example.test)."),
            "{text}"
        );
        assert!(text.contains("3. Tapez Ctrl+Alt+Suppr."), "{text}");
        assert!(text.contains("\n\nEnsuite\n\nÉcrivez-nous."), "{text}");
    }

    #[test]
    fn the_excerpt_is_the_first_steps() {
        let (text, html) = excerpt(ARTICLE);
        assert_eq!(
            text,
            "1. Attendez 15 minutes.\n2. Ouvrez le portail (https://portail.example.test).\n3. Tapez Ctrl+Alt+Suppr."
        );
        assert!(html.starts_with("<ol>"), "{html}");
        assert!(
            html.contains("<a href=\"https://portail.example.test\">"),
            "{html}"
        );
        assert!(!html.contains("Ensuite"), "{html}");
    }

    #[test]
    fn a_long_list_is_cut_and_raw_html_is_text() {
        let long: String = (1..=10).map(|i| format!("- step {i}\n")).collect();
        let (text, html) = excerpt(&long);
        assert_eq!(text.lines().count(), EXCERPT_ITEMS, "{text}");
        assert!(html.ends_with("</ul>\n"), "{html}");
        let (_, html) = excerpt("<b>hi</b> there\n");
        assert!(html.contains("&lt;b&gt;"), "{html}");
        assert!(to_text(ARTICLE).contains("<script>"), "shown as text");
    }
}
