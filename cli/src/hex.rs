//! Hex for the 32-byte hashes (definition and task ids) the tables store:
//! parsed from the command line, shortened for tables.

/// The first 12 characters of a hex string, for tables.
#[must_use]
pub fn short_text(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

/// A 32-byte hash from the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hash(pub Vec<u8>);

/// Parses a full 32-byte hash given as 64 hex digits (either case).
///
/// # Errors
/// A message for clap to print as a usage error.
pub fn parse_hash(text: &str) -> Result<Hash, String> {
    if text.len() != 64 {
        return Err(format!(
            "expected 64 hex digits (a 32-byte hash), got {} characters",
            text.len()
        ));
    }
    text.as_bytes()
        .chunks(2)
        .map(|pair| {
            std::str::from_utf8(pair)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| format!("{text:?} is not hex"))
        })
        .collect::<Result<_, _>>()
        .map(Hash)
}

#[cfg(test)]
mod tests {
    use std::fmt::Write as _;

    use super::*;

    #[test]
    fn round_trips_and_shortens() {
        let bytes: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37)).collect();
        let text = bytes.iter().fold(String::new(), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        });
        assert_eq!(text.len(), 64);
        assert_eq!(parse_hash(&text).unwrap().0, bytes);
        assert_eq!(parse_hash(&text.to_uppercase()).unwrap().0, bytes);
        assert_eq!(short_text(&text), &text[..12]);
        assert_eq!(short_text("ab"), "ab");
    }

    #[test]
    fn refuses_wrong_length_or_digits() {
        assert!(parse_hash("abcd").unwrap_err().contains("64 hex digits"));
        assert!(parse_hash(&"g".repeat(64)).unwrap_err().contains("not hex"));
        assert!(parse_hash(&"é".repeat(32)).is_err());
    }
}
