//! `[knowledge_base]`: where the articles are, how sure the desk must be before it sends
//! one, which tiers get them, and how long a ticket that got some waits at L0.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::Duration;
use serde::Deserialize;

use super::{ConfigError, invalid};
use crate::calendar::Calendar;
use crate::domain::Tier;
use crate::kb::KnowledgeBase;
use crate::kb::suggest::{DEFAULT_MIN_SCORE, DEFAULT_RELATIVE, SuggestSettings};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKnowledgeBase {
    dir: Option<String>,
    hold: Option<String>,
    min_score: Option<f32>,
    relative: Option<f32>,
    suggest_for_tiers: Option<Vec<String>>,
}

/// The knowledge base and what the desk does with it.
#[derive(Clone, Debug)]
pub struct KnowledgeSettings {
    pub dir: PathBuf,
    /// `dir` was written in the configuration: a missing folder is then an error, not a
    /// desk without articles.
    pub dir_chosen: bool,
    /// Business time a ticket that got articles stays at L0 with no agent (zero: none).
    pub hold: Duration,
    pub suggest: SuggestSettings,
    /// The articles, indexed; replaced whole when the folder changes.
    pub kb: Arc<KnowledgeBase>,
    /// Where the parsed and indexed articles are kept between processes (beside the
    /// database); `None`: built afresh every time.
    pub cache: Option<PathBuf>,
}

impl PartialEq for KnowledgeSettings {
    fn eq(&self, other: &Self) -> bool {
        self.dir == other.dir
            && self.hold == other.hold
            && self.suggest == other.suggest
            && Arc::ptr_eq(&self.kb, &other.kb)
    }
}

impl Default for KnowledgeSettings {
    fn default() -> Self {
        KnowledgeSettings {
            dir: PathBuf::from("kb"),
            dir_chosen: false,
            hold: Duration::zero(),
            suggest: SuggestSettings::default(),
            kb: Arc::new(KnowledgeBase::empty()),
            cache: None,
        }
    }
}

impl KnowledgeSettings {
    /// The articles of [`KnowledgeSettings::dir`], indexed. Broken articles are left out
    /// and listed in the result's `problems`, and so is a folder the configuration names
    /// that is not there (one it does not name is simply an empty base).
    pub fn load(&self) -> Result<KnowledgeBase, ConfigError> {
        if !self.dir.is_dir() {
            let mut kb = KnowledgeBase::empty();
            // Named in the configuration but not there: a typo or an unmounted disk.
            // `check-config` refuses it; `run` says so and answers without articles.
            if self.dir_chosen {
                kb.problems.push(crate::kb::Problem {
                    file: self.dir.display().to_string(),
                    key: "knowledge_base.dir".into(),
                    message: "the folder does not exist: create it (`helpdesk init` writes \
                              the starter articles) or point the key at the articles"
                        .into(),
                });
            }
            return Ok(kb);
        }
        match &self.cache {
            Some(cache) => KnowledgeBase::load_cached(&self.dir, cache),
            None => KnowledgeBase::load(&self.dir),
        }
        .map_err(|e| {
            invalid(
                "knowledge_base.dir",
                e.to_string(),
                "make the folder readable by the gateway",
            )
        })
    }
}

pub(super) fn build(
    raw: RawKnowledgeBase,
    base: &Path,
    calendar: &Calendar,
) -> Result<KnowledgeSettings, ConfigError> {
    let dir_chosen = raw.dir.is_some();
    let dir = PathBuf::from(raw.dir.as_deref().unwrap_or("kb").trim());
    let dir = if dir.is_absolute() {
        dir
    } else {
        base.join(dir)
    };
    let hold = match raw.hold.as_deref().map(str::trim) {
        None | Some("0") | Some("") => Duration::zero(),
        Some(text) => super::time::business("knowledge_base.hold", text, calendar)?,
    };
    let min_score = raw.min_score.unwrap_or(DEFAULT_MIN_SCORE);
    if !min_score.is_finite() || min_score <= 0.0 {
        return Err(invalid(
            "knowledge_base.min_score",
            format!("{min_score} would send articles that share a single word with the mail"),
            format!(
                "use a positive score; `helpdesk kb search` shows the scores (default {DEFAULT_MIN_SCORE})"
            ),
        ));
    }
    let relative = raw.relative.unwrap_or(DEFAULT_RELATIVE);
    if !(0.0..=1.0).contains(&relative) {
        return Err(invalid(
            "knowledge_base.relative",
            format!("{relative} is not a share of the best score"),
            format!("use a number from 0 to 1 (default {DEFAULT_RELATIVE})"),
        ));
    }
    let tiers = match raw.suggest_for_tiers {
        None => SuggestSettings::default().tiers,
        Some(list) => list
            .iter()
            .map(|t| {
                t.trim().parse::<Tier>().map_err(|_| {
                    invalid(
                        "knowledge_base.suggest_for_tiers",
                        format!("{t:?} is not a tier"),
                        "list tiers among L0, L1, L2, L3, L4, e.g. [\"L0\", \"L1\"]",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    Ok(KnowledgeSettings {
        dir,
        dir_chosen,
        hold,
        suggest: SuggestSettings {
            min_score,
            relative,
            tiers,
        },
        kb: Arc::new(KnowledgeBase::empty()),
        cache: None,
    })
}
