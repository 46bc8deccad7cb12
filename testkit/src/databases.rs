//! Fresh databases for one test each, on the process-wide server: empty,
//! with sayiir-diesel's schema, or with sayiir-diesel's schema and your
//! application's. Each is a copy of a template prepared once per server and
//! keyed by the migration files it ran ([`migrations_key`]), so a changed
//! migration gets a new template instead of a stale one.

use std::future::Future;
use std::path::{Path, PathBuf};

use crate::{Error, PgServer, TestDatabase};

/// sayiir-diesel's migration directory: the workspace's, or the one in
/// sayiir-diesel's downloaded package when this crate comes from a
/// registry (where `../migrations` beside this crate does not exist).
const SAYIIR_MIGRATIONS: &str = sayiir_diesel::migrations::SOURCE_DIR;

/// A key for a template prepared by the migrations under `dirs`: a digest
/// of every file below each directory (its path relative to that directory
/// and its bytes), in order. Adding, removing, renaming or editing a
/// migration changes the key. The digest (64-bit FNV-1a) does not depend on
/// the Rust version, so a template kept on a `DATABASE_URL` server is found
/// again by later runs.
///
/// # Errors
/// When a directory cannot be read.
pub fn migrations_key(dirs: &[&Path]) -> Result<String, Error> {
    let mut digest = Fnv1a::default();
    for dir in dirs {
        let mut files = Vec::new();
        walk(dir, &mut files)?;
        files.sort();
        for file in files {
            let relative = file.strip_prefix(dir).unwrap_or(&file);
            digest.write(relative.to_string_lossy().as_bytes());
            digest.write(&[0]);
            digest.write(&std::fs::read(&file)?);
            digest.write(&[0]);
        }
        digest.write(&[1]);
    }
    Ok(format!("{:016x}", digest.0))
}

/// A fresh database with nothing in it (no schema `sayiir`).
///
/// # Errors
/// When no server can be started or the copy fails.
pub async fn empty_database() -> Result<TestDatabase, Error> {
    PgServer::shared()?
        .template("empty", |_url| async { Ok(()) })
        .await?
        .database()
        .await
}

/// A fresh database with sayiir-diesel's schema migrated: what a test of
/// workflows needs before `DieselBackend::connect(db.url())`.
///
/// # Errors
/// When no server can be started, the migrations fail or the copy fails.
pub async fn sayiir_database() -> Result<TestDatabase, Error> {
    let key = migrations_key(&[Path::new(SAYIIR_MIGRATIONS)])?;
    PgServer::shared()?
        .template(&key, |url| async move {
            sayiir_diesel::migrations::run(&url).await?;
            Ok(())
        })
        .await?
        .database()
        .await
}

/// A fresh database with sayiir-diesel's schema and then your
/// application's: `migrate(url)` runs your migrations (those under
/// `app_migrations`, which key the template) on the template once.
///
/// # Errors
/// When no server can be started, a migration fails or the copy fails.
pub async fn sayiir_database_with<F, Fut>(
    app_migrations: &Path,
    migrate: F,
) -> Result<TestDatabase, Error>
where
    F: FnOnce(String) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let key = migrations_key(&[Path::new(SAYIIR_MIGRATIONS), app_migrations])?;
    PgServer::shared()?
        .template(&key, |url| async move {
            sayiir_diesel::migrations::run(&url).await?;
            migrate(url).await
        })
        .await?
        .database()
        .await
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// 64-bit FNV-1a.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u64::from(b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{SAYIIR_MIGRATIONS, migrations_key};

    #[test]
    fn the_key_follows_the_migration_files() {
        let dir = std::env::temp_dir().join(format!("sayiir-key-{}", std::process::id()));
        let up = dir.join("2026-01-01-000001_orders/up.sql");
        std::fs::create_dir_all(up.parent().unwrap()).unwrap();
        std::fs::write(&up, "CREATE TABLE orders (id int);").unwrap();
        let first = migrations_key(&[&dir]).unwrap();
        assert_eq!(migrations_key(&[&dir]).unwrap(), first, "stable");

        std::fs::write(&up, "CREATE TABLE orders (id bigint);").unwrap();
        let edited = migrations_key(&[&dir]).unwrap();
        assert_ne!(edited, first, "an edit changes it");

        let ours = Path::new(SAYIIR_MIGRATIONS);
        let both = migrations_key(&[ours, &dir]).unwrap();
        assert_ne!(
            both,
            migrations_key(&[ours]).unwrap(),
            "a second directory counts"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn fnv1a_matches_its_reference_values() {
        let mut h = super::Fnv1a::default();
        h.write(b"a");
        assert_eq!(h.0, 0xaf63_dc4c_8601_ec8c);
    }
}
