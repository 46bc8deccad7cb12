//! Bringing your own pool: `from_pool` migrates through the URL once and
//! then queries only through the application's pool.

mod common;

use common::*;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use diesel_async::pooled_connection::AsyncDieselConnectionManager;
use sayiir_diesel::PgPool;
use sayiir_diesel::schema::sayiir::workflows;
use sayiir_persistence::SnapshotStore;

#[tokio::test]
async fn from_pool_uses_the_applications_pool() {
    let db = empty_db().await;
    let manager = AsyncDieselConnectionManager::<diesel_async::AsyncPgConnection>::new(db.url());
    let pool: PgPool = PgPool::builder(manager).max_size(2).build().unwrap();
    let b = Backend::from_pool(pool.clone(), db.url()).await.unwrap();
    b.save_snapshot(&mut at_task("wf", "a")).await.unwrap();
    // The app's own queries see our rows through the same pool.
    let mut conn = pool.get().await.unwrap();
    let ids: Vec<String> = workflows::table
        .select(workflows::instance_id)
        .load(&mut conn)
        .await
        .unwrap();
    assert_eq!(ids, ["wf"]);
    drop(conn);
    assert!(pool.status().size >= 1);
    assert_eq!(
        pool.status().max_size,
        b.pool().status().max_size,
        "the very same pool"
    );
}

/// The application's pool with the builder's other options.
#[tokio::test]
async fn the_builder_takes_the_applications_pool_and_its_options() {
    use sayiir_diesel::schema::sayiir::history;
    let db = empty_db().await;
    let manager = AsyncDieselConnectionManager::<diesel_async::AsyncPgConnection>::new(db.url());
    let pool: PgPool = PgPool::builder(manager).max_size(3).build().unwrap();
    let b = Backend::builder(db.url())
        .pool(pool.clone())
        .keep_history(false)
        .build()
        .await
        .unwrap();
    b.save_snapshot(&mut at_task("wf", "a")).await.unwrap();
    let mut conn = pool.get().await.unwrap();
    let entries: i64 = history::table.count().get_result(&mut conn).await.unwrap();
    assert_eq!(
        entries, 0,
        "keep_history(false) applies with the app's pool"
    );
    assert_eq!(b.pool().status().max_size, 3, "the very same pool");
}
