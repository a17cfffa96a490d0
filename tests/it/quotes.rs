//! What a person wrote this time, per mail client and language: `tests/quotes/*.txt` hold
//! one mail body each (`=== mail`), the new text expected (`=== reply`) and the signature
//! expected (`=== signature`, empty when none). Every case must hold; the count is printed
//! for the closing note.

use std::path::Path;

use helpdesk::inbound::quote_strip::split;

struct Case {
    name: String,
    mail: String,
    reply: String,
    signature: String,
}

fn cases() -> Vec<Case> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/quotes");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "txt"))
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).unwrap();
            let section = |name: &str| -> String {
                let start = text
                    .find(&format!("=== {name}\n"))
                    .unwrap_or_else(|| panic!("{}: no {name} section", path.display()))
                    + name.len()
                    + 5;
                let end = text[start..]
                    .find("\n=== ")
                    .map_or(text.len(), |e| start + e + 1);
                text[start..end].to_string()
            };
            Case {
                name: path.file_name().unwrap().to_string_lossy().into_owned(),
                mail: section("mail"),
                reply: section("reply").trim().to_string(),
                signature: section("signature").trim().to_string(),
            }
        })
        .collect()
}

#[test]
fn the_new_text_and_the_signature_are_found_for_every_client_and_language() {
    let cases = cases();
    assert!(cases.len() >= 30, "{} cases", cases.len());
    let mut wrong = Vec::new();
    for c in &cases {
        let s = split(&c.mail);
        if s.reply != c.reply || s.signature != c.signature {
            wrong.push(format!(
                "{}:\n  reply     {:?}\n  expected  {:?}\n  signature {:?}\n  expected  {:?}",
                c.name, s.reply, c.reply, s.signature, c.signature
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
