//! Whether a mail's sender is who its From says, as the receiving server judged it: the
//! `Authentication-Results` headers (RFC 8601) that a trusted server (named by its
//! authserv-id) added on top of the message, with a passing DKIM signature aligned with the
//! From domain, or a passing DMARC result for it. Pure.
//!
//! Anyone can write an `Authentication-Results` header, with any authserv-id, into the mail
//! they send. RFC 8601 §5 has the receiving server remove or ignore such earlier headers
//! that claim its name; the gateway does the same: only the topmost block of headers from
//! the trusted server is read (the server adds its results above everything it received),
//! and a header of that name found anywhere below (under the server's own `Received` line,
//! under a hop before it, or among the sender's own headers) is ignored. Within that block a `fail` for DKIM or
//! DMARC wins over any `pass`: a forger who also signs with some other key gets nothing.

use crate::domain::EmailAddress;

/// Headers a receiving server writes around its `Authentication-Results` (milters, ARC);
/// they do not end the trusted block. A `Received` line does: what is below it came from
/// an earlier hop or from the sender.
fn is_result_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name == "authentication-results"
        || name == "received-spf"
        || name == "dkim-filter"
        || name.starts_with("arc-")
        || name.starts_with("x-spam")
}

/// Headers only the sender writes: a trusted result below one of them was written by the
/// sender, even when the receiving server added none of its own.
fn is_senders_header(name: &str) -> bool {
    matches!(
        name.to_ascii_lowercase().as_str(),
        "from" | "to" | "cc" | "subject" | "date" | "message-id" | "mime-version" | "content-type"
    )
}

/// The results (`method=result` items) of the trusted server's topmost block.
fn trusted_results<'a>(headers: &'a [(String, String)], authserv_id: &str) -> Vec<&'a str> {
    let mut results = Vec::new();
    let mut in_block = false;
    let by_trusted = format!("by {}", authserv_id.to_ascii_lowercase());
    for (name, value) in headers {
        if is_senders_header(name) {
            break;
        }
        // The trusted server's own Received line: what is below it, it received.
        if name.eq_ignore_ascii_case("Received") && value.to_ascii_lowercase().contains(&by_trusted)
        {
            break;
        }
        if in_block && !is_result_header(name) {
            break;
        }
        if !name.eq_ignore_ascii_case("Authentication-Results") {
            continue;
        }
        let mut parts = value.split(';');
        let id = parts
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("");
        if id.eq_ignore_ascii_case(authserv_id) {
            in_block = true;
            results.extend(parts);
        }
    }
    results
}

