//! `helpdesk kb`: search the knowledge base, see what a mail's acknowledgement would carry,
//! check the articles; and, for `run`, noticing a changed folder.

use super::*;
use crate::config::{ConfigError, KnowledgeSettings};
use crate::domain::Language;
use crate::kb::Hit;

pub(super) fn kb(config_path: &Path, cmd: KbCommand) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    let knowledge = &config.desk.knowledge;
    match cmd {
        KbCommand::Search {
            text,
            lang,
            limit,
            json,
        } => {
            let language = match lang {
                Some(l) => l.parse::<Language>().map_err(|_| {
                    anyhow::Error::new(BadValue(format!("--lang: {l:?} is not fr or en")))
                })?,
                None => knowledge.kb.language_for(Language::choose(
                    None,
                    &text,
                    config.gateway.default_language,
                )),
            };
            let hits = knowledge.kb.search(&text, language, limit.max(1));
            print_hits(&hits, json)?;
        }
        KbCommand::Suggest { file, json } => {
            let raw = read_input(file.as_deref())?;
            let mail = crate::inbound::parse(&raw)
                .map_err(|e| anyhow::anyhow!("cannot read the mail: {e}"))?;
            let reading = crate::desk::decide::read_mail(&mail, &config.gateway, &config.desk);
            let chosen = crate::desk::decide::suggestions(&reading, &config.desk);
            if !json && chosen.customer.is_empty() {
                eprintln!("{}", why_none(&reading, knowledge));
            }
            print_hits(&chosen.customer, json)?;
        }
        KbCommand::Check => {
            let kb = &knowledge.kb;
            for p in &kb.problems {
                println!("{p}");
            }
            refuse_problems(knowledge)?;
            if !knowledge.dir.is_dir() {
                println!(
                    "{} does not exist: no articles. `helpdesk init {}` writes the starter \
                     articles there (an existing helpdesk.toml is kept as it is).",
                    knowledge.dir.display(),
                    config_path
                        .parent()
                        .map_or(".".into(), |p| p.display().to_string())
                );
                return Ok(ExitCode::SUCCESS);
            }
            println!(
                "{}: {} articles ok ({} in French, {} in English)",
                knowledge.dir.display(),
                kb.articles().len(),
                kb.articles()
                    .iter()
                    .filter(|a| a.language == Language::Fr)
                    .count(),
                kb.articles()
                    .iter()
                    .filter(|a| a.language == Language::En)
                    .count(),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_input(file: Option<&Path>) -> Result<Vec<u8>> {
    match file.filter(|f| f.as_os_str() != "-") {
        Some(f) => std::fs::read(f).with_context(|| format!("cannot read {}", f.display())),
        None => {
            let mut raw = Vec::new();
            std::io::stdin().read_to_end(&mut raw)?;
            Ok(raw)
        }
    }
}

/// For a person reading `kb suggest`: why the acknowledgement would carry nothing.
fn why_none(reading: &crate::desk::decide::MailReading, k: &KnowledgeSettings) -> String {
    let best = reading.found.hits.first();
    if k.kb.articles().is_empty() {
        format!("no articles in {}", k.dir.display())
    } else if !k.suggest.tiers.contains(&reading.routing.tier) {
        format!(
            "none: the mail goes to {} and knowledge_base.suggest_for_tiers does not list it",
            reading.routing.tier
        )
    } else if let Some(words) = &reading.found.request {
        format!("none: the mail asks for something (\"{words}\"), which no article gives")
    } else if let Some(best) = best {
        format!(
            "none: the best article, {}, scores {:.1}, under knowledge_base.min_score {:.1}",
            best.article.id, best.score, k.suggest.min_score
        )
    } else {
        "none: no article shares a word with the mail".into()
    }
}

fn print_hits(hits: &[Hit], json: bool) -> Result<()> {
    if json {
        let list: Vec<serde_json::Value> = hits
            .iter()
            .map(|h| {
                serde_json::json!({
                    "id": h.article.id,
                    "title": h.article.title,
                    "language": h.article.language,
                    "category": h.article.category,
                    "score": (f64::from(h.score) * 100.0).round() / 100.0,
                    "url": h.article.url,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        for h in hits {
            println!(
                "{:>6.1}  {:<28} {}",
                h.score,
                h.article.id.as_str(),
                h.article.title
            );
        }
    }
    Ok(())
}

/// `check-config` and `kb check`: a broken article is a configuration error (exit 78)
/// that names the file and the key.
pub(super) fn refuse_problems(k: &KnowledgeSettings) -> Result<(), ConfigError> {
    let Some(first) = k.kb.problems.first() else {
        return Ok(());
    };
    let more = k.kb.problems.len() - 1;
    Err(ConfigError::Invalid {
        key: "knowledge_base".into(),
        message: if more > 0 {
            format!("{first} (and {more} more)")
        } else {
            first.to_string()
        },
        hint: format!(
            "fix the article in {} (`helpdesk kb check` lists every problem); until then the gateway leaves it out",
            k.dir.display()
        ),
    })
}
