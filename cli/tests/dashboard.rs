//! `sayiir-diesel dashboard`: refuses to listen beyond loopback without a
//! token, and serves the pages and JSON of the same store on its own, under
//! its prefix, until stopped.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The binary serving, killed when dropped.
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 GET on loopback: (status code, headers and body).
fn http_get(port: u16, path: &str, auth: Option<&str>) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let auth = auth
        .map(|a| format!("Authorization: {a}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Connection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let code = answer.split(' ').nth(1)?.parse().ok()?;
    Some((code, answer))
}

fn serve(url: &str, args: &[&str], port: u16) -> Serving {
    let child = bare()
        .env("DATABASE_URL", url)
        .env_remove("SAYIIR_DASHBOARD_TOKEN")
        .arg("dashboard")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let serving = Serving(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(port, "/", None).is_none() {
        assert!(Instant::now() < deadline, "the dashboard did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    serving
}

#[tokio::test]
async fn beyond_loopback_it_needs_a_token_and_says_why() {
    let db = test_db().await;
    let refused = cli(&db, &["dashboard", "--listen", "0.0.0.0:0"]);
    assert_eq!(refused.code, 2, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("without a token"),
        "{}",
        refused.stderr
    );
    let short = run(bare()
        .env("DATABASE_URL", db.url())
        .env("SAYIIR_DASHBOARD_TOKEN", "short")
        .args(["dashboard", "--listen", "0.0.0.0:0"]));
    assert_eq!(short.code, 2, "{}", short.stderr);
    assert!(short.stderr.contains("at least 16"), "{}", short.stderr);
    let bad_prefix = cli(&db, &["dashboard", "--prefix", "ops/"]);
    assert_eq!(bad_prefix.code, 2, "{}", bad_prefix.stderr);
}

#[tokio::test]
async fn it_serves_the_store_under_its_prefix_with_its_token() {
    let (db, b) = backend().await;
    populate(&b).await;
    let port = free_port();
    let token_file = std::env::temp_dir().join(format!("sayiir-dash-token-{port}"));
    std::fs::write(&token_file, "a-token-from-a-file-0123\n").unwrap();
    let listen = format!("127.0.0.1:{port}");
    let _serving = serve(
        db.url(),
        &[
            "--listen",
            &listen,
            "--prefix",
            "/ops/sayiir",
            "--token-file",
            token_file.to_str().unwrap(),
        ],
        port,
    );
    let bearer = Some("Bearer a-token-from-a-file-0123");
    let (code, answer) = http_get(port, "/ops/sayiir/api/status", None).unwrap();
    assert_eq!(code, 401, "{answer}");
    assert!(
        answer.contains("WWW-Authenticate: Basic") || answer.contains("www-authenticate: Basic"),
        "{answer}"
    );
    let (code, answer) = http_get(port, "/ops/sayiir/api/status", bearer).unwrap();
    assert_eq!(code, 200, "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap();
    // The same document as `status --json`.
    let served: serde_json::Value = serde_json::from_str(body).unwrap();
    let printed = cli(&db, &["--json", "status"]).json();
    assert_eq!(without_ages(&served), without_ages(&printed));
    // `/` leads to the prefix; pages are under it.
    let (code, answer) = http_get(port, "/", bearer).unwrap();
    assert_eq!(code, 303, "{answer}");
    assert!(
        answer.to_lowercase().contains("location: /ops/sayiir\r\n"),
        "{answer}"
    );
    let (code, page) = http_get(port, "/ops/sayiir/workflows?status=Paused", bearer).unwrap();
    assert_eq!(code, 200, "{page}");
    assert!(
        page.contains("href=\"/ops/sayiir/workflows/paused\""),
        "{page}"
    );
    assert!(!page.contains("/confirm/"), "read-only without --actions");
    std::fs::remove_file(token_file).unwrap();
}
