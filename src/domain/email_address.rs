//! A mailbox address as the gateway compares it: trimmed and lower-cased, with exactly
//! one `@` and a non-empty local part and domain. Display names live beside it, never in it.

use std::fmt;

#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(into = "String", try_from = "String")]
pub struct EmailAddress(String);

impl From<EmailAddress> for String {
    fn from(a: EmailAddress) -> String {
        a.0
    }
}

impl TryFrom<String> for EmailAddress {
    type Error = AddressError;
    fn try_from(text: String) -> Result<Self, Self::Error> {
        EmailAddress::parse(&text)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not an e-mail address (expected local@domain)")]
pub struct AddressError(pub String);

impl EmailAddress {
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        let trimmed = text
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .trim();
        let (local, domain) = trimmed
            .rsplit_once('@')
            .ok_or_else(|| AddressError(text.into()))?;
        let valid = !local.is_empty()
            && !domain.is_empty()
            && !domain.contains('@')
            && !trimmed
                .chars()
                .any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>');
        if !valid {
            return Err(AddressError(text.into()));
        }
        Ok(Self(trimmed.to_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or(&self.0)
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }
}

impl std::str::FromStr for EmailAddress {
    type Err = AddressError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EmailAddress::parse(s)
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_trimmed_and_lower_cased() {
        let a = EmailAddress::parse(" <Marie.Dupont@Example.FR> ").unwrap();
        assert_eq!(a.as_str(), "marie.dupont@example.fr");
        assert_eq!(a.local_part(), "marie.dupont");
        assert_eq!(a.domain(), "example.fr");
    }

    #[test]
    fn text_without_one_at_sign_is_rejected() {
        for bad in ["", "nobody", "@example.com", "a@", "a b@example.com"] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
