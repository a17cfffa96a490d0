//! Every message of the real-world corpus gets the outcome its label asks for, and none
//! crashes the gateway or goes unrecorded.

use std::collections::BTreeMap;

use helpdesk::inbound;
use helpdesk::pipeline::Processed;

use crate::support::{Desk, corpus_dir};

struct Label {
    file: String,
    category: String,
    expected: String,
}

fn labels() -> Vec<Label> {
    let text =
        std::fs::read_to_string(corpus_dir().join("labels.tsv")).expect("tests/corpus/labels.tsv");
    let labels: Vec<Label> = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            Label {
                file: cols[0].into(),
                category: cols[1].into(),
                expected: cols[2].into(),
            }
        })
        .collect();
    assert_eq!(labels.len(), 275, "the corpus has 275 labelled messages");
    labels
}

/// The one outcome each `quarantine_or_ticket` message must have, decided message by
/// message (`tests/corpus/outcomes.tsv`: file, outcome, why).
fn decided_outcomes() -> BTreeMap<String, String> {
    let text = std::fs::read_to_string(corpus_dir().join("outcomes.tsv"))
        .expect("tests/corpus/outcomes.tsv");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            (cols[0].to_string(), cols[1].to_string())
        })
        .collect()
}

fn raw(file: &str) -> Vec<u8> {
    std::fs::read(corpus_dir().join(file)).unwrap()
}

/// The earlier mail a labelled reply answers: same customer, its subject, and the
/// Message-ID the reply's In-Reply-To/References point at (when it has one).
fn parent_of(reply: &[u8]) -> Vec<u8> {
    let mail = inbound::parse(reply).expect("a labelled reply parses");
    let from = mail.from.expect("a labelled reply has a sender");
    let parent_id = mail
        .in_reply_to
        .first()
        .or(mail.references.last())
        .cloned()
        .unwrap_or_else(|| "seed@corpus.test".into());
    let subject = inbound::subject::analyse(&mail.subject).base;
    format!(
        "From: {}\r\nTo: support@example.test\r\nSubject: {subject}\r\nMessage-ID: <{parent_id}>\r\n\r\nThe original request.\r\n",
        from.address
    )
    .into_bytes()
}

#[tokio::test]
async fn every_corpus_message_gets_the_outcome_its_label_asks_for() {
    let mut wrong = Vec::new();
    let mut tally: BTreeMap<String, usize> = BTreeMap::new();
    let decided = decided_outcomes();
    let labels = labels();
    let undecided: Vec<&str> = labels
        .iter()
        .filter(|l| l.expected == "quarantine_or_ticket" && !decided.contains_key(&l.file))
        .map(|l| l.file.as_str())
        .collect();
    assert!(
        undecided.is_empty(),
        "no decided outcome in outcomes.tsv for {undecided:?}"
    );
    for label in labels {
        let desk = Desk::new().await;
        let bytes = raw(&label.file);
        let seeded = if label.expected == "thread" {
            match desk.file(&parent_of(&bytes)).await {
                Processed::Filed { ticket, .. } => Some(ticket),
                other => panic!("{}: seeding the parent gave {other:?}", label.file),
            }
        } else {
            None
        };
        let outbox_before = desk.count("SELECT COUNT(*) FROM outbox").await;
        let outcome = desk.file(&bytes).await;
        let acks = desk.count("SELECT COUNT(*) FROM outbox").await - outbox_before;
        *tally
            .entry(format!("{} -> {}", label.category, outcome.label()))
            .or_default() += 1;
        let ok = match label.expected.as_str() {
            "create_ticket" => matches!(outcome, Processed::Filed { .. }) && acks == 1,
            "thread" => {
                matches!(outcome, Processed::Appended { ticket, .. } if Some(ticket) == seeded)
                    && acks == 0
            }
            "no_autoreply" => {
                matches!(outcome, Processed::Ignored(_) | Processed::Quarantined(_)) && acks == 0
            }
            "quarantine_or_ticket" => match decided[&label.file].as_str() {
                "new_ticket" => matches!(outcome, Processed::Filed { .. }) && acks == 1,
                "quarantined" => matches!(outcome, Processed::Quarantined(_)) && acks == 0,
                "ignored" => matches!(outcome, Processed::Ignored(_)) && acks == 0,
                other => panic!("{}: unknown decided outcome {other}", label.file),
            },
            other => panic!("unknown expectation {other}"),
        };
        if !ok {
            wrong.push(format!(
                "{} ({}): expected {}, got {:?} with {acks} acknowledgement(s)",
                label.file, label.category, label.expected, outcome
            ));
        }
        // Whatever the outcome, the raw bytes are stored.
        let stored = desk
            .count("SELECT COUNT(*) FROM messages WHERE direction = 'inbound' AND length(raw) > 0")
            .await;
        let expected_rows = if seeded.is_some() { 2 } else { 1 };
        if stored != expected_rows && !bytes.is_empty() {
            wrong.push(format!(
                "{}: {stored} inbound rows stored, expected {expected_rows}",
                label.file
            ));
        }
    }
    eprintln!("corpus outcomes: {tally:#?}");
    assert!(
        wrong.is_empty(),
        "{} of 275 corpus messages handled wrongly:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[tokio::test]
async fn visible_reply_text_matches_what_the_upstream_tests_state() {
    let mut checked = 0;
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".expected.txt") else {
            continue;
        };
        let expected = std::fs::read_to_string(&path).unwrap();
        let mail = inbound::parse(&raw(&format!("{stem}.eml"))).unwrap();
        // Upstream's "visible text" is what we split into the new text and the signature.
        let visible = if mail.signature.is_empty() {
            mail.reply_text.trim().to_string()
        } else {
            format!("{}\n\n{}", mail.reply_text.trim(), mail.signature.trim())
        };
        // Compared line by line, without trailing spaces, blank lines or the `-- ` delimiter
        // (which our split consumes).
        let normal = |t: &str| -> Vec<String> {
            t.lines()
                .map(|l| l.trim_end().to_string())
                .filter(|l| !l.is_empty() && l != "--")
                .collect()
        };
        assert_eq!(normal(&visible), normal(&expected), "{stem}: reply text");
        checked += 1;
    }
    println!("upstream visible-text expectations: {checked}/13 right");
    assert_eq!(checked, 13);
}

