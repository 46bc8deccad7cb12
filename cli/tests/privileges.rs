//! The CLI under least privilege: an application role (no superuser, no
//! `CREATEDB`, no `CREATEROLE`) owning its database migrates and populates
//! it; a reader with exactly the grants the README's "Roles and grants"
//! lists runs every read command and sees what the owner sees, and every
//! action it tries fails at once with exit code 1 and the server's
//! "permission denied", writing nothing.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};

use common::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use sayiir_diesel_testkit::{PgServer, with_database};

static N: AtomicU32 = AtomicU32::new(0);

/// `url` with `user` as its user name.
fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}@{host}")
}

/// An application role owning its own database and a reader role allowed
/// to connect to it, made by the superuser and dropped by [`Roles::drop_all`].
struct Roles {
    su: AsyncPgConnection,
    app: String,
    reader: String,
    db: String,
    app_url: String,
    reader_url: String,
}

impl Roles {
    async fn create() -> Roles {
        let server = PgServer::shared().unwrap();
        let tag = format!(
            "{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let (app, reader, db) = (
            format!("cli_app_{tag}"),
            format!("cli_reader_{tag}"),
            format!("cli_lp_{tag}"),
        );
        let mut su = AsyncPgConnection::establish(server.admin_url())
            .await
            .unwrap();
        for sql in [
            format!("CREATE ROLE {app} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"),
            format!("CREATE ROLE {reader} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT"),
            format!("CREATE DATABASE {db} OWNER {app}"),
            format!("REVOKE ALL ON DATABASE {db} FROM PUBLIC"),
            format!("GRANT CONNECT ON DATABASE {db} TO {reader}"),
        ] {
            su.batch_execute(&sql).await.unwrap();
        }
        let app_url = as_user(&with_database(server.admin_url(), &db), &app);
        let reader_url = as_user(&with_database(server.admin_url(), &db), &reader);
        Roles {
            su,
            app,
            reader,
            db,
            app_url,
            reader_url,
        }
    }

    /// The owner grants the reader what the README lists, nothing more.
    async fn grant_reader(&self) {
        let reader = &self.reader;
        let mut owner = AsyncPgConnection::establish(&self.app_url).await.unwrap();
        owner
            .batch_execute(&format!(
                "GRANT USAGE ON SCHEMA sayiir TO {reader}; \
                 GRANT SELECT ON ALL TABLES IN SCHEMA sayiir TO {reader}; \
                 ALTER DEFAULT PRIVILEGES IN SCHEMA sayiir GRANT SELECT ON TABLES TO {reader};"
            ))
            .await
            .unwrap();
    }

    async fn drop_all(mut self) {
        let Roles {
            app, reader, db, ..
        } = &self;
        for sql in [
            format!("DROP DATABASE {db} WITH (FORCE)"),
            format!("DROP ROLE {app}"),
            format!("DROP ROLE {reader}"),
        ] {
            self.su.batch_execute(&sql).await.unwrap();
        }
    }
}

/// What a reader may not do: every action of the CLI.
const ACTIONS: [&[&str]; 9] = [
    &["cancel", "running", "--reason", "no"],
    &["pause", "queued"],
    &["resume", "paused"],
    &["resume", "requested"],
    &["send-event", "queued", "go", "2"],
    &["send-event", "ghost", "go", "2", "--allow-unknown"],
    &[
        "prune",
        "--finished-older-than",
        "0s",
        "--history-keep-last",
        "1",
    ],
    &["prune", "--orphan-events-older-than", "0s"],
    &["migrate"],
];

#[tokio::test]
async fn a_reader_role_reads_everything_and_is_refused_every_action() {
    if std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        eprintln!("skipped: creates roles, which DATABASE_URL's role may not");
        return;
    }
    let roles = Roles::create().await;
    let (app_url, reader_url) = (roles.app_url.clone(), roles.reader_url.clone());

    // The application role migrates with the CLI and populates through the
    // store.
    let applied = cli_at(&app_url, &["migrate", "--json"]).json();
    assert!(!applied["applied"].as_array().unwrap().is_empty());
    let b = Backend::builder(&app_url)
        .run_migrations(false)
        .build()
        .await
        .unwrap();
    populate(&b).await;
    roles.grant_reader().await;

    // Every read command works for the reader and shows what the owner sees.
    assert_reads_match(&reader_url, &app_url);
    assert_reads_show_populated(&reader_url);

    // Every action is refused at once with the server's reason, and
    // nothing is written.
    let before = fingerprint(&app_url).await;
    for args in ACTIONS {
        assert_refused_at_once(
            &reader_url,
            args,
            &["permission denied", "need the application role"],
        );
    }
    assert_eq!(fingerprint(&app_url).await, before, "the reader wrote");

    // The same action as the owner goes through: the refusals were the
    // reader's privileges, not the commands.
    let cancelled = cli_at(&app_url, &["cancel", "running", "--json"]).json();
    assert_eq!(cancelled["result"], "requested");

    drop(b);
    roles.drop_all().await;
}
