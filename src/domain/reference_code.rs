//! The code customers and agents see in every subject, e.g. `HD-7K3M9QXA`.
//!
//! Seven random symbols of Crockford base32 (35 bits) and one check symbol. The letters
//! O, I, L and U never appear; on input `O` is read as `0` and `I`/`L` as `1`, so a code
//! read over the phone or retyped from paper still resolves. The check symbol is a
//! polynomial checksum over GF(32), which catches every single wrong symbol and every
//! swap of two neighbouring symbols: a mistyped code is rejected instead of landing on
//! somebody else's ticket.

use std::fmt;

use rand::Rng;

/// Crockford's alphabet: digits, then letters without I, L, O and U.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const RANDOM_SYMBOLS: usize = 7;
const SYMBOLS: usize = RANDOM_SYMBOLS + 1;

/// A validated reference code: prefix, dash, 8 symbols, the last a check symbol.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReferenceCode(String);

/// A configured code prefix (`HD` by default): 1 to 10 ASCII letters or digits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodePrefix(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodeError {
    #[error("a reference code prefix must be 1 to 10 ASCII letters or digits, got {0:?}")]
    BadPrefix(String),
    #[error("{0:?} is not a reference code")]
    Malformed(String),
    #[error("{0:?} has a wrong check symbol (mistyped?)")]
    BadCheck(String),
}

