//! Run against a PostgreSQL older than 13 (CI: `PG_BIN=<12.x bin>
//! cargo test --test old_server -- --ignored`): `connect` refuses it with an
//! error naming the version found, and creates nothing.

use diesel::sql_types::Integer;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use sayiir_diesel::DieselBackend;
use sayiir_diesel_testkit::PgServer;
use sayiir_runtime::serialization::JsonCodec;

#[derive(diesel::QueryableByName)]
struct Num {
    #[diesel(sql_type = Integer)]
    num: i32,
}

#[tokio::test]
#[ignore = "needs a PostgreSQL 12 server (PG_BIN); run by .ci/run"]
async fn servers_older_than_13_are_refused_naming_the_version() {
    let server = PgServer::shared().unwrap();
    let url = server.admin_url().to_owned();
    let mut conn = AsyncPgConnection::establish(&url).await.unwrap();
    let v: Num = diesel::sql_query("SELECT current_setting('server_version_num')::int4 AS num")
        .get_result(&mut conn)
        .await
        .unwrap();
    assert!(
        v.num < 130_000,
        "this test needs a server older than 13, got {}",
        v.num
    );

    let err = DieselBackend::<JsonCodec>::connect(&url).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("not supported"), "{text}");
    assert!(
        text.contains(&format!("{}.", v.num / 10_000)),
        "names the version: {text}"
    );
    #[derive(diesel::QueryableByName)]
    struct Exists {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        e: bool,
    }
    let schema: Exists = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'sayiir') AS e",
    )
    .get_result(&mut conn)
    .await
    .unwrap();
    assert!(!schema.e, "nothing was created");
}