/// `Ok` when a result from `authserv_id` vouches for `from`'s domain; otherwise why not.
pub fn vouched_for(
    headers: &[(String, String)],
    from: &EmailAddress,
    authserv_id: &str,
) -> Result<(), String> {
    let domain = from.domain().to_ascii_lowercase();
    let aligned = |d: &str| {
        let d = d.trim().trim_start_matches('@').to_ascii_lowercase();
        let d = d.rsplit('@').next().unwrap_or(&d).to_string();
        !d.is_empty() && (domain == d || domain.ends_with(&format!(".{d}")))
    };
    let results = trusted_results(headers, authserv_id);
    if results.is_empty() {
        return Err(format!(
            "no Authentication-Results from {authserv_id} on top of the mail"
        ));
    }
    let mut passed = false;
    for result in results {
        let words: Vec<&str> = result.split_whitespace().collect();
        let Some(method) = words.first() else {
            continue;
        };
        let property = |key: &str| {
            words.iter().find_map(|w| {
                let (k, v) = w.split_once('=')?;
                k.eq_ignore_ascii_case(key).then_some(v)
            })
        };
        let method = method.to_ascii_lowercase();
        if matches!(method.as_str(), "dkim=fail" | "dmarc=fail") {
            return Err(format!("{authserv_id} says {method} for this mail"));
        }
        if method == "dkim=pass"
            && (property("header.d").is_some_and(aligned)
                || property("header.i").is_some_and(aligned))
        {
            passed = true;
        }
        if method == "dmarc=pass" && property("header.from").is_some_and(aligned) {
            passed = true;
        }
    }
    if passed {
        Ok(())
    } else {
        Err(format!(
            "{authserv_id} found no passing DKIM signature or DMARC result for {domain}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(v: &str) -> Vec<(String, String)> {
        vec![("Authentication-Results".into(), v.into())]
    }

    fn alice() -> EmailAddress {
        EmailAddress::parse("alice@example.com").unwrap()
    }

    #[test]
    fn a_passing_aligned_dkim_result_from_the_trusted_server_vouches() {
        let ok = h(
            "mx.example.com; spf=pass smtp.mailfrom=example.com; dkim=pass header.d=example.com header.s=sel",
        );
        assert_eq!(vouched_for(&ok, &alice(), "mx.example.com"), Ok(()));
        let sub = h("mx.example.com; dkim=pass header.i=@example.com");
        assert_eq!(vouched_for(&sub, &alice(), "MX.example.com"), Ok(()));
        let dmarc = h("mx.example.com; dmarc=pass (p=reject) header.from=example.com");
        assert_eq!(vouched_for(&dmarc, &alice(), "mx.example.com"), Ok(()));
    }

    #[test]
    fn forged_failing_or_unaligned_results_do_not() {
        let other_server = h("evil.example; dkim=pass header.d=example.com");
        assert!(vouched_for(&other_server, &alice(), "mx.example.com").is_err());
        let failed = h("mx.example.com; dkim=fail header.d=example.com");
        assert!(vouched_for(&failed, &alice(), "mx.example.com").is_err());
        let unaligned = h("mx.example.com; dkim=pass header.d=evil.example");
        assert!(vouched_for(&unaligned, &alice(), "mx.example.com").is_err());
        let lookalike = h("mx.example.com; dkim=pass header.d=ample.com");
        assert!(vouched_for(&lookalike, &alice(), "mx.example.com").is_err());
        assert!(vouched_for(&[], &alice(), "mx.example.com").is_err());
    }

    fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    /// The attack run's forgery: the sender wrote a passing result in the trusted server's
    /// name; the server itself found DMARC failing.
    #[test]
    fn a_result_written_by_the_sender_is_ignored_and_a_fail_wins() {
        let forged_under_genuine_fail = headers(&[
            ("Received", "from mx.example.com by imap.example.com (LMTP)"),
            (
                "Authentication-Results",
                "mx.example.com; dmarc=fail header.from=example.com",
            ),
            ("Received", "from evil.example by mx.example.com (Postfix)"),
            (
                "Authentication-Results",
                "mx.example.com; dkim=pass header.d=example.com",
            ),
            ("From", "alice@example.com"),
        ]);
        assert!(vouched_for(&forged_under_genuine_fail, &alice(), "mx.example.com").is_err());
        // The server added nothing: the sender's header, below a hop, is not read.
        let forged_alone = headers(&[
            ("Received", "from evil.example by mx.example.com (Postfix)"),
            ("Received", "from x by evil.example"),
            (
                "Authentication-Results",
                "mx.example.com; dkim=pass header.d=example.com",
            ),
            ("From", "alice@example.com"),
        ]);
        assert!(vouched_for(&forged_alone, &alice(), "mx.example.com").is_err());
        let among_senders_headers = headers(&[
            ("Received", "from evil.example by mx.example.com (Postfix)"),
            ("From", "alice@example.com"),
            (
                "Authentication-Results",
                "mx.example.com; dkim=pass header.d=example.com",
            ),
        ]);
        assert!(vouched_for(&among_senders_headers, &alice(), "mx.example.com").is_err());
        // A genuine pass above a forged fail (or pass) is the server's word.
        let genuine = headers(&[
            (
                "Authentication-Results",
                "mx.example.com; dkim=pass header.d=example.com",
            ),
            (
                "Authentication-Results",
                "mx.example.com; dmarc=pass header.from=example.com",
            ),
            (
                "Received",
                "from mail.example.com by mx.example.com (Postfix)",
            ),
            (
                "Authentication-Results",
                "mx.example.com; dkim=fail header.d=example.com",
            ),
            ("From", "alice@example.com"),
        ]);
        assert_eq!(vouched_for(&genuine, &alice(), "mx.example.com"), Ok(()));
        // A pass and a fail in the server's own block: the fail wins.
        let both = headers(&[(
            "Authentication-Results",
            "mx.example.com; dkim=pass header.d=example.com; dkim=fail header.d=example.com",
        )]);
        assert!(vouched_for(&both, &alice(), "mx.example.com").is_err());
    }
}
