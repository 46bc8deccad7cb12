//! The CLI under least privilege: an application role (no superuser, no
//! `CREATEDB`, no `CREATEROLE`) owning its database migrates and populates
//! it; a reader with exactly the grants the README's "Roles and grants"
//! lists runs every read command and sees what the owner sees, and every
//! action it tries fails at once with exit code 1 and the server's
//! "permission denied", writing nothing.

mod common;

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use common::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use sayiir_diesel_testkit::{PgServer, with_database};
use serde_json::Value;

static N: AtomicU32 = AtomicU32::new(0);

/// `url` with `user` as its user name.
fn as_user(url: &str, user: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.split_once('@').map_or(rest, |(_, h)| h);
    format!("{scheme}://{user}@{host}")
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|w| w["instance_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_reader_role_reads_everything_and_is_refused_every_action() {
    if std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        eprintln!("skipped: creates roles, which DATABASE_URL's role may not");
        return;
    }
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

    // The owner grants the reader what the README lists, nothing more.
    let mut owner = AsyncPgConnection::establish(&app_url).await.unwrap();
    owner
        .batch_execute(&format!(
            "GRANT USAGE ON SCHEMA sayiir TO {reader}; \
             GRANT SELECT ON ALL TABLES IN SCHEMA sayiir TO {reader}; \
             ALTER DEFAULT PRIVILEGES IN SCHEMA sayiir GRANT SELECT ON TABLES TO {reader};"
        ))
        .await
        .unwrap();

    // Every read command works for the reader and shows what the owner sees.
    let reads: [&[&str]; 6] = [
        &["status", "--json"],
        &["list", "--json"],
        &["list", "--json", "--status", "paused"],
        &["show", "running", "--json"],
        &["show", "queued", "--json"],
        &["stuck", "--json", "--held-longer-than", "0s"],
    ];
    for args in reads {
        let mine = cli_at(&reader_url, args).json();
        let theirs = cli_at(&app_url, args).json();
        assert_eq!(without_ages(&mine), without_ages(&theirs), "{args:?}");
    }
    let status = cli_at(&reader_url, &["status", "--json"]).json();
    assert_eq!(status["total"], 7);
    assert_eq!(status["workflows"]["InProgress"], 5);
    assert_eq!(status["workflows"]["Paused"], 1);
    assert_eq!(status["workflows"]["Completed"], 1);
    assert_eq!(status["queue"]["running"], 1);
    assert_eq!(status["queue"]["parked_at_delay"], 1);
    assert_eq!(status["expired_claims"], 1);
    assert_eq!(status["pending_requests"], 1);
    assert_eq!(status["buffered_events"], 1);
    let list = cli_at(&reader_url, &["list", "--json"]).json();
    assert_eq!(ids(&list["workflows"]), POPULATED);
    let paused = cli_at(&reader_url, &["list", "--json", "--status", "paused"]).json();
    assert_eq!(ids(&paused["workflows"]), ["paused"]);
    let running = cli_at(&reader_url, &["show", "running", "--json"]).json();
    assert_eq!(running["status"], "InProgress");
    assert_eq!(running["claim"]["worker"], "w1");
    assert_eq!(running["claim"]["expired"], false);
    let queued = cli_at(&reader_url, &["show", "queued", "--json"]).json();
    assert_eq!(queued["buffered_events"][0]["signal_name"], "go");
    let stuck = cli_at(&reader_url, &["stuck", "--json"]).json();
    assert_eq!(ids(&stuck["expired_claims"]), ["lapsed"]);
    assert_eq!(ids(&stuck["overdue_parks"]), ["napping"]);
    for args in [&["status"][..], &["list"], &["show", "running"], &["stuck"]] {
        assert!(!cli_at(&reader_url, args).ok().is_empty(), "{args:?}");
    }
    let missing = cli_at(&reader_url, &["show", "nope"]);
    assert_eq!(missing.code, 3, "{}", missing.stderr);

    // Every action is refused at once with the server's reason, and
    // nothing is written.
    let before = fingerprint(&app_url).await;
    let actions: [&[&str]; 9] = [
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
    for args in actions {
        let r = cli_at(&reader_url, args);
        eprintln!(
            "{args:?}: exit {} in {:?}: {}",
            r.code,
            r.elapsed,
            r.stderr.trim_end()
        );
        assert_eq!(r.code, 1, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(
            r.elapsed < Duration::from_secs(5),
            "{args:?} took {:?}",
            r.elapsed
        );
        assert!(r.stdout.is_empty(), "{args:?}: {}", r.stdout);
        assert!(
            r.stderr.starts_with("sayiir-diesel: ") && r.stderr.contains("permission denied"),
            "{args:?}: {}",
            r.stderr
        );
        assert!(
            r.stderr.contains("need the application role"),
            "{args:?}: {}",
            r.stderr
        );
        assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);
    }
    assert_eq!(fingerprint(&app_url).await, before, "the reader wrote");

    // The same action as the owner goes through: the refusals were the
    // reader's privileges, not the commands.
    let cancelled = cli_at(&app_url, &["cancel", "running", "--json"]).json();
    assert_eq!(cancelled["result"], "requested");

    drop((b, owner));
    su.batch_execute(&format!("DROP DATABASE {db} WITH (FORCE)"))
        .await
        .unwrap();
    su.batch_execute(&format!("DROP ROLE {app}")).await.unwrap();
    su.batch_execute(&format!("DROP ROLE {reader}"))
        .await
        .unwrap();
}
