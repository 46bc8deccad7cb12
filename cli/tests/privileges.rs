//! The CLI under least privilege: an application role (no superuser, no
//! `CREATEDB`, no `CREATEROLE`) owning its database migrates and populates
//! it; a reader with exactly the grants the README's "Roles and grants"
//! lists runs every read command and sees what the owner sees, and every
//! action it tries fails at once with exit code 1 and the server's
//! "permission denied", writing nothing.

mod common;

use common::*;
use sayiir_diesel_testkit::{LeastPrivilege, PgServer};

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
    let roles = LeastPrivilege::create(PgServer::shared().unwrap(), "cli")
        .await
        .unwrap();
    let (app_url, reader_url) = (roles.owner_url.clone(), roles.reader_url.clone());

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
    roles.grant_reader().await.unwrap();

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
    roles.drop_all().await.unwrap();
}
