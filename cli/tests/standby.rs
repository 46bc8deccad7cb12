//! The CLI against a streaming standby: the read commands show what the
//! primary holds (synchronous replication, so no waiting), and every write
//! command fails at once with exit code 1 and a message naming the cause,
//! no hang and no retry. Needs `pg_basebackup` (see the library's
//! tests/failover.rs); skipped without it.

mod common;

use common::*;
use sayiir_diesel_testkit::{PairWithDatabase, ReplicatedPair};

/// Every write command, each of which a standby must refuse.
const WRITES: [&[&str]; 8] = [
    &["cancel", "running"],
    &["pause", "queued"],
    &["resume", "paused"],
    &["send-event", "queued", "go", "2"],
    &["send-event", "ghost", "go", "2", "--allow-unknown"],
    &["prune", "--finished-older-than", "0s"],
    &["prune", "--history-keep-last", "1"],
    &["migrate"],
];

/// A synchronous primary and standby with a database `app`, or `None`
/// where `pg_basebackup` is missing.
async fn start_pair() -> Option<PairWithDatabase> {
    tokio::task::spawn_blocking(|| ReplicatedPair::synchronous_with_database("app"))
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn reads_work_on_a_standby_and_writes_fail_at_once() {
    let Some(PairWithDatabase {
        pair,
        primary,
        standby,
    }) = start_pair().await
    else {
        return;
    };
    assert_eq!(
        pair.psql(pair.standby_port(), "SELECT pg_is_in_recovery()")
            .unwrap(),
        "t"
    );

    assert!(
        !cli_at(&primary, &["migrate", "--json"]).json()["applied"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let b = Backend::builder(&primary)
        .run_migrations(false)
        .build()
        .await
        .unwrap();
    populate(&b).await;

    // The read commands on the standby show what the primary holds.
    assert_reads_match(&standby, &primary);
    assert_reads_show_populated(&standby);

    // Every write command fails at once, exit 1, naming the cause; nothing
    // reaches the primary.
    let before = fingerprint(&primary).await;
    for args in WRITES {
        assert_refused_at_once(
            &standby,
            args,
            &["accepts no writes", "write commands need the primary"],
        );
    }
    assert_eq!(fingerprint(&primary).await, before);
    assert_eq!(fingerprint(&standby).await, before);

    // The same command on the primary goes through.
    let cancelled = cli_at(&primary, &["cancel", "running", "--json"]).json();
    assert_eq!(cancelled["result"], "requested");
    drop(b);
}