#[tokio::test]
async fn redmine_replies_above_a_quoted_marker_keep_only_the_new_text() {
    for file in [
        "110-redmine-issue_update_with_multiple_quoted_reply_above.eml",
        "111-redmine-issue_update_with_quoted_reply_above.eml",
    ] {
        let mail = inbound::parse(&raw(file)).unwrap();
        assert!(
            mail.reply_text
                .contains("An update to the issue by the sender."),
            "{file}"
        );
        assert!(
            !mail
                .reply_text
                .contains("Looks like the JSON api for projects was missed."),
            "{file}"
        );
        assert!(
            mail.quoted_text
                .contains("Looks like the JSON api for projects was missed."),
            "{file}"
        );
    }
}

#[tokio::test]
async fn the_whole_corpus_in_one_mailbox_records_every_message_once() {
    let desk = Desk::new().await;
    let labels = labels();
    for label in &labels {
        desk.file(&raw(&label.file)).await;
    }
    let inbound = desk
        .count("SELECT COUNT(*) FROM messages WHERE direction = 'inbound'")
        .await;
    assert_eq!(
        inbound,
        labels.len() as i64,
        "one stored row per mail, whatever became of it"
    );
    let acks = desk
        .count("SELECT COUNT(*) FROM outbox WHERE kind = 'acknowledgement' AND status <> 'held'")
        .await;
    let held = desk
        .count(
            "SELECT COUNT(*) FROM events WHERE kind = 'mail_held' \
             AND json_extract(detail, '$.kind') = 'acknowledgement'",
        )
        .await;
    let tickets = desk.count("SELECT COUNT(*) FROM tickets").await;
    // Test suites reuse a few addresses many times: past an address's hourly budget its
    // acknowledgements are held (and recorded), as they would be in a loop.
    assert_eq!(
        acks + held,
        tickets,
        "exactly one acknowledgement per new ticket, sent or held"
    );
    // …and only past it: every address with a held acknowledgement got exactly its budget.
    let (short,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM (SELECT DISTINCT json_extract(detail, '$.to') AS a FROM events \
         WHERE kind = 'mail_held') h WHERE (SELECT COUNT(*) FROM outbox o \
         WHERE json_extract(o.rcpt_to, '$[0]') = h.a AND o.status <> 'held') <> ?",
    )
    .bind(i64::from(helpdesk::config::MailBudget::default().per_hour))
    .fetch_one(&desk.db().await)
    .await
    .unwrap();
    assert_eq!(short, 0, "an address was held before its budget was spent");
    // Feeding the same mailbox again files nothing new: every mail is a duplicate now.
    for label in &labels {
        let outcome = desk.file(&raw(&label.file)).await;
        assert!(
            matches!(outcome, Processed::Duplicate(_)),
            "{}: second pass gave {outcome:?}",
            label.file
        );
    }
    assert_eq!(desk.count("SELECT COUNT(*) FROM tickets").await, tickets);
}

#[tokio::test]
async fn raw_latin1_subjects_from_request_tracker_fixtures_are_readable() {
    let mail = inbound::parse(&raw("074-rt-new-ticket-from-iso-8859-1.eml")).unwrap();
    assert_eq!(
        mail.from.unwrap().name.as_deref(),
        Some("Wilhelmsen Håvard")
    );
    let mail = inbound::parse(&raw("001-rt-8859-15-message-series-msg1.eml")).unwrap();
    assert!(mail.subject.contains("äöüß"), "{}", mail.subject);
}

/// Attachments are kept as ranges of the raw mail (no second copy) whenever the range
/// decodes to exactly the attachment the parser read: for the corpus, most of them.
#[test]
fn attachments_are_kept_as_ranges_of_the_raw_mail_when_they_decode_exactly() {
    let (mut ranged, mut kept) = (0, 0);
    for label in labels() {
        let bytes = raw(&label.file);
        let Ok(mail) = inbound::parse(&bytes) else {
            continue;
        };
        for a in &mail.attachments {
            match a.raw_body {
                Some(body) => {
                    ranged += 1;
                    assert_eq!(
                        body.decode(&bytes).as_deref(),
                        Some(&a.content[..]),
                        "{}: {:?}",
                        label.file,
                        a.filename
                    );
                }
                None => kept += 1,
            }
        }
    }
    eprintln!("{ranged} attachments as ranges, {kept} kept decoded");
    assert!(ranged > kept, "{ranged} ranged, {kept} kept");
}
