//! The knowledge base (L0, self-service): Markdown articles in a folder, indexed in memory
//! with tantivy (BM25, one analyzer per language), searched with a mail's words. What a
//! new ticket's acknowledgement carries is [`suggest::choose`]'s call, shared by the
//! pipeline and `helpdesk kb suggest`.

pub mod analyzer;
pub mod article;
mod cache;
pub mod markdown;
pub mod starter;
pub mod suggest;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::{TextAnalyzer, TokenizerManager};
use tantivy::{DocAddress, IndexReader, TantivyDocument, Term};

use crate::domain::Language;
pub use article::{Article, ArticleId, Problem};

/// How much more a word weighs in the title and in the keywords than in the body.
const TITLE_BOOST: f32 = 3.0;
const KEYWORDS_BOOST: f32 = 3.0;
/// How much of a mail is searched with: the subject and the start of the new text say
/// what it is about; a 2 MB log pasted below says nothing more.
const QUERY_CHARS: usize = 3_000;
/// The most distinct words of a mail a query is made of.
const QUERY_TERMS: usize = 120;
/// The indexing arena: tantivy sizes its term table from it and zeroes it up front, which
/// a one-shot `helpdesk ingest` pays on every mail; so it grows with the articles' text
/// (a thousand 2 KB articles take a few megabytes).
fn writer_memory(articles: &[Article]) -> usize {
    let text: usize = articles
        .iter()
        .map(|a| a.body_text.len() + a.title.len())
        .sum();
    (1_000_000 + 4 * text).min(200_000_000)
}

/// One search result.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub article: Arc<Article>,
    pub score: f32,
}

struct Fields {
    /// Per language: title, keywords, body.
    text: BTreeMap<Language, [Field; 3]>,
}

impl Fields {
    fn new(schema: &mut tantivy::schema::SchemaBuilder) -> Fields {
        let mut text = BTreeMap::new();
        for language in Language::ALL {
            let options = TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer(analyzer::name(language))
                    .set_index_option(IndexRecordOption::WithFreqs),
            );
            let l = language.as_str();
            text.insert(
                language,
                [
                    schema.add_text_field(&format!("title_{l}"), options.clone()),
                    schema.add_text_field(&format!("keywords_{l}"), options.clone()),
                    schema.add_text_field(&format!("body_{l}"), options),
                ],
            );
        }
        Fields { text }
    }
}

/// The articles of one folder, indexed. Immutable: a changed folder makes a new one.
pub struct KnowledgeBase {
    dir: Option<PathBuf>,
    articles: Vec<Arc<Article>>,
    /// The files left out, and why.
    pub problems: Vec<Problem>,
    /// The folder as it was read (see [`fingerprint`]): the gateway reloads when it differs.
    pub read_as: Option<Fingerprint>,
    /// `None` for an empty base: nothing to search, no index built.
    reader: Option<IndexReader>,
    /// The index's files as tantivy wrote them (footers included), for the cache.
    files: Option<tantivy::directory::RamDirectory>,
    /// One analyzer per language, built once (a search clones it: shared word lists).
    analyzers: BTreeMap<Language, TextAnalyzer>,
    fields: Fields,
}

impl std::fmt::Debug for KnowledgeBase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeBase")
            .field("dir", &self.dir)
            .field("articles", &self.articles.len())
            .field("problems", &self.problems)
            .finish()
    }
}

impl PartialEq for KnowledgeBase {
    fn eq(&self, other: &Self) -> bool {
        self.dir == other.dir && self.articles == other.articles
    }
}

/// Why a knowledge base could not be built at all (a broken article is a [`Problem`],
/// not this).
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    #[error("cannot read the knowledge base folder {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot index the knowledge base: {0}")]
    Index(#[from] tantivy::TantivyError),
}

impl KnowledgeBase {
    /// [`KnowledgeBase::load`], through a cache file (`cache`): a one-shot command (an
    /// MTA's `helpdesk ingest`, once per mail) then reads the parsed articles and the index
    /// back instead of parsing and indexing them again. The cache is keyed by the folder's
    /// fingerprint and this build; any trouble with it costs a rebuild, never an error.
    pub fn load_cached(dir: &Path, cache: &Path) -> Result<KnowledgeBase, KbError> {
        cache::load(dir, cache)
    }

    /// No articles: nothing is ever suggested.
    pub fn empty() -> KnowledgeBase {
        KnowledgeBase {
            dir: None,
            articles: Vec::new(),
            problems: Vec::new(),
            read_as: None,
            reader: None,
            files: None,
            analyzers: analyzers(),
            fields: Fields::new(&mut Schema::builder()),
        }
    }

