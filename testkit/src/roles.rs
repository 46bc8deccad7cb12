//! Least privilege for tests: an owner role (no superuser, no `CREATEDB`,
//! no `CREATEROLE`) owning a database of its own, and a reader role that
//! may only connect to it until [`LeastPrivilege::grant_reader`] gives it
//! the grants the README's "Roles and grants" lists.

use std::sync::atomic::{AtomicU32, Ordering};

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

use crate::{Error, PgServer, with_database};

static N: AtomicU32 = AtomicU32::new(0);

/// `url` with `user` as its user name (no password: the test servers trust
/// loopback).
#[must_use]
pub fn as_user(url: &str, user: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}@{host}")
}

/// The roles and database of one test, unique to it, made by the server's
/// superuser; [`LeastPrivilege::drop_all`] removes them.
pub struct LeastPrivilege {
    su: AsyncPgConnection,
    /// The owner role.
    pub owner: String,
    /// The reader role.
    pub reader: String,
    /// The database the owner owns.
    pub db: String,
    /// The database's URL as the owner.
    pub owner_url: String,
    /// The database's URL as the reader.
    pub reader_url: String,
}

impl LeastPrivilege {
    /// Creates `{prefix}_owner_…` and `{prefix}_reader_…` and the database
    /// `{prefix}_db_…` owned by the owner, which only the owner and the
    /// reader may connect to.
    ///
    /// # Errors
    /// When the superuser cannot connect or a statement fails (e.g. on a
    /// `DATABASE_URL` server whose role may not create roles).
    pub async fn create(server: &PgServer, prefix: &str) -> Result<Self, Error> {
        let tag = format!(
            "{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let (owner, reader, db) = (
            format!("{prefix}_owner_{tag}"),
            format!("{prefix}_reader_{tag}"),
            format!("{prefix}_db_{tag}"),
        );
        let mut su = AsyncPgConnection::establish(server.admin_url()).await?;
        for sql in [
            format!("CREATE ROLE {owner} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"),
            format!("CREATE ROLE {reader} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"),
            format!("CREATE DATABASE {db} OWNER {owner}"),
            format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC"),
            format!("GRANT CONNECT ON DATABASE {db} TO {reader}"),
        ] {
            su.batch_execute(&sql).await?;
        }
        let url = with_database(server.admin_url(), &db);
        Ok(Self {
            su,
            owner_url: as_user(&url, &owner),
            reader_url: as_user(&url, &reader),
            owner,
            reader,
            db,
        })
    }

    /// As the owner, grants the reader what the README's "Roles and
    /// grants" lists for a read-only role, nothing more (run after the
    /// migrations).
    ///
    /// # Errors
    /// When the owner cannot connect or a grant fails.
    pub async fn grant_reader(&self) -> Result<(), Error> {
        let reader = &self.reader;
        let mut owner = AsyncPgConnection::establish(&self.owner_url).await?;
        owner
            .batch_execute(&format!(
                "GRANT USAGE ON SCHEMA sayiir TO {reader}; \
                 GRANT SELECT ON ALL TABLES IN SCHEMA sayiir TO {reader}; \
                 ALTER DEFAULT PRIVILEGES IN SCHEMA sayiir GRANT SELECT ON TABLES TO {reader};"
            ))
            .await?;
        Ok(())
    }

    /// Drops the database (closing its sessions) and both roles.
    ///
    /// # Errors
    /// When a statement fails.
    pub async fn drop_all(mut self) -> Result<(), Error> {
        for sql in [
            format!("DROP DATABASE {} WITH (FORCE)", self.db),
            format!("DROP ROLE {}", self.owner),
            format!("DROP ROLE {}", self.reader),
        ] {
            self.su.batch_execute(&sql).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::as_user;

    #[test]
    fn as_user_replaces_or_adds_the_user() {
        assert_eq!(
            as_user("postgres://postgres@127.0.0.1:5/db", "app"),
            "postgres://app@127.0.0.1:5/db"
        );
        assert_eq!(as_user("postgres://h:5/db", "app"), "postgres://app@h:5/db");
    }
}
