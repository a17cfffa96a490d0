//! The words of an erasure: a person's address or name replaced, as a whole and whatever
//! its ASCII case, in any stored text or raw mail. The same rule for every backend.

use std::collections::BTreeSet;

/// `text` with every address replaced by the placeholder.
pub(crate) fn scrub(text: &str, addresses: &BTreeSet<String>, placeholder: &str) -> String {
    addresses.iter().fold(text.to_string(), |t, a| {
        replace_ci(t.as_bytes(), a.as_bytes(), placeholder.as_bytes())
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or(t)
    })
}

/// Names shorter than this are not searched for (an initial would match everywhere).
pub(crate) const MIN_NAME: usize = 3;

/// Replaces every case of `needle` (ASCII case-insensitive) in `haystack` that stands as
/// a whole: `customer8@x.example` is not in `customer80@x.example` nor in
/// `acustomer8@x.example`, and the name `Customer 8` is not in `Customer 80`.
pub(crate) fn replace_ci(haystack: &[u8], needle: &[u8], with: &[u8]) -> Option<Vec<u8>> {
    if needle.is_empty() || haystack.len() < needle.len() {
        return None;
    }
    let address = needle.contains(&b'@');
    // Bytes that continue an address or a word (UTF-8 bytes continue a name).
    let joins =
        |b: u8| b.is_ascii_alphanumeric() || b >= 0x80 || (address && b"._%+-=".contains(&b));
    let mut out = Vec::with_capacity(haystack.len());
    let mut i = 0;
    let mut found = false;
    while i < haystack.len() {
        let end = i + needle.len();
        let whole = end <= haystack.len()
            && haystack[i..end].eq_ignore_ascii_case(needle)
            && (i == 0 || !joins(haystack[i - 1]))
            && match haystack.get(end) {
                None => true,
                // A sentence's full stop after an address ends it.
                Some(b'.') if address => !haystack.get(end + 1).is_some_and(|b| joins(*b)),
                Some(b) => !joins(*b),
            };
        if whole {
            out.extend_from_slice(with);
            i = end;
            found = true;
        } else {
            out.push(haystack[i]);
            i += 1;
        }
    }
    found.then_some(out)
}

/// `text` with `needle` replaced by `with` wherever it stands whole.
pub(crate) fn replace_text(text: &str, needle: &str, with: &str) -> String {
    replace_ci(text.as_bytes(), needle.as_bytes(), with.as_bytes())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_else(|| text.to_string())
}

/// An event's actor and detail once the person is erased: their address becomes the
/// placeholder, their names `[erased]`.
pub(crate) fn scrub_event(
    actor: String,
    detail: &str,
    addresses: &BTreeSet<String>,
    names: &BTreeSet<String>,
    placeholder: &str,
) -> (String, String) {
    let actor = if addresses.contains(&actor.to_lowercase()) {
        placeholder.to_string()
    } else {
        actor
    };
    let detail = addresses
        .iter()
        .map(|a| (a, placeholder))
        .chain(names.iter().map(|n| (n, "[erased]")))
        .fold(detail.to_string(), |text, (needle, with)| {
            replace_text(&text, needle, with)
        });
    (actor, detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_addresses_and_names_are_replaced() {
        let text = b"customer80@x.example, acustomer8@x.example, Customer 80, Customer 8.";
        assert_eq!(
            replace_ci(text, b"customer8@x.example", b"X"),
            None,
            "neither longer address is hers"
        );
        assert_eq!(
            replace_ci(text, b"Customer 8", b"N").unwrap(),
            b"customer80@x.example, acustomer8@x.example, Customer 80, N.".to_vec()
        );
        assert_eq!(
            replace_ci(
                b"Write to customer8@x.example. Thanks",
                b"customer8@x.example",
                b"X"
            )
            .unwrap(),
            b"Write to X. Thanks".to_vec()
        );
        assert_eq!(
            replace_ci(b"<customer8@x.example>", b"customer8@x.example", b"X").unwrap(),
            b"<X>".to_vec()
        );
        assert!(replace_ci(b"Zoe Marchettiova", b"Zoe Marchetti", b"N").is_none());
    }

    #[test]
    fn replacement_ignores_ascii_case() {
        assert_eq!(
            replace_ci(
                b"To: Zoe@Example.COM, zoe@example.com",
                b"zoe@example.com",
                b"X"
            )
            .unwrap(),
            b"To: X, X".to_vec()
        );
        assert!(replace_ci(b"nothing here", b"zoe@example.com", b"X").is_none());
    }
}