impl CodePrefix {
    pub fn new(prefix: &str) -> Result<Self, CodeError> {
        if prefix.is_empty()
            || prefix.len() > 10
            || !prefix.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(CodeError::BadPrefix(prefix.to_owned()));
        }
        Ok(Self(prefix.to_ascii_uppercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for CodePrefix {
    fn default() -> Self {
        Self("HD".into())
    }
}

impl ReferenceCode {
    /// A new random code. Uniqueness is the store's job (UNIQUE constraint, retry).
    pub fn generate(prefix: &CodePrefix) -> Self {
        let mut rng = rand::rng();
        let mut values = [0u8; SYMBOLS];
        for v in values.iter_mut().take(RANDOM_SYMBOLS) {
            *v = rng.random_range(0..32);
        }
        values[RANDOM_SYMBOLS] = checksum(&values[..RANDOM_SYMBOLS]);
        Self::from_values(prefix, &values)
    }

    fn from_values(prefix: &CodePrefix, values: &[u8; SYMBOLS]) -> Self {
        let body: String = values
            .iter()
            .map(|&v| ALPHABET[v as usize] as char)
            .collect();
        Self(format!("{}-{}", prefix.as_str(), body))
    }

    /// Parses a code typed by a person: case-insensitive, `O`→`0`, `I`/`L`→`1`.
    pub fn parse(prefix: &CodePrefix, text: &str) -> Result<Self, CodeError> {
        let malformed = || CodeError::Malformed(text.to_owned());
        let trimmed = text.trim();
        let (head, body) = trimmed.split_once('-').ok_or_else(malformed)?;
        if !head.eq_ignore_ascii_case(prefix.as_str()) || body.len() != SYMBOLS {
            return Err(malformed());
        }
        let mut values = [0u8; SYMBOLS];
        for (slot, byte) in values.iter_mut().zip(body.bytes()) {
            *slot = symbol_value(byte).ok_or_else(malformed)?;
        }
        if checksum(&values[..RANDOM_SYMBOLS]) != values[RANDOM_SYMBOLS] {
            return Err(CodeError::BadCheck(text.to_owned()));
        }
        Ok(Self::from_values(prefix, &values))
    }

    /// The first valid `[PREFIX-XXXXXXXX]` tag in a subject. Brackets are required so that
    /// a code quoted in running text ("about HD-… from last week") does not thread a mail.
    pub fn find_in_subject(prefix: &CodePrefix, subject: &str) -> Option<Self> {
        let mut rest = subject;
        while let Some(open) = rest.find('[') {
            let after = &rest[open + 1..];
            if let Some(close) = after.find(']')
                && let Ok(code) = Self::parse(prefix, &after[..close])
            {
                return Some(code);
            }
            rest = after;
        }
        None
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form shown in subjects: `[HD-7K3M9QXA]`.
    pub fn tag(&self) -> String {
        format!("[{}]", self.0)
    }

    /// Rebuilds a code read back from the store, which only ever holds valid codes.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }
}

impl fmt::Display for ReferenceCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn symbol_value(byte: u8) -> Option<u8> {
    let upper = match byte.to_ascii_uppercase() {
        b'O' => b'0',
        b'I' | b'L' => b'1',
        other => other,
    };
    ALPHABET.iter().position(|&a| a == upper).map(|p| p as u8)
}

/// Multiplication by x in GF(2^5) modulo x^5 + x^2 + 1 (a primitive polynomial).
fn times_x(v: u8) -> u8 {
    let shifted = v << 1;
    if shifted & 0b10_0000 != 0 {
        (shifted ^ 0b10_0101) & 0b1_1111
    } else {
        shifted
    }
}

/// `sum(v_i * x^(i+1))` over GF(32), evaluated by Horner's rule. The weights are distinct
/// and non-zero, so one changed symbol or two swapped neighbours always change the sum.
fn checksum(values: &[u8]) -> u8 {
    values.iter().rev().fold(0u8, |acc, &v| times_x(acc ^ v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hd() -> CodePrefix {
        CodePrefix::default()
    }

    #[test]
    fn generated_codes_parse_back_and_avoid_ambiguous_letters() {
        for _ in 0..2000 {
            let code = ReferenceCode::generate(&hd());
            let body = &code.as_str()[3..];
            assert_eq!(body.len(), 8);
            assert!(!body.contains(['O', 'I', 'L', 'U']), "{code}");
            assert_eq!(ReferenceCode::parse(&hd(), code.as_str()).unwrap(), code);
        }
    }

    #[test]
    fn every_single_symbol_typo_is_rejected() {
        let code = ReferenceCode::generate(&hd());
        let body: Vec<u8> = code.as_str()[3..].bytes().collect();
        for pos in 0..SYMBOLS {
            for &other in ALPHABET {
                if other == body[pos] {
                    continue;
                }
                let mut typo = body.clone();
                typo[pos] = other;
                let typed = format!("HD-{}", String::from_utf8(typo).unwrap());
                assert!(
                    ReferenceCode::parse(&hd(), &typed).is_err(),
                    "{typed} accepted"
                );
            }
        }
    }

    #[test]
    fn every_swap_of_neighbours_is_rejected() {
        for _ in 0..200 {
            let code = ReferenceCode::generate(&hd());
            let body: Vec<u8> = code.as_str()[3..].bytes().collect();
            for pos in 0..SYMBOLS - 1 {
                if body[pos] == body[pos + 1] {
                    continue;
                }
                let mut swapped = body.clone();
                swapped.swap(pos, pos + 1);
                let typed = format!("HD-{}", String::from_utf8(swapped).unwrap());
                assert!(
                    ReferenceCode::parse(&hd(), &typed).is_err(),
                    "{typed} accepted"
                );
            }
        }
    }

    #[test]
    fn lowercase_and_look_alike_letters_are_read_as_digits() {
        let values = [0u8, 1, 0, 1, 5, 6, 7, 0];
        let mut full = values;
        full[7] = checksum(&values[..7]);
        let code = ReferenceCode::from_values(&hd(), &full);
        let typed = code
            .as_str()
            .to_ascii_lowercase()
            .replace('0', "o")
            .replacen('1', "l", 1)
            .replacen('1', "I", 1);
        assert_eq!(ReferenceCode::parse(&hd(), &typed).unwrap(), code);
    }

    #[test]
    fn subject_with_two_codes_uses_the_first_valid_one() {
        let a = ReferenceCode::generate(&hd());
        let b = ReferenceCode::generate(&hd());
        let subject = format!("Re: [HD-XXXXXXXX] [{a}] and [{b}]");
        assert_eq!(ReferenceCode::find_in_subject(&hd(), &subject), Some(a));
    }

    #[test]
    fn code_without_brackets_or_with_other_prefix_is_not_found() {
        let a = ReferenceCode::generate(&hd());
        assert_eq!(
            ReferenceCode::find_in_subject(&hd(), &format!("about {a}")),
            None
        );
        let other = CodePrefix::new("IT").unwrap();
        assert_eq!(ReferenceCode::find_in_subject(&other, &a.tag()), None);
    }

    #[test]
    fn prefixes_are_validated() {
        assert!(CodePrefix::new("").is_err());
        assert!(CodePrefix::new("H-D").is_err());
        assert_eq!(CodePrefix::new("it").unwrap().as_str(), "IT");
    }
}
