//! The knowledge base as a file: the parsed articles, the problems and tantivy's index
//! files, behind a key made of the folder's fingerprint and this build's version. Read
//! back, a base of 30 articles costs a one-shot process about a millisecond instead of the
//! ten that parsing and indexing take.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tantivy::directory::{Directory, RamDirectory};

use super::{Article, Fingerprint, KbError, KnowledgeBase, Problem, fingerprint};

#[derive(serde::Serialize, serde::Deserialize)]
struct Stored {
    key: String,
    articles: Vec<Article>,
    problems: Vec<Problem>,
    /// tantivy's files, as (path, offset, length) into the bytes after the header line.
    files: Vec<(PathBuf, usize, usize)>,
}

fn key(fp: &Option<Fingerprint>) -> String {
    let mut h = Sha256::new();
    h.update(env!("CARGO_PKG_VERSION"));
    h.update(format!("{fp:?}"));
    hex::encode(h.finalize())
}

pub(super) fn load(dir: &Path, cache: &Path) -> Result<KnowledgeBase, KbError> {
    let fp = fingerprint(dir);
    let key = key(&fp);
    if let Some(kb) = read(cache, &key, dir) {
        return Ok(kb);
    }
    let kb = KnowledgeBase::load(dir)?;
    // Another change while reading: the next process builds again rather than trust it.
    if kb.read_as == fp
        && let Err(e) = write(&kb, cache, &key)
    {
        tracing::debug!(error = %e, cache = %cache.display(), "cannot write the knowledge base cache");
    }
    Ok(kb)
}

/// The file: a JSON header line, then the index files' bytes one after the other.
fn read(cache: &Path, key: &str, dir: &Path) -> Option<KnowledgeBase> {
    let bytes = std::fs::read(cache).ok()?;
    let newline = bytes.iter().position(|b| *b == b'\n')?;
    let stored: Stored = serde_json::from_slice(&bytes[..newline]).ok()?;
    if stored.key != key {
        return None;
    }
    let blob = &bytes[newline + 1..];
    let ram = RamDirectory::create();
    for (path, offset, len) in &stored.files {
        ram.atomic_write(path, blob.get(*offset..offset.checked_add(*len)?)?)
            .ok()?;
    }
    let index = tantivy::Index::open(ram.clone()).ok()?;
    let mut kb = KnowledgeBase::from_index(
        Some(dir.to_path_buf()),
        stored.articles.into_iter().map(Arc::new).collect(),
        stored.problems,
        index,
        ram,
    )
    .ok()?;
    kb.read_as = fingerprint(dir);
    Some(kb)
}

fn write(kb: &KnowledgeBase, cache: &Path, key: &str) -> std::io::Result<()> {
    let mut files = Vec::new();
    let mut blob = Vec::new();
    if let (Some(reader), Some(raw)) = (&kb.reader, &kb.files) {
        let searcher = reader.searcher();
        let mut paths: Vec<PathBuf> = searcher
            .index()
            .directory()
            .list_managed_files()
            .into_iter()
            .collect();
        paths.push(PathBuf::from("meta.json"));
        paths.sort();
        paths.dedup();
        for path in paths {
            // Segment files are read as slices; `meta.json` only as an atomic file.
            let data = match raw.open_read(&path) {
                Ok(slice) => slice.read_bytes()?.as_slice().to_vec(),
                Err(_) => match raw.atomic_read(&path) {
                    Ok(data) => data,
                    Err(_) => continue,
                },
            };
            files.push((path, blob.len(), data.len()));
            blob.extend_from_slice(&data);
        }
    }
    let stored = Stored {
        key: key.to_string(),
        articles: kb.articles.iter().map(|a| (**a).clone()).collect(),
        problems: kb.problems.clone(),
        files,
    };
    let tmp = cache.with_extension(format!("tmp{}", std::process::id()));
    let mut out = std::fs::File::create(&tmp)?;
    serde_json::to_writer(&mut out, &stored)?;
    out.write_all(b"\n")?;
    out.write_all(&blob)?;
    out.sync_all()?;
    drop(out);
    std::fs::rename(&tmp, cache)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_read_back_from_its_cache_finds_the_same_articles() {
        let dir = std::env::temp_dir().join(format!("kb-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        super::super::starter::write(&dir.join("kb")).unwrap();
        let cache = dir.join("kb.cache");
        let built = load(&dir.join("kb"), &cache).unwrap();
        assert!(cache.exists());
        let key = key(&fingerprint(&dir.join("kb")));
        let bytes = std::fs::read(&cache).unwrap();
        let newline = bytes.iter().position(|b| *b == b'\n').unwrap();
        let stored: Stored = serde_json::from_slice(&bytes[..newline]).unwrap();
        assert_eq!(stored.key, key);
        let ram = RamDirectory::create();
        let blob = &bytes[newline + 1..];
        for (path, offset, len) in &stored.files {
            ram.atomic_write(path, &blob[*offset..offset + len])
                .unwrap();
        }
        tantivy::Index::open(ram).unwrap();
        let again = read(&cache, &key, &dir.join("kb")).expect("read back");
        let query = "mon imprimante a un bourrage papier";
        let ids = |kb: &KnowledgeBase| -> Vec<String> {
            kb.search(query, crate::domain::Language::Fr, 5)
                .iter()
                .map(|h| format!("{} {:.2}", h.article.id, h.score))
                .collect()
        };
        assert_eq!(ids(&again), ids(&built));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
