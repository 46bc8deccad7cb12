//! The dashboard in a real headless Chromium, driven over WebDriver, while
//! real `PooledWorker`s run workflows: follow a count to a workflow, pause
//! and resume one from its page, cancel one, and check that a hostile id's
//! page runs no script. Screenshots of each page go to
//! `target/dashboard-screenshots/`.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`/usr/bin/chromium`,
//! `/usr/bin/chromedriver`, or `CHROMIUM` / `CHROMEDRIVER`); skipped without
//! them unless `SAYIIR_REQUIRE_BROWSER` is set (CI sets it). Nothing is
//! downloaded.

mod serving;

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use sayiir_core::context::WorkflowContext;
use sayiir_core::registry::TaskRegistry;
use sayiir_core::workflow::{Workflow, WorkflowBuilder};
use sayiir_diesel::Status;
use sayiir_diesel_dashboard::Dashboard;
use sayiir_runtime::serialization::JsonCodec;
use sayiir_runtime::{PooledWorker, WorkflowClient};
use serving::*;

const HOSTILE: &str = "<img src=x onerror=\"document.title='pwned'\">";

fn binary(var: &str, default: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from(default)))
        .filter(|p| p.exists())
}

/// A chromedriver on a free loopback port, killed when dropped.
struct Driver {
    child: Child,
    port: u16,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn browser() -> Option<(Driver, Client, tempdir::Dir)> {
    let (Some(chromium), Some(driver)) = (
        binary("CHROMIUM", "/usr/bin/chromium"),
        binary("CHROMEDRIVER", "/usr/bin/chromedriver"),
    ) else {
        assert!(
            std::env::var_os("SAYIIR_REQUIRE_BROWSER").is_none(),
            "SAYIIR_REQUIRE_BROWSER is set but chromium or chromedriver is missing"
        );
        eprintln!("skipped: no chromium / chromedriver (apt-get install chromium chromium-driver)");
        return None;
    };
    let port = free_port();
    let child = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver { child, port };
    let profile = tempdir::Dir::new();
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_owned(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-quic", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.path.display()),
            ]
        }),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
        {
            Ok(client) => return Some((driver, client, profile)),
            Err(e) if Instant::now() < deadline => {
                eprintln!("waiting for chromedriver: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("chromedriver did not start: {e}"),
        }
    }
}

