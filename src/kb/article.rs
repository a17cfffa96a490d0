//! One article as its author wrote it: a Markdown file whose YAML front matter says what
//! it is about. Parsing checks everything an operator can get wrong (a key misspelt, a
//! language or category the desk does not know, an empty body, a link to a file that is
//! not there) and names the file and the key, so `helpdesk kb check` can say what to fix.

use std::path::Path;

use serde::Deserialize;

use crate::domain::{Category, Language};

use super::markdown;

/// An article's id: its file name without `.md`. Lowercase letters, digits and dashes, so
/// it reads the same in a URL, a command (`#article vpn-error-809`) and a file listing.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, Deserialize)]
#[serde(transparent)]
pub struct ArticleId(String);

impl ArticleId {
    pub fn parse(text: &str) -> Option<ArticleId> {
        let ok = (1..=80).contains(&text.len())
            && text
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !text.starts_with('-')
            && !text.ends_with('-');
        ok.then(|| ArticleId(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ArticleId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The categories an article can be filed under: routing's built-in ones and `general`.
pub fn known_categories() -> Vec<&'static str> {
    crate::routing::BUILTIN_CATEGORIES
        .iter()
        .map(|(name, _)| *name)
        .chain(["general"])
        .collect()
}

/// An article, parsed, with the renderings mail needs made once at load.
#[derive(Clone, Debug, PartialEq, serde::Serialize, Deserialize)]
pub struct Article {
    pub id: ArticleId,
    pub title: String,
    pub language: Language,
    pub category: Category,
    pub keywords: Vec<String>,
    pub url: Option<String>,
    /// The Markdown body, as written.
    pub body: String,
    /// The first steps (see [`markdown::excerpt`]) as plain text and as HTML.
    pub excerpt_text: String,
    pub excerpt_html: String,
    /// The whole body as plain text: what `#article` puts into an agent's reply.
    pub body_text: String,
    pub body_html: String,
}

/// What is wrong with one file, and where.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, serde::Serialize, Deserialize)]
#[error("{file}: {key}: {message}")]
pub struct Problem {
    pub file: String,
    /// The front matter key, or `(file)`, `(body)`, `(link)`.
    pub key: String,
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    title: Option<String>,
    language: Option<String>,
    category: Option<String>,
    #[serde(default)]
    keywords: Vec<String>,
    url: Option<String>,
}

/// What is wrong, before the file's name is put to it: the key and the message.
type Wrong = (String, String);

fn wrong(key: &str, message: impl Into<String>) -> Wrong {
    (key.to_string(), message.into())
}

/// Parses `text`, the content of `file` (its name gives the id). `dir` is where relative
/// links are resolved.
pub fn parse(file: &str, text: &str, dir: Option<&Path>) -> Result<Article, Problem> {
    parsed(file, text, dir).map_err(|(key, message)| Problem {
        file: file.to_string(),
        key,
        message,
    })
}

fn parsed(file: &str, text: &str, dir: Option<&Path>) -> Result<Article, Wrong> {
    let stem = file.strip_suffix(".md").unwrap_or(file);
    let id = ArticleId::parse(stem).ok_or_else(|| {
        wrong(
            "(file)",
            "the file name must be lowercase letters, digits and dashes, then .md \
             (e.g. vpn-error-809.md)",
        )
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let (front, body) = split_front_matter(text).ok_or_else(|| {
        wrong(
            "(front matter)",
            "the file must start with a line `---`, the YAML keys, then another `---`",
        )
    })?;
    let front = front_matter(front)?;
    let title = front
        .title
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| wrong("title", "missing or empty: give the article a title"))?;
    let language = language(front.language.as_deref())?;
    let category = category(front.category.as_deref())?;
    let url = url(front.url)?;
    check_body(body, dir)?;
    let keywords = front
        .keywords
        .into_iter()
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect();
    let (excerpt_text, excerpt_html) = markdown::excerpt(body);
    Ok(Article {
        id,
        title,
        language,
        category,
        keywords,
        url,
        body_text: markdown::to_text(body),
        body_html: markdown::to_html(body),
        body: body.to_string(),
        excerpt_text,
        excerpt_html,
    })
}

fn front_matter(yaml: &str) -> Result<FrontMatter, Wrong> {
    const KEYS: [&str; 5] = ["title", "language", "category", "keywords", "url"];
    serde_yaml_ng::from_str(yaml).map_err(|e| {
        let message = e.to_string();
        // serde names an unknown key in its message, and puts a mistyped value's key first
        // ("title: invalid type: sequence…"); say which one.
        let key = message
            .split('`')
            .nth(1)
            .filter(|_| message.starts_with("unknown field"))
            .or_else(|| message.split(':').next().filter(|k| KEYS.contains(k)))
            .unwrap_or("(front matter)");
        wrong(
            key,
            format!("{message} (known keys: title, language, category, keywords, url)"),
        )
    })
}

fn language(value: Option<&str>) -> Result<Language, Wrong> {
    match value.map(str::trim) {
        Some("fr") => Ok(Language::Fr),
        Some("en") => Ok(Language::En),
        Some(other) => Err(wrong(
            "language",
            format!("{other:?} is not a language the desk writes in: use fr or en"),
        )),
        None => Err(wrong("language", "missing: use fr or en")),
    }
}

fn category(value: Option<&str>) -> Result<Category, Wrong> {
    let known = known_categories();
    match value.map(str::trim) {
        Some(c) if known.contains(&c) => c
            .parse::<Category>()
            .map_err(|_| wrong("category", format!("{c:?} is not a category"))),
        Some(c) => Err(wrong(
            "category",
            format!(
                "{c:?} is not a routing category: use one of {}",
                known.join(", ")
            ),
        )),
        None => Err(wrong(
            "category",
            format!("missing: use one of {}", known.join(", ")),
        )),
    }
}

fn url(value: Option<String>) -> Result<Option<String>, Wrong> {
    match value.map(|u| u.trim().to_string()) {
        Some(u) if u.starts_with("https://") || u.starts_with("http://") => Ok(Some(u)),
        Some(u) if u.is_empty() => Ok(None),
        Some(u) => Err(wrong(
            "url",
            format!("{u:?} is not a web address: write it in full, starting with https://"),
        )),
        None => Ok(None),
    }
}

/// Some text, and every relative link to a file that is there.
fn check_body(body: &str, dir: Option<&Path>) -> Result<(), Wrong> {
    if body.trim().is_empty() {
        return Err(wrong(
            "(body)",
            "the article has no text after its front matter",
        ));
    }
    for link in markdown::relative_links(body) {
        let target = link.split(['#', '?']).next().unwrap_or_default();
        if !target.is_empty() && !dir.is_some_and(|d| d.join(target).exists()) {
            return Err(wrong(
                "(link)",
                format!("the link {link:?} points to no file beside the article"),
            ));
        }
    }
    Ok(())
}

/// The YAML between the opening and closing `---` lines, and the body after them.
fn split_front_matter(text: &str) -> Option<(&str, &str)> {
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))?;
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return Some((&rest[..offset], &rest[offset + line.len()..]));
        }
        offset += line.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "---\ntitle: Réinitialiser son mot de passe\nlanguage: fr\n\
        category: account\nkeywords: [mdp, mot de passe]\n---\n\n1. Ouvrez le portail.\n2. Cliquez.\n";

    #[test]
    fn a_good_article_parses_with_its_renderings() {
        let a = parse("mot-de-passe.md", GOOD, None).unwrap();
        assert_eq!(a.id.as_str(), "mot-de-passe");
        assert_eq!(a.language, Language::Fr);
        assert_eq!(a.category.as_str(), "account");
        assert_eq!(a.keywords, ["mdp", "mot de passe"]);
        assert!(
            a.excerpt_text.contains("1. Ouvrez le portail."),
            "{}",
            a.excerpt_text
        );
        assert!(a.excerpt_html.contains("<ol>"), "{}", a.excerpt_html);
    }

    #[test]
    fn each_mistake_names_its_key() {
        let cases = [
            ("Bad_Name.md", GOOD, "(file)"),
            ("a.md", "title: x\n", "(front matter)"),
            (
                "a.md",
                &GOOD.replace("language: fr", "language: de"),
                "language",
            ),
            ("a.md", &GOOD.replace("language: fr\n", ""), "language"),
            ("a.md", &GOOD.replace("account", "payroll"), "category"),
            ("a.md", &GOOD.replace("title:", "titel:"), "titel"),
            (
                "a.md",
                &GOOD.replace("Réinitialiser son mot de passe", "\"\""),
                "title",
            ),
            (
                "a.md",
                &GOOD.replace("1. Ouvrez le portail.\n2. Cliquez.\n", "  \n"),
                "(body)",
            ),
            (
                "a.md",
                &format!("{GOOD}\nSee [this](other.md).\n"),
                "(link)",
            ),
            (
                "a.md",
                &GOOD.replace("keywords:", "url: portal\nkeywords:"),
                "url",
            ),
            ("a.md", &GOOD.replace("title: ", "title: [Lyon] "), "title"),
            (
                "a.md",
                &GOOD.replace("[mdp, mot de passe]", "{a: b}"),
                "keywords",
            ),
        ];
        for (file, text, key) in cases {
            let err = parse(file, text, Some(Path::new("/nonexistent"))).unwrap_err();
            assert_eq!(err.key, key, "{file}: {err}");
            assert_eq!(err.file, file);
        }
    }

    #[test]
    fn links_to_the_web_and_to_existing_files_are_fine() {
        let dir = std::env::temp_dir().join(format!("kb-links-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("other.md"), "x").unwrap();
        let text = format!(
            "{GOOD}\n[web](https://example.test/a) [here](other.md#top) [mail](mailto:a@b.c)\n"
        );
        let parsed = parse("a.md", &text, Some(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(parsed.is_ok(), "{parsed:?}");
    }
}
