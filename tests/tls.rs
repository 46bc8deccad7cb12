//! The whole backend over TLS: a throwaway server with a certificate signed
//! by a self-signed CA, `pg_hba.conf` refusing every connection without
//! TLS, and a rustls connector given to the builder. Workflows run on the
//! real runtime, and the pool, the migration connection and the `LISTEN`
//! connection all go through the connector (a plain one is refused).

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use diesel::sql_types::{BigInt, Bool};
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::FutureExt;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use sayiir_diesel::pool::{ConnectFn, PgPool};
use sayiir_diesel_testkit::PgServer;

/// A CA and a server certificate for 127.0.0.1 it signed (PEM): (ca, cert, key).
fn certificates() -> (String, String, String) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

/// A rustls connector trusting `ca_pem` only.
fn tls_connector(ca_pem: &str) -> ConnectFn {
    let mut roots = rustls::RootCertStore::empty();
    let der = rustls::pki_types::pem::PemObject::from_pem_slice(ca_pem.as_bytes()).unwrap();
    roots.add(der).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tls = tokio_postgres_rustls::MakeRustlsConnect::new(config);
    Arc::new(move |url: &str| {
        let tls = tls.clone();
        let url = url.to_owned();
        async move {
            let (client, connection) = tokio_postgres::connect(&url, tls)
                .await
                .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
            AsyncPgConnection::try_from_client_and_connection(client, connection).await
        }
        .boxed()
    })
}

/// A throwaway server that accepts TLS connections only (over TCP), with
/// database `app`; returns the server and the CA to trust.
async fn tls_server() -> (PgServer, String) {
    let server = tokio::task::spawn_blocking(PgServer::start)
        .await
        .unwrap()
        .unwrap();
    let (ca, cert, key) = certificates();
    server
        .write_data_file("server.crt", cert.as_bytes(), 0o600)
        .unwrap();
    server
        .write_data_file("server.key", key.as_bytes(), 0o600)
        .unwrap();
    server
        .write_data_file(
            "pg_hba.conf",
            b"local all all trust\n\
              hostssl all all 127.0.0.1/32 trust\n\
              hostnossl all all 127.0.0.1/32 reject\n",
            0o600,
        )
        .unwrap();
    let mut admin = AsyncPgConnection::establish(server.admin_url())
        .await
        .unwrap();
    for sql in [
        "CREATE DATABASE app",
        "ALTER SYSTEM SET ssl = on",
        "SELECT pg_reload_conf()",
    ] {
        admin.batch_execute(sql).await.unwrap();
    }
    // The reload is asynchronous: wait until a plain connection is refused.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while AsyncPgConnection::establish(server.admin_url())
        .await
        .is_ok()
    {
        assert!(std::time::Instant::now() < deadline, "TLS never enforced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (server, ca)
}

#[derive(diesel::QueryableByName)]
struct Sessions {
    #[diesel(sql_type = BigInt)]
    total: i64,
    #[diesel(sql_type = BigInt)]
    plain: i64,
    #[diesel(sql_type = BigInt)]
    listeners: i64,
}

#[derive(diesel::QueryableByName)]
struct Ssl {
    #[diesel(sql_type = Bool)]
    ssl: bool,
}

/// Our sessions on database `app` other than the asking one: how many,
/// how many without TLS, and how many are `LISTEN`ing.
async fn sessions(conn: &mut AsyncPgConnection) -> Sessions {
    diesel::sql_query(
        "SELECT count(*) AS total, \
                count(*) FILTER (WHERE NOT s.ssl) AS plain, \
                count(*) FILTER (WHERE a.query LIKE 'LISTEN%') AS listeners \
         FROM pg_stat_activity AS a JOIN pg_stat_ssl AS s USING (pid) \
         WHERE a.datname = 'app' AND a.pid <> pg_backend_pid()",
    )
    .get_result(conn)
    .await
    .unwrap()
}

/// The application's own pool of four, its connections opened by `connect`.
fn application_pool(url: &str, connect: &ConnectFn) -> PgPool {
    let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
    let for_pool = Arc::clone(connect);
    manager_config.custom_setup = Box::new(move |url| for_pool(url));
    let manager = AsyncDieselConnectionManager::new_with_config(url, manager_config);
    PgPool::builder(manager).max_size(4).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_backend_runs_over_tls() {
    if std::env::var("DATABASE_URL").is_ok_and(|u| !u.is_empty()) {
        eprintln!("skipped: needs a throwaway server of its own");
        return;
    }
    let (server, ca) = tls_server().await;
    let url = format!("{}?sslmode=require", server.url_for("app"));
    let connect = tls_connector(&ca);

    // Without the connector nothing gets through: not the migrations, not
    // the pool, not the listener.
    assert!(Backend::connect(&url).await.is_err());

    // Builder with the connector: migrations, pool and listener over TLS.
    let b = Backend::builder(&url)
        .connector(Arc::clone(&connect))
        .build()
        .await
        .unwrap();
    run_two_step(&b, "builder", 10).await;
    let mut check = connect(&url).await.unwrap();
    let ssl: Ssl = diesel::sql_query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .get_result(&mut check)
        .await
        .unwrap();
    assert!(ssl.ssl);
    let s = sessions(&mut check).await;
    assert!(s.total >= 2, "pool and listener sessions: {}", s.total);
    assert_eq!(s.plain, 0);
    assert_eq!(s.listeners, 1);
    drop(b);

    // The application's own pool (built with the same connector), with the
    // builder's connector for migrations and the listener.
    let b = Backend::builder(&url)
        .pool(application_pool(&url, &connect))
        .connector(Arc::clone(&connect))
        .build()
        .await
        .unwrap();
    run_two_step(&b, "pool", 10).await;
    let s = sessions(&mut check).await;
    assert_eq!(s.plain, 0);
    assert!(s.listeners >= 1);

    // The standalone migration entry point takes a connection opened by
    // the connector too.
    let conn = connect(&url).await.unwrap();
    assert!(
        sayiir_diesel::migrations::run_on(conn)
            .await
            .unwrap()
            .is_empty()
    );
}