    /// Every `*.md` file of `dir`, sorted by name; the broken ones are left out and
    /// listed in [`KnowledgeBase::problems`]. Files in subfolders are not articles (they
    /// are what articles link to: images, attachments).
    pub fn load(dir: &Path) -> Result<KnowledgeBase, KbError> {
        // Taken first: a file changed while the folder is read is read again later.
        let read_as = fingerprint(dir);
        let read_err = |source| KbError::Read {
            path: dir.to_path_buf(),
            source,
        };
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map_err(read_err)?
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".md") && !n.starts_with('.'))
            .collect();
        names.sort();
        let mut articles = Vec::new();
        let mut problems = Vec::new();
        for name in names {
            let parsed = std::fs::read(dir.join(&name))
                .map_err(|e| Problem {
                    file: name.clone(),
                    key: "(file)".into(),
                    message: e.to_string(),
                })
                .and_then(|bytes| {
                    String::from_utf8(bytes).map_err(|_| Problem {
                        file: name.clone(),
                        key: "(file)".into(),
                        message: "not UTF-8 text: save the file as UTF-8".into(),
                    })
                })
                .and_then(|text| article::parse(&name, &text, Some(dir)));
            match parsed {
                Ok(a) => articles.push(a),
                Err(p) => problems.push(p),
            }
        }
        let mut kb = Self::from_articles(Some(dir.to_path_buf()), articles, problems)?;
        kb.read_as = read_as;
        Ok(kb)
    }

    /// Indexes `articles`. Two with the same id cannot both be (ids are file names, so
    /// only articles made in code can clash): the second is a problem.
    pub fn from_articles(
        dir: Option<PathBuf>,
        articles: Vec<Article>,
        mut problems: Vec<Problem>,
    ) -> Result<KnowledgeBase, KbError> {
        let mut schema = Schema::builder();
        let fields = Fields::new(&mut schema);
        let tokenizers = TokenizerManager::default();
        for language in Language::ALL {
            tokenizers.register(analyzer::name(language), analyzer::analyzer(language));
        }
        // One segment, written by this thread: no writer threads to start and join, which a
        // one-shot `helpdesk ingest` (an MTA's pipe, once per mail) would pay every time; and
        // a document's id in the segment is its article's index.
        let files = tantivy::directory::RamDirectory::create();
        let mut writer = tantivy::IndexBuilder::new()
            .schema(schema.build())
            .tokenizers(tokenizers)
            .single_segment_index_writer::<TantivyDocument>(
                files.clone(),
                writer_memory(&articles),
            )?;
        let mut kept: Vec<Arc<Article>> = Vec::new();
        for a in articles {
            if kept.iter().any(|k| k.id == a.id) {
                problems.push(Problem {
                    file: format!("{}.md", a.id),
                    key: "(file)".into(),
                    message: "another article has the same id".into(),
                });
                continue;
            }
            let [title, keywords, body] = fields.text[&a.language];
            let lang = a.language;
            let mut doc = TantivyDocument::default();
            doc.add_text(title, analyzer::expand(&a.title, lang));
            doc.add_text(keywords, analyzer::expand(&a.keywords.join("\n"), lang));
            doc.add_text(body, analyzer::expand(&a.body_text, lang));
            writer.add_document(doc)?;
            kept.push(Arc::new(a));
        }
        let index = writer.finalize()?;
        Self::from_index(dir, kept, problems, index, files)
    }

    /// The base over an index built for `articles` (here, or read back from the cache).
    fn from_index(
        dir: Option<PathBuf>,
        articles: Vec<Arc<Article>>,
        problems: Vec<Problem>,
        index: tantivy::Index,
        files: tantivy::directory::RamDirectory,
    ) -> Result<KnowledgeBase, KbError> {
        let reader = index
            .reader_builder()
            .reload_policy(tantivy::ReloadPolicy::Manual)
            .try_into()?;
        Ok(KnowledgeBase {
            dir,
            articles,
            problems,
            read_as: None,
            reader: Some(reader),
            files: Some(files),
            analyzers: analyzers(),
            fields: Fields::new(&mut Schema::builder()),
        })
    }

    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }

    pub fn articles(&self) -> &[Arc<Article>] {
        &self.articles
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Article>> {
        self.articles.iter().find(|a| a.id.as_str() == id)
    }

    /// The ids nearest to a mistyped one, for a refusal that helps.
    pub fn closest(&self, id: &str, n: usize) -> Vec<ArticleId> {
        let mut scored: Vec<(f64, &ArticleId)> = self
            .articles
            .iter()
            .map(|a| {
                let s = strsim::normalized_levenshtein(id, a.id.as_str());
                // A typed prefix or part of the id ("vpn") counts as close.
                let part = if a.id.as_str().contains(id) { 0.5 } else { 0.0 };
                (s + part, &a.id)
            })
            .collect();
        scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
        scored
            .into_iter()
            .take(n)
            .map(|(_, id)| id.clone())
            .collect()
    }

    /// Whether any article is in `language`.
    pub fn has(&self, language: Language) -> bool {
        self.articles.iter().any(|a| a.language == language)
    }

    /// The language to search in for a mail in `language`: its own when the base has
    /// articles in it, else the other (a desk that wrote only English articles still
    /// helps its French customers).
    pub fn language_for(&self, language: Language) -> Language {
        if self.has(language) {
            return language;
        }
        Language::ALL
            .into_iter()
            .find(|l| self.has(*l))
            .unwrap_or(language)
    }

    /// The best articles for `text`, best first, in `language` only.
    pub fn search(&self, text: &str, language: Language, limit: usize) -> Vec<Hit> {
        self.search_weighted(text, language, limit, 1.0)
    }

    pub fn search_weighted(
        &self,
        text: &str,
        language: Language,
        limit: usize,
        body_boost: f32,
    ) -> Vec<Hit> {
        let Some(reader) = self.reader.as_ref().filter(|_| limit > 0) else {
            return Vec::new();
        };
        let mut end = text.len().min(QUERY_CHARS);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let mut analyzer = self.analyzers[&language].clone();
        let mut words = analyzer::terms_with(&mut analyzer, &text[..end], language);
        let mut seen = std::collections::HashSet::new();
        words.retain(|w| seen.insert(w.clone()));
        words.truncate(QUERY_TERMS);
        let [title, keywords, body] = self.fields.text[&language];
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        for w in &words {
            for (field, boost) in [
                (title, TITLE_BOOST),
                (keywords, KEYWORDS_BOOST),
                (body, body_boost),
            ] {
                let term = TermQuery::new(
                    Term::from_field_text(field, w),
                    IndexRecordOption::WithFreqs,
                );
                clauses.push((
                    Occur::Should,
                    Box::new(BoostQuery::new(Box::new(term), boost)),
                ));
            }
        }
        if clauses.is_empty() {
            return Vec::new();
        }
        let searcher = reader.searcher();
        let top = match searcher.search(
            &BooleanQuery::new(clauses),
            &TopDocs::with_limit(limit).order_by_score(),
        ) {
            Ok(top) => top,
            Err(e) => {
                tracing::warn!(error = %e, "knowledge base search failed");
                return Vec::new();
            }
        };
        top.into_iter()
            .filter_map(|(score, address)| {
                let article = self.article_at(address)?;
                (article.language == language).then_some(Hit { article, score })
            })
            .collect()
    }

    /// The article a hit is: the index has one segment, whose documents are the
    /// articles in order.
    fn article_at(&self, address: DocAddress) -> Option<Arc<Article>> {
        (address.segment_ord == 0)
            .then(|| self.articles.get(address.doc_id as usize).cloned())
            .flatten()
    }
}