/// A throwaway directory for the browser's profile.
mod tempdir {
    pub struct Dir {
        pub path: std::path::PathBuf,
    }
    impl Dir {
        pub fn new() -> Self {
            let path = std::env::temp_dir().join(format!(
                "sayiir-dashboard-chromium-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos()
            ));
            std::fs::create_dir_all(&path).unwrap();
            Self { path }
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// `order-1` (paused and resumed) runs with this input, and its steps wait
/// at [`PAUSE_GATE`] first.
const PAUSED_MS: u64 = 301;
/// `order-2` (cancelled) runs with this input, and its steps wait at
/// [`CANCEL_GATE`] first.
const CANCELLED_MS: u64 = 302;
/// Shut until the pause of `order-1` has been requested in the browser: the
/// workflow cannot run to its end before the operator gets to it, however
/// slow the browser is. The pause takes effect when the waiting step ends.
static PAUSE_GATE: AtomicBool = AtomicBool::new(false);
/// Shut until the cancel of `order-2` has been requested.
static CANCEL_GATE: AtomicBool = AtomicBool::new(false);

async fn step(ms: u64) -> Result<u64, sayiir_core::error::BoxError> {
    let gate = match ms {
        PAUSED_MS => Some(&PAUSE_GATE),
        CANCELLED_MS => Some(&CANCEL_GATE),
        _ => None,
    };
    while gate.is_some_and(|g| !g.load(Ordering::SeqCst)) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(ms)
}

/// Twelve steps of `input` milliseconds each, the gated ones held at their
/// gate until the test opens it.
fn slow_workflow() -> Workflow<JsonCodec, u64> {
    let ctx = WorkflowContext::new("slow", Arc::new(JsonCodec), Arc::new(()));
    let mut b = WorkflowBuilder::new(ctx).then("step-00", step);
    for i in 1..12 {
        b = b.then(&format!("step-{i:02}"), step);
    }
    b.build().unwrap()
}

fn shots_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(shots_dir().join(format!("{name}.png")), png).unwrap();
}

async fn status_of(b: &Backend, id: &str) -> Option<Status> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use sayiir_diesel::schema::sayiir::workflows;
    let mut conn = b.pool().get().await.unwrap();
    workflows::table
        .find(id)
        .select(workflows::status)
        .first(&mut conn)
        .await
        .optional()
        .unwrap()
}

async fn until_status(b: &Backend, id: &str, want: Status) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = status_of(b, id).await;
        if now == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{id} is {now:?}, waited for {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Clicks the element, then waits until the browser has left `from`.
async fn click_and_wait(c: &Client, css: &str) {
    let from = c.current_url().await.unwrap();
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while c.current_url().await.unwrap() == from {
        assert!(Instant::now() < deadline, "clicking {css} did not navigate");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The new page's body is there once the document is complete.
    while c
        .execute("return document.readyState", vec![])
        .await
        .unwrap()
        != "complete"
    {
        assert!(
            Instant::now() < deadline,
            "the page after {css} did not load"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_finds_pauses_resumes_and_cancels_workflows_in_a_browser() {
    let Some((_driver, c, _profile)) = browser().await else {
        return;
    };
    let (_db, b) = backend().await;
    let wf = Arc::new(slow_workflow());
    let registry = vec![(*wf.definition_hash(), Arc::clone(&wf))];
    // A worker runs the tasks it holds one after another, so a step held at
    // its gate holds its worker too: three workers leave one free while
    // order-1 and order-2 are held.
    let workers: Vec<_> = (0..3)
        .map(|i| {
            PooledWorker::new(
                format!("browser-worker-{i}"),
                b.clone(),
                TaskRegistry::new(),
            )
            .with_batch_size(NonZeroUsize::new(1).unwrap())
            .spawn(Duration::from_millis(100), registry.clone())
        })
        .collect();
    let client = WorkflowClient::new(b.clone());
    // A finished one for the overview's Completed count.
    client.submit(&*wf, "order-3", 5u64).await.unwrap();
    until_status(&b, "order-3", Status::Completed).await;
    // order-1 and order-2 wait at their gates until the browser has asked
    // for their pause and cancel: no timing decides whether the operator
    // gets there first.
    for (id, ms) in [
        ("order-1", PAUSED_MS),
        ("order-2", CANCELLED_MS),
        (HOSTILE, 1500),
    ] {
        client.submit(&*wf, id, ms).await.unwrap();
    }

    let prefix = "/ops/sayiir";
    let dashboard = Dashboard::new(b.clone())
        .prefix(prefix)
        .unwrap()
        .actions(true);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().nest(prefix, dashboard.router());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // Pause order-1 (held at its gate, still running) from its page; it
    // becomes Paused in the database once the held step ends.
    c.goto(&format!("{base}{prefix}/workflows/order-1"))
        .await
        .unwrap();
    click_and_wait(&c, "a.button[href$='/confirm/pause/order-1']").await;
    shot(&c, "confirm").await;
    click_and_wait(&c, "form button[type=submit]").await;
    assert!(c.source().await.unwrap().contains("Done: pause requested"));
    assert_eq!(status_of(&b, "order-1").await, Some(Status::InProgress));
    PAUSE_GATE.store(true, Ordering::SeqCst);
    until_status(&b, "order-1", Status::Paused).await;
    // Resume it; it completes.
    c.goto(&format!("{base}{prefix}/workflows/order-1"))
        .await
        .unwrap();
    click_and_wait(&c, "a.button[href$='/confirm/resume/order-1']").await;
    click_and_wait(&c, "form button[type=submit]").await;
    assert!(c.source().await.unwrap().contains("resumed"));

    // Overview → the InProgress count → a workflow.
    c.goto(&format!("{base}{prefix}?refresh=2")).await.unwrap();
    assert_eq!(c.title().await.unwrap(), "Overview · sayiir-diesel");
    shot(&c, "overview").await;
    click_and_wait(
        &c,
        "a[href='/ops/sayiir/workflows?status=InProgress&refresh=2']",
    )
    .await;
    let listed = c.source().await.unwrap();
    assert!(listed.contains("order-2"), "{listed}");
    click_and_wait(&c, "a.id[href^='/ops/sayiir/workflows/order-2']").await;
    assert!(c.source().await.unwrap().contains("Timeline"));
    shot(&c, "workflow").await;

    // Cancel order-2.
    c.goto(&format!("{base}{prefix}/workflows/order-2"))
        .await
        .unwrap();
    click_and_wait(&c, "a.button[href$='/confirm/cancel/order-2']").await;
    click_and_wait(&c, "form button[type=submit]").await;
    assert_eq!(status_of(&b, "order-2").await, Some(Status::InProgress));
    CANCEL_GATE.store(true, Ordering::SeqCst);
    until_status(&b, "order-2", Status::Cancelled).await;
    // The resumed one runs to the end.
    until_status(&b, "order-1", Status::Completed).await;

    // The hostile id's page shows it as text and runs no script.
    let hostile = format!(
        "{base}{prefix}/workflows/{}",
        sayiir_diesel_dashboard::web::encode_segment(HOSTILE)
    );
    c.goto(&hostile).await.unwrap();
    assert_ne!(c.title().await.unwrap(), "pwned");
    let shown = c
        .find(Locator::Css("code.id"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(shown, HOSTILE);
    assert_eq!(
        c.execute(
            "return document.querySelectorAll('main img').length",
            vec![]
        )
        .await
        .unwrap(),
        serde_json::json!(0)
    );
    // The list, the queue and the stuck page, for the pictures.
    for (name, path) in [
        ("workflows", "/workflows"),
        ("queue", "/queue"),
        ("stuck", "/stuck"),
    ] {
        c.goto(&format!("{base}{prefix}{path}")).await.unwrap();
        shot(&c, name).await;
    }
    // The overview once more, with the finished ones on the chart.
    c.goto(&format!("{base}{prefix}")).await.unwrap();
    shot(&c, "overview").await;
    c.close().await.unwrap();
    for w in workers {
        w.shutdown();
        w.join().await.unwrap();
    }
}
