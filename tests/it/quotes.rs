//! What a person wrote this time, per mail client and language: `tests/quotes/*.txt` hold
//! one mail body each (`=== mail`), the new text expected (`=== reply`) and the signature
//! expected (`=== signature`, empty when none). `*.eml` cases are whole mails (charsets,
//! quoted-printable, `format=flowed`) read by the gateway's parser, with their `*.expect`
//! beside them. Every case must hold; the count is printed for the closing note.

use std::path::Path;

use helpdesk::inbound::quote_strip::split;

struct Case {
    name: String,
    mail: String,
    reply: String,
    signature: String,
    /// For a whole mail: what the parser found.
    parsed: Option<(String, String)>,
}

/// The text of `=== NAME` up to the next `=== ` line.
fn section(text: &str, name: &str) -> Option<String> {
    let start = text.find(&format!("=== {name}\n"))? + name.len() + 5;
    let end = text[start..]
        .find("\n=== ")
        .map_or(text.len(), |e| start + e + 1);
    Some(text[start..end].to_string())
}

fn cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/quotes");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    let mut cases: Vec<Case> = files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let section = |name: &str| {
                section(&text, name)
                    .unwrap_or_else(|| panic!("{}: no {name} section", path.display()))
            };
            Case {
                name: path.file_name().unwrap().to_string_lossy().into_owned(),
                mail: section("mail"),
                reply: section("reply").trim().to_string(),
                signature: section("signature").trim().to_string(),
                parsed: None,
            }
        })
        .collect();
    let mut mails: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    mails.sort();
    for path in mails {
        let raw = std::fs::read(&path).unwrap();
        let expect = std::fs::read_to_string(path.with_extension("expect")).unwrap();
        let section = |name: &str| section(&expect, name).unwrap().trim().to_string();
        let mail = helpdesk::inbound::parse(&raw).unwrap();
        cases.push(Case {
            name: path.file_name().unwrap().to_string_lossy().into_owned(),
            mail: String::new(),
            reply: section("reply"),
            signature: section("signature"),
            parsed: Some((mail.reply_text, mail.signature)),
        });
    }
    cases
}

#[test]
fn the_new_text_and_the_signature_are_found_for_every_client_and_language() {
    let cases = cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut wrong = Vec::new();
    for c in &cases {
        let (reply, signature) = match &c.parsed {
            Some(found) => found.clone(),
            None => {
                let s = split(&c.mail);
                (s.reply, s.signature)
            }
        };
        if reply != c.reply || signature != c.signature {
            wrong.push(format!(
                "{}:\n  reply     {:?}\n  expected  {:?}\n  signature {:?}\n  expected  {:?}",
                c.name, reply, c.reply, signature, c.signature
            ));
        }
    }
    println!(
        "quote stripping: {}/{} client formats right",
        cases.len() - wrong.len(),
        cases.len()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
