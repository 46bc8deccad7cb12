//! Migrations at boot: isolated in schema `sayiir`, safe when many processes
//! boot at once, reversible, and never touching the application's own.

mod common;

use common::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use diesel_migrations::{FileBasedMigrations, MigrationHarness};

#[derive(diesel::QueryableByName, Debug, PartialEq)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

async fn versions(conn: &mut AsyncPgConnection, schema: &str) -> Vec<String> {
    let sql = format!("SELECT version FROM {schema}.__diesel_schema_migrations ORDER BY version");
    diesel::sql_query(sql)
        .load::<Version>(conn)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.version)
        .collect()
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

async fn count(conn: &mut AsyncPgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .await
        .unwrap()
        .n
}

fn our_versions() -> Vec<String> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(Result::unwrap)
        .filter(|e| e.file_type().unwrap().is_dir()) // not released.txt
        .map(|e| {
            let name = e.file_name().into_string().unwrap();
            name.split('_').next().unwrap().replace('-', "")
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn eight_concurrent_connects_on_a_fresh_database_migrate_once() {
    let db = empty_db().await;
    let mut handles = Vec::new();
    for _ in 0..8 {
        let url = db.url().to_owned();
        handles.push(tokio::spawn(async move {
            Backend::connect(&url).await.map(drop)
        }));
    }
    for h in handles {
        h.await.unwrap().expect("every concurrent connect succeeds");
    }
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    assert_eq!(versions(&mut conn, "sayiir").await, our_versions());
    // Nothing of ours outside schema `sayiir`.
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'public'"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
             WHERE n.nspname = 'public'"
        )
        .await,
        0
    );
    // A second boot applies nothing.
    assert!(
        sayiir_diesel::migrations::run(db.url())
            .await
            .unwrap()
            .is_empty()
    );
}

fn write_app_migrations(dir: &std::path::Path) {
    for (name, up, down) in [
        (
            "2020-01-01-000000_create_users",
            "CREATE TABLE users (id SERIAL PRIMARY KEY, name TEXT NOT NULL);",
            "DROP TABLE users;",
        ),
        (
            "2020-02-01-000000_create_orders",
            "CREATE TABLE orders (id SERIAL PRIMARY KEY, user_id INT REFERENCES users(id));",
            "DROP TABLE orders;",
        ),
    ] {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("up.sql"), up).unwrap();
        std::fs::write(d.join("down.sql"), down).unwrap();
    }
}

/// Runs `f` with a sync harness on the app's default search_path.
async fn with_app_harness<T: Send + 'static>(
    url: &str,
    f: impl FnOnce(
        &mut diesel_async::async_connection_wrapper::AsyncConnectionWrapper<AsyncPgConnection>,
    ) -> T
    + Send
    + 'static,
) -> T {
    let conn = AsyncPgConnection::establish(url).await.unwrap();
    tokio::task::spawn_blocking(move || {
        let mut wrapper =
            diesel_async::async_connection_wrapper::AsyncConnectionWrapper::from(conn);
        f(&mut wrapper)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn app_migrations_and_ours_never_touch_each_other() {
    let db = empty_db().await;
    let dir = std::env::temp_dir().join(format!("sayiir-app-migrations-{}", db.name()));
    write_app_migrations(&dir);

    let d = dir.clone();
    with_app_harness(db.url(), move |h| {
        let m = FileBasedMigrations::from_path(&d).unwrap();
        h.run_pending_migrations(m).unwrap();
    })
    .await;
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    let app_before = versions(&mut conn, "public").await;
    assert_eq!(app_before, ["20200101000000", "20200201000000"]);

    let backend = Backend::connect(db.url()).await.unwrap();
    assert_eq!(
        versions(&mut conn, "public").await,
        app_before,
        "our boot left the app's rows alone"
    );
    assert_eq!(versions(&mut conn, "sayiir").await, our_versions());

    // The app reverts all of its migrations: ours stay, and so does our data.
    let mut s = at_task("wf", "a");
    sayiir_persistence::SnapshotStore::save_snapshot(&backend, &mut s)
        .await
        .unwrap();
    let d = dir.clone();
    with_app_harness(db.url(), move |h| {
        let m = FileBasedMigrations::from_path(&d).unwrap();
        h.revert_all_migrations(m).unwrap();
    })
    .await;
    assert!(versions(&mut conn, "public").await.is_empty());
    assert_eq!(versions(&mut conn, "sayiir").await, our_versions());
    sayiir_persistence::SnapshotStore::load_snapshot(&backend, "wf")
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn migrations_run_down_and_up_again() {
    let db = test_db().await;
    let reverted = sayiir_diesel::migrations::revert_all(db.url())
        .await
        .unwrap();
    assert_eq!(reverted.len(), our_versions().len());
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'sayiir' \
             AND tablename <> '__diesel_schema_migrations'"
        )
        .await,
        0,
        "down.sql removes every table"
    );
    let applied = sayiir_diesel::migrations::run(db.url()).await.unwrap();
    assert_eq!(applied, our_versions());
    let backend = Backend::connect(db.url()).await.unwrap();
    sayiir_persistence::SnapshotStore::save_snapshot(&backend, &mut at_task("wf", "a"))
        .await
        .unwrap();
}

#[tokio::test]
async fn schema_objects_all_live_in_sayiir() {
    let db = test_db().await;
    let mut conn = AsyncPgConnection::establish(db.url()).await.unwrap();
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname NOT IN ('sayiir', 'pg_catalog', 'information_schema', 'pg_toast')"
        )
        .await,
        0
    );
    assert_eq!(
        count(
            &mut conn,
            "SELECT count(*) AS n FROM pg_extension WHERE extname <> 'plpgsql'"
        )
        .await,
        0
    );
}
