//! Released migrations never change: every directory listed in
//! `migrations/released.txt` must still exist, and its `up.sql` must still
//! have the SHA-256 recorded there. A database that ran a released
//! migration never runs it again, so an edit would reach new installations
//! only and leave every upgraded one different. A change is a new
//! migration. Directories not in the list are unreleased and free to
//! change. No database needed.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn migrations_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations")
}

/// `(directory, sha256 in lowercase hex)` for each line of `released.txt`
/// that is neither blank nor a `#` comment.
fn released() -> Vec<(String, String)> {
    let list = migrations_dir().join("released.txt");
    let text = std::fs::read_to_string(&list)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", list.display()));
    let mut seen = BTreeSet::new();
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [dir, hash] = fields[..] else {
            panic!(
                "released.txt line {}: want `<directory> <sha256>`, got {line:?}",
                number + 1
            );
        };
        assert!(
            hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()),
            "released.txt line {}: {hash:?} is not a SHA-256 in hex",
            number + 1
        );
        assert!(
            seen.insert(dir.to_owned()),
            "released.txt lists {dir} twice"
        );
        entries.push((dir.to_owned(), hash.to_ascii_lowercase()));
    }
    assert!(!entries.is_empty(), "released.txt lists no migration");
    entries
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// The migration directories on disk (diesel skips plain files such as
/// `released.txt`).
fn directories_on_disk() -> BTreeSet<String> {
    std::fs::read_dir(migrations_dir())
        .unwrap()
        .map(Result::unwrap)
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name().into_string().unwrap())
        .collect()
}

#[test]
fn released_migrations_are_unchanged() {
    let mut broken = Vec::new();
    for (dir, want) in released() {
        let up = migrations_dir().join(&dir).join("up.sql");
        match std::fs::read(&up) {
            Ok(bytes) => {
                let found = sha256_hex(&bytes);
                if found != want {
                    broken.push(format!(
                        "{dir}: up.sql changed (released sha256 {want}, now {found})"
                    ));
                }
            }
            Err(e) if !migrations_dir().join(&dir).is_dir() => {
                broken.push(format!("{dir}: the released migration is gone ({e})"));
            }
            Err(e) => broken.push(format!("{dir}: cannot read up.sql ({e})")),
        }
    }
    assert!(
        broken.is_empty(),
        "released migrations must never change; write a new migration instead \
         (README, \"Released migrations never change\"):\n  {}",
        broken.join("\n  ")
    );
}

/// Diesel runs pending migrations in version order: an unreleased
/// migration dated before a released one would run before it on a fresh
/// database but after it on an upgraded one.
#[test]
fn unreleased_migrations_come_after_the_released_ones() {
    let released: BTreeSet<String> = released().into_iter().map(|(dir, _)| dir).collect();
    let Some(newest_released) = released.iter().max() else {
        return;
    };
    let early: Vec<String> = directories_on_disk()
        .into_iter()
        .filter(|dir| !released.contains(dir) && dir < newest_released)
        .collect();
    assert!(
        early.is_empty(),
        "unreleased migrations sort before the released {newest_released}: {early:?}; \
         give them a later version"
    );
}