fn analyzers() -> BTreeMap<Language, TextAnalyzer> {
    Language::ALL
        .into_iter()
        .map(|l| (l, analyzer::analyzer(l)))
        .collect()
}

/// `run`: a broken article is reported and left out; it never stops the gateway.
pub fn log_problems(kb: &KnowledgeBase) {
    for p in &kb.problems {
        tracing::error!(file = %p.file, key = %p.key, problem = %p.message, "knowledge base article left out");
    }
    tracing::info!(
        articles = kb.articles().len(),
        left_out = kb.problems.len(),
        dir = %kb.dir().map(|d| d.display().to_string()).unwrap_or_default(),
        "knowledge base"
    );
}

/// What `helpdesk kb check` and `check-config` report: every problem, by file.
pub fn check(dir: &Path) -> Result<Vec<Problem>, KbError> {
    Ok(KnowledgeBase::load(dir)?.problems)
}

/// A folder's articles as names, sizes and modification times: the gateway reloads the
/// knowledge base when they change.
pub type Fingerprint = Vec<(String, u64, std::time::SystemTime)>;

/// A fingerprint of the folder's articles (names, sizes, modification times).
pub fn fingerprint(dir: &Path) -> Option<Fingerprint> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let meta = e.metadata().ok()?;
            Some((name, meta.len(), meta.modified().ok()?))
        })
        .filter(|(n, _, _)| n.ends_with(".md"))
        .collect();
    out.sort();
    Some(out)
}
