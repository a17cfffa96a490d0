//! The knowledge base `helpdesk init` writes: fifteen articles in French and fifteen in
//! English on what IT desks hear most, for the desk to adapt (its portal, its printers).
//! Built into the binary so `init` needs nothing beside it.

use std::path::Path;

/// File name and content of each starter article.
pub const ARTICLES: &[(&str, &str)] = &[
    (
        "account-locked.md",
        include_str!("../../templates/kb/account-locked.md"),
    ),
    (
        "boite-mail-pleine.md",
        include_str!("../../templates/kb/boite-mail-pleine.md"),
    ),
    (
        "compte-verrouille.md",
        include_str!("../../templates/kb/compte-verrouille.md"),
    ),
    (
        "imprimante-bourrage.md",
        include_str!("../../templates/kb/imprimante-bourrage.md"),
    ),
    (
        "imprimante-file-pilote.md",
        include_str!("../../templates/kb/imprimante-file-pilote.md"),
    ),
    (
        "mailbox-full.md",
        include_str!("../../templates/kb/mailbox-full.md"),
    ),
    (
        "mfa-new-phone.md",
        include_str!("../../templates/kb/mfa-new-phone.md"),
    ),
    (
        "mfa-nouveau-telephone.md",
        include_str!("../../templates/kb/mfa-nouveau-telephone.md"),
    ),
    (
        "mot-de-passe-oublie.md",
        include_str!("../../templates/kb/mot-de-passe-oublie.md"),
    ),
    (
        "onedrive-sync.md",
        include_str!("../../templates/kb/onedrive-sync.md"),
    ),
    (
        "onedrive-synchronisation.md",
        include_str!("../../templates/kb/onedrive-synchronisation.md"),
    ),
    (
        "ordinateur-lent.md",
        include_str!("../../templates/kb/ordinateur-lent.md"),
    ),
    (
        "outlook-signature.md",
        include_str!("../../templates/kb/outlook-signature.md"),
    ),
    (
        "password-forgotten.md",
        include_str!("../../templates/kb/password-forgotten.md"),
    ),
    (
        "printer-jam.md",
        include_str!("../../templates/kb/printer-jam.md"),
    ),
    (
        "printer-queue-driver.md",
        include_str!("../../templates/kb/printer-queue-driver.md"),
    ),
    (
        "report-phishing.md",
        include_str!("../../templates/kb/report-phishing.md"),
    ),
    (
        "scan-to-email.md",
        include_str!("../../templates/kb/scan-to-email.md"),
    ),
    (
        "scan-vers-mail.md",
        include_str!("../../templates/kb/scan-vers-mail.md"),
    ),
    (
        "second-ecran.md",
        include_str!("../../templates/kb/second-ecran.md"),
    ),
    (
        "second-screen.md",
        include_str!("../../templates/kb/second-screen.md"),
    ),
    (
        "signaler-hameconnage.md",
        include_str!("../../templates/kb/signaler-hameconnage.md"),
    ),
    (
        "signature-outlook.md",
        include_str!("../../templates/kb/signature-outlook.md"),
    ),
    (
        "slow-computer.md",
        include_str!("../../templates/kb/slow-computer.md"),
    ),
    (
        "teams-problemes.md",
        include_str!("../../templates/kb/teams-problemes.md"),
    ),
    (
        "teams-problems.md",
        include_str!("../../templates/kb/teams-problems.md"),
    ),
    (
        "vpn-erreurs.md",
        include_str!("../../templates/kb/vpn-erreurs.md"),
    ),
    (
        "vpn-errors.md",
        include_str!("../../templates/kb/vpn-errors.md"),
    ),
    (
        "wifi-connection.md",
        include_str!("../../templates/kb/wifi-connection.md"),
    ),
    (
        "wifi-connexion.md",
        include_str!("../../templates/kb/wifi-connexion.md"),
    ),
];

/// Writes the starter articles into `dir` (made if missing), leaving any file that is
/// already there as it is. The names of the files written.
pub fn write(dir: &Path) -> std::io::Result<Vec<String>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for (name, text) in ARTICLES {
        let path = dir.join(name);
        if path.exists() {
            continue;
        }
        std::fs::write(&path, text)?;
        written.push((*name).to_string());
    }
    Ok(written)
}

/// The starter articles, parsed and indexed (tests and benchmarks; the unit tests below
/// check that none is a problem).
pub fn knowledge_base() -> super::KnowledgeBase {
    let (mut articles, mut problems) = (Vec::new(), Vec::new());
    for (name, text) in ARTICLES {
        match super::article::parse(name, text, None) {
            Ok(a) => articles.push(a),
            Err(p) => problems.push(p),
        }
    }
    super::KnowledgeBase::from_articles(None, articles, problems)
        .unwrap_or_else(|_| super::KnowledgeBase::empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Language;

    #[test]
    fn every_starter_article_parses_and_each_language_has_fifteen() {
        let kb = knowledge_base();
        assert!(kb.problems.is_empty(), "{:?}", kb.problems);
        for language in Language::ALL {
            let n = kb
                .articles()
                .iter()
                .filter(|a| a.language == language)
                .count();
            assert_eq!(n, 15, "{language:?}");
        }
        for a in kb.articles() {
            assert!(
                a.excerpt_text.lines().count() >= 3,
                "{}: {}",
                a.id,
                a.excerpt_text
            );
        }
    }

    #[test]
    fn search_stays_in_the_language_asked() {
        let kb = knowledge_base();
        let fr = kb.search("imprimante bourrage papier coincé", Language::Fr, 5);
        assert_eq!(fr[0].article.id.as_str(), "imprimante-bourrage");
        assert!(fr.iter().all(|h| h.article.language == Language::Fr));
        let en = kb.search("paper jam in the printer", Language::En, 5);
        assert_eq!(en[0].article.id.as_str(), "printer-jam");
        assert!(en.iter().all(|h| h.article.language == Language::En));
    }
}
