//! Whether a mail's sender is who its From says, as the receiving server judged it: the
//! `Authentication-Results` header (RFC 8601) that a trusted server (named by its
//! authserv-id) added, with a passing DKIM signature aligned with the From domain, or a
//! passing DMARC result for it. Headers from any other authserv-id are ignored, since
//! anyone can write one. Pure.

use crate::domain::EmailAddress;

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
    let mut seen_trusted = false;
    for (name, value) in headers {
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
        if !id.eq_ignore_ascii_case(authserv_id) {
            continue;
        }
        seen_trusted = true;
        for result in parts {
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
            if method == "dkim=pass"
                && (property("header.d").is_some_and(aligned)
                    || property("header.i").is_some_and(aligned))
            {
                return Ok(());
            }
            if method == "dmarc=pass" && property("header.from").is_some_and(aligned) {
                return Ok(());
            }
        }
    }
    Err(if seen_trusted {
        format!("{authserv_id} found no passing DKIM signature or DMARC result for {domain}")
    } else {
        format!("no Authentication-Results from {authserv_id}")
    })
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
}
