//! Checking the ids and texts callers pass before they reach the database:
//! a value PostgreSQL cannot store (a NUL byte in `TEXT`) or an index key
//! too long for a btree entry is refused with [`Error::InvalidInput`],
//! never truncated, never a panic.

use crate::error::{Error, Result};

/// The longest instance id, signal name or worker id we store, in bytes.
/// They are keys of btree indexes, whose entries PostgreSQL caps at about
/// 2.7 kB; the runtime itself caps instance ids at 256 bytes.
pub const MAX_KEY_BYTES: usize = 1024;

/// Rejects ids that cannot be stored: empty, with a NUL byte (PostgreSQL
/// `TEXT` cannot hold one) or longer than [`MAX_KEY_BYTES`].
pub(crate) fn check_id(what: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::InvalidInput {
            what,
            why: "must not be empty".to_owned(),
        });
    }
    check_key(what, value)
}

/// Rejects index keys (signal names, worker ids) with a NUL byte or longer
/// than [`MAX_KEY_BYTES`].
pub(crate) fn check_key(what: &'static str, value: &str) -> Result<()> {
    if value.len() > MAX_KEY_BYTES {
        return Err(Error::InvalidInput {
            what,
            why: format!(
                "is {} bytes long; at most {MAX_KEY_BYTES} are allowed",
                value.len()
            ),
        });
    }
    check_text(what, value)
}

/// For lookups: an id that [`check_id`] refuses was never stored, so the
/// answer is `NotFound`, as for any absent instance.
pub(crate) fn check_lookup_id(value: &str) -> Result<()> {
    check_id("instance id", value).map_err(|_| Error::NotFound(value.to_owned()))
}

/// Rejects text containing a NUL byte, which PostgreSQL `TEXT` cannot hold.
pub(crate) fn check_text(what: &'static str, value: &str) -> Result<()> {
    if value.contains('\0') {
        return Err(Error::InvalidInput {
            what,
            why: "contains a NUL byte, which PostgreSQL text cannot store".to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_nul_empty_and_too_long() {
        assert!(check_id("instance id", &"x".repeat(MAX_KEY_BYTES)).is_ok());
        assert!(matches!(
            check_id("instance id", &"x".repeat(MAX_KEY_BYTES + 1)),
            Err(Error::InvalidInput { what: "instance id", why }) if why.contains("1025 bytes")
        ));
        assert!(check_key("worker id", &"w".repeat(5000)).is_err());
        assert!(matches!(check_lookup_id(""), Err(Error::NotFound(_))));
        assert!(check_id("instance id", "").is_err());
        assert!(check_id("instance id", "a\0b").is_err());
        assert!(check_id("instance id", "ok").is_ok());
        assert!(check_text("tag", "").is_ok());
    }
}
