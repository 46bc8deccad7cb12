//! The CLI against a streaming standby: the read commands show what the
//! primary holds (synchronous replication, so no waiting), and every write
//! command fails at once with exit code 1 and a message naming the cause,
//! no hang and no retry. Needs `pg_basebackup` (see the library's
//! tests/failover.rs); skipped without it.

mod common;

use std::time::Duration;

use common::*;
use sayiir_diesel_testkit::ReplicatedPair;
use serde_json::Value;

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|w| w["instance_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn reads_work_on_a_standby_and_writes_fail_at_once() {
    if !ReplicatedPair::available() {
        eprintln!("skipped: no pg_basebackup beside the server binaries (or DATABASE_URL set)");
        return;
    }
    // Synchronous (remote_apply): a commit is visible on the standby when
    // it returns.
    let pair = tokio::task::spawn_blocking(|| ReplicatedPair::start(true))
        .await
        .unwrap()
        .unwrap();
    pair.psql(pair.primary_port(), "CREATE DATABASE app")
        .unwrap();
    let primary = ReplicatedPair::url(pair.primary_port(), "app");
    let standby = ReplicatedPair::url(pair.standby_port(), "app");
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
    let reads: [&[&str]; 6] = [
        &["status", "--json"],
        &["list", "--json"],
        &["list", "--json", "--status", "paused"],
        &["show", "running", "--json"],
        &["show", "queued", "--json"],
        &["stuck", "--json", "--held-longer-than", "0s"],
    ];
    for args in reads {
        let there = cli_at(&standby, args).json();
        let here = cli_at(&primary, args).json();
        assert_eq!(without_ages(&there), without_ages(&here), "{args:?}");
    }
    let status = cli_at(&standby, &["status", "--json"]).json();
    assert_eq!(status["total"], 7);
    assert_eq!(status["workflows"]["Paused"], 1);
    assert_eq!(status["expired_claims"], 1);
    assert_eq!(
        ids(&cli_at(&standby, &["list", "--json"]).json()["workflows"]),
        POPULATED
    );
    let running = cli_at(&standby, &["show", "running", "--json"]).json();
    assert_eq!(running["claim"]["worker"], "w1");
    let stuck = cli_at(&standby, &["stuck", "--json"]).json();
    assert_eq!(ids(&stuck["expired_claims"]), ["lapsed"]);
    assert_eq!(ids(&stuck["overdue_parks"]), ["napping"]);
    for args in [&["status"][..], &["list"], &["show", "running"], &["stuck"]] {
        assert!(!cli_at(&standby, args).ok().is_empty(), "{args:?}");
    }
    assert_eq!(cli_at(&standby, &["show", "nope"]).code, 3);

    // Every write command fails at once, exit 1, naming the cause; nothing
    // reaches the primary.
    let before = fingerprint(&primary).await;
    let writes: [&[&str]; 8] = [
        &["cancel", "running"],
        &["pause", "queued"],
        &["resume", "paused"],
        &["send-event", "queued", "go", "2"],
        &["send-event", "ghost", "go", "2", "--allow-unknown"],
        &["prune", "--finished-older-than", "0s"],
        &["prune", "--history-keep-last", "1"],
        &["migrate"],
    ];
    for args in writes {
        let r = cli_at(&standby, args);
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
        assert!(r.stderr.starts_with("sayiir-diesel: "), "{}", r.stderr);
        assert!(
            r.stderr.contains("accepts no writes")
                && r.stderr.contains("write commands need the primary"),
            "{args:?}: {}",
            r.stderr
        );
        assert_eq!(r.stderr.lines().count(), 1, "one line: {}", r.stderr);
    }
    assert_eq!(fingerprint(&primary).await, before);
    assert_eq!(fingerprint(&standby).await, before);

    // The same command on the primary goes through.
    let cancelled = cli_at(&primary, &["cancel", "running", "--json"]).json();
    assert_eq!(cancelled["result"], "requested");
    drop(b);
}
