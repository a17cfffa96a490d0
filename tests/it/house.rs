//! The shape of `src/`: every top-level module imports only from the floors below its own,
//! so there are no circles and no arrows running back up. The floors are the README's
//! module table, bottom first; a new module must be placed on one before it builds green.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Bottom first. A module may use any module on a lower floor, none on its own or above.
const FLOORS: &[&[&str]] = &[
    &["clock", "metrics"],
    &["domain"],
    &["calendar", "inbound", "routing", "dkim", "tls", "stage"],
    &["timing", "roster", "kb", "oauth"],
    &["render", "store"],
    &["config", "lease"],
    &["desk"],
    &["stats"],
    &["pipeline"],
    &["ingest", "outbox", "web"],
    &["app"],
    &["cli"],
];

fn floor(module: &str) -> usize {
    FLOORS
        .iter()
        .position(|f| f.contains(&module))
        .unwrap_or_else(|| panic!("module `{module}` is on no floor: add it to FLOORS"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src/ readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The file without its `#[cfg(test)] mod … { … }` blocks: tests may reach anywhere.
fn without_tests(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let next_is_mod = lines
            .get(i + 1)
            .is_some_and(|l| l.trim_start().starts_with("mod ") && l.trim_end().ends_with('{'));
        if lines[i].trim() == "#[cfg(test)]" && next_is_mod {
            let mut depth = 0i32;
            let mut j = i + 1;
            while j < lines.len() {
                depth +=
                    lines[j].matches('{').count() as i32 - lines[j].matches('}').count() as i32;
                j += 1;
                if depth <= 0 {
                    break;
                }
            }
            i = j;
            continue;
        }
        out.push_str(lines[i]);
        out.push('\n');
        i += 1;
    }
    out
}

/// The top-level modules a file's code names through `crate::`.
fn imports(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a::B, c};`: each first segment at the group's top level.
            let mut depth = 0;
            let mut start = true;
            for (k, ch) in group.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => start = true,
                    c if start && (c.is_alphanumeric() || c == '_') => {
                        found.insert(ident(&group[k..]));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.insert(ident(rest));
        }
    }
    found.retain(|m| !m.is_empty());
    found
}

#[test]
fn every_module_imports_only_from_the_floors_below_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    let mut seen = 0;
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src/");
        let top = rel
            .components()
            .next()
            .and_then(|c| c.as_os_str().to_str())
            .expect("a file name")
            .trim_end_matches(".rs")
            .to_string();
        if top == "lib" || top == "main" {
            continue;
        }
        let code = without_tests(&std::fs::read_to_string(file).expect("readable"));
        for dep in imports(&code) {
            seen += 1;
            if dep != top && floor(&dep) >= floor(&top) {
                wrong.push(format!("{} uses crate::{dep}", rel.display()));
            }
        }
    }
    assert!(
        seen > 50,
        "the scan found only {seen} imports: is it reading src/?"
    );
    assert!(
        wrong.is_empty(),
        "imports on the same floor or running back up:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn the_scan_sees_grouped_and_inline_imports() {
    let code = "use crate::{domain::{A, B}, store::C};\nfn f() { crate::render::x(); }\n\
                #[cfg(test)]\nmod tests {\n    use crate::cli;\n}\n";
    let found: Vec<String> = imports(&without_tests(code)).into_iter().collect();
    assert_eq!(found, ["domain", "render", "store"]);
}
