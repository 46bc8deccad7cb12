//! Every page and `/api` answer against what the tables hold, with the
//! prefix on every link, form and script, and hostile values escaped.

mod serving;

use axum::http::StatusCode;
use bytes::Bytes;
use sayiir_core::snapshot::{SignalKind, SignalRequest};
use sayiir_diesel_dashboard::Dashboard;
use sayiir_persistence::{SignalStore, SnapshotStore, TaskClaimStore};
use serving::*;

const HOSTILE: &str = "<img src=x onerror=alert(1)>";

/// `queued` (an event buffered), `running` (claimed), `paused`, `done`
/// (completed with a JSON output), `broken` (failed with a hostile error),
/// and the hostile id (with a hostile signal name buffered).
async fn populate(b: &serving::Backend) {
    for id in ["queued", "running", "paused", HOSTILE] {
        b.save_snapshot(&mut at_task(id, "a")).await.unwrap();
    }
    b.send_event("queued", "go", Bytes::from_static(b"1"))
        .await
        .unwrap();
    b.send_event(
        HOSTILE,
        HOSTILE,
        Bytes::from_static(b"{\"x\":\"</pre><script>alert(2)</script>\"}"),
    )
    .await
    .unwrap();
    b.claim_task("running", &tid("a"), "w1", Some(chrono::Duration::hours(1)))
        .await
        .unwrap()
        .unwrap();
    b.store_signal(
        "paused",
        SignalKind::Pause,
        SignalRequest::new(Some("deploy".into()), Some("ops".into())),
    )
    .await
    .unwrap();
    assert!(b.check_and_pause("paused").await.unwrap());
    let mut done = at_task("done", "a");
    b.save_snapshot(&mut done).await.unwrap();
    done.mark_task_completed(
        tid("a"),
        Bytes::from_static(b"{\"total\":42,\"items\":[1,2]}"),
    );
    b.save_snapshot(&mut done).await.unwrap();
    done.mark_completed(Bytes::from_static(b"{\"total\":42}"));
    b.save_snapshot(&mut done).await.unwrap();
    let mut broken = at_task("broken", "a");
    b.save_snapshot(&mut broken).await.unwrap();
    broken.mark_failed(format!("boom {HOSTILE}"));
    b.save_snapshot(&mut broken).await.unwrap();
}

fn assert_all_urls_under(a: &Answer, prefix: &str) {
    let urls = a.urls();
    assert!(!urls.is_empty());
    for url in urls {
        let rest = url
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("{url} is not under {prefix}"));
        assert!(
            rest.is_empty() || rest.starts_with('/') || rest.starts_with('?'),
            "{url} is not under {prefix}"
        );
    }
}

#[tokio::test]
async fn pages_and_api_show_what_the_tables_hold_under_a_prefix() {
    let (_db, b) = backend().await;
    populate(&b).await;
    let prefix = "/ops/sayiir";
    let app = app(&Dashboard::new(b.clone()).prefix(prefix).unwrap(), prefix);

    // The JSON documents: the CLI's.
    let status = get(&app, "/ops/sayiir/api/status").await;
    assert_eq!(status.status, StatusCode::OK, "{}", status.body);
    let s = status.json();
    assert_eq!(s["workflows"]["InProgress"], 3);
    assert_eq!(s["workflows"]["Paused"], 1);
    assert_eq!(s["workflows"]["Completed"], 1);
    assert_eq!(s["workflows"]["Failed"], 1);
    assert_eq!(s["total"], 6);
    assert_eq!(s["queue"]["running"], 1);
    assert_eq!(s["buffered_events"], 2);
    assert_eq!(s["at_least"], serde_json::json!([]));

    let list = get(&app, "/ops/sayiir/api/workflows?status=InProgress&limit=2")
        .await
        .json();
    let ids: Vec<&str> = list["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["instance_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [HOSTILE, "queued"]);
    assert_eq!(list["next_after"], "queued");
    let rest = get(
        &app,
        "/ops/sayiir/api/workflows?status=InProgress&limit=2&after=queued",
    )
    .await
    .json();
    assert_eq!(rest["workflows"][0]["instance_id"], "running");
    assert_eq!(rest["next_after"], serde_json::Value::Null);
    let by_prefix = get(&app, "/ops/sayiir/api/workflows?prefix=run")
        .await
        .json();
    assert_eq!(by_prefix["workflows"].as_array().unwrap().len(), 1);
    assert_eq!(
        get(&app, "/ops/sayiir/api/workflows?status=nope")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        get(&app, "/ops/sayiir/api/workflows?older_than=5")
            .await
            .status,
        StatusCode::BAD_REQUEST
    );

    let one = get(&app, "/ops/sayiir/api/workflows/done").await.json();
    assert_eq!(one["status"], "Completed");
    assert_eq!(one["outputs"].as_array().unwrap().len(), 1);
    assert_eq!(
        get(&app, "/ops/sayiir/api/workflows/nobody").await.status,
        StatusCode::NOT_FOUND
    );
    let stuck = get(&app, "/ops/sayiir/api/stuck").await;
    assert_eq!(stuck.status, StatusCode::OK);
    assert!(
        stuck.json()["expired_claims"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // The pages: every figure links to its list, every URL under the prefix.
    let overview = get(&app, "/ops/sayiir").await;
    assert_eq!(overview.status, StatusCode::OK, "{}", overview.body);
    assert!(
        overview
            .body
            .contains("href=\"/ops/sayiir/workflows?status=Paused\">1</a>"),
        "{}",
        overview.body
    );
    assert!(overview.body.contains("<svg class=\"chart\""));
    assert_all_urls_under(&overview, prefix);
    for page in [
        "/ops/sayiir/workflows",
        "/ops/sayiir/workflows?status=InProgress&limit=1&refresh=5",
        "/ops/sayiir/workflows/done",
        "/ops/sayiir/stuck",
        "/ops/sayiir/queue",
    ] {
        let a = get(&app, page).await;
        assert_eq!(a.status, StatusCode::OK, "{page}: {}", a.body);
        assert_all_urls_under(&a, prefix);
        assert!(
            !a.body.contains("/confirm/"),
            "read-only draws no action: {page}"
        );
    }
    // Filters and refresh stay in the URL: the next page keeps them.
    let paged = get(
        &app,
        "/ops/sayiir/workflows?status=InProgress&limit=1&refresh=5",
    )
    .await;
    assert!(
        paged
            .body
            .contains("href=\"/ops/sayiir/workflows?status=InProgress&#38;limit=1&#38;after="),
        "{}",
        paged.body
    );
    assert!(paged.body.contains("data-refresh=\"5\""));
    // The workflow page: timeline, output preview (pretty JSON), history.
    let done = get(&app, "/ops/sayiir/workflows/done").await.body;
    assert!(done.contains("&#34;total&#34;: 42"), "{done}");
    assert!(done.contains("Timeline"));
    assert!(get(&app, "/ops/sayiir/workflows/nobody").await.status == StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn hostile_ids_names_errors_and_payloads_are_text() {
    let (_db, b) = backend().await;
    populate(&b).await;
    let app = app(&Dashboard::new(b).actions(true), "");
    let id_path = "/workflows/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E";
    for page in [
        "/workflows",
        id_path,
        "/workflows/broken",
        "/queue",
        "/workflows?status=Failed",
    ] {
        let a = get(&app, page).await;
        assert_eq!(a.status, StatusCode::OK, "{page}: {}", a.body);
        assert!(!a.body.contains("<img"), "{page}");
        assert!(!a.body.contains("<script>"), "{page}");
    }
    let page = get(&app, id_path).await.body;
    assert!(
        page.contains("&#60;img src=x onerror=alert(1)&#62;"),
        "{page}"
    );
    let broken = get(&app, "/workflows/broken").await.body;
    assert!(broken.contains("boom &#60;img"), "{broken}");
    // The confirmation of an event echoes its name and payload as text.
    let confirm = get(
        &app,
        "/confirm/event/broken?name=%3Cb%3E&payload=%22%3Cscript%3E%22",
    )
    .await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    assert!(!confirm.body.contains("<script>") && !confirm.body.contains("<b>"));
    let bad = get(&app, "/confirm/event/broken?name=go&payload=not-json").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn actions_ask_act_through_the_store_and_say_what_happened() {
    let (_db, b) = backend().await;
    populate(&b).await;
    let prefix = "/ops";
    let app = app(
        &Dashboard::new(b.clone())
            .prefix(prefix)
            .unwrap()
            .actions(true),
        prefix,
    );
    let page = get(&app, "/ops/workflows/queued").await;
    assert!(
        page.body.contains("href=\"/ops/confirm/pause/queued\""),
        "{}",
        page.body
    );
    let confirm = get(&app, "/ops/confirm/pause/queued").await;
    assert!(
        confirm.body.contains("action=\"/ops/act/pause/queued\""),
        "{}",
        confirm.body
    );
    assert_all_urls_under(&confirm, prefix);

    let paused = post_form(&app, "/ops/act/pause/queued", "").await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.body);
    assert!(
        paused.body.contains("Done: pause requested"),
        "{}",
        paused.body
    );
    assert!(
        b.get_signal("queued", SignalKind::Pause)
            .await
            .unwrap()
            .is_some()
    );
    // Refused by state, and not found.
    let refused = post_form(&app, "/ops/act/cancel/done", "").await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(refused.body.contains("Refused"));
    let missing = post_form(&app, "/ops/act/resume/nobody", "").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    // Resume the paused one; send an event (JSON for a script).
    let resumed = post_form(&app, "/ops/act/resume/paused", "").await;
    assert!(resumed.body.contains("resumed"), "{}", resumed.body);
    let sent = serving::send(
        &app,
        axum::http::Request::post("/ops/act/event/running")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("accept", "application/json")
            .body(axum::body::Body::from(
                "name=approve&payload=%7B%22ok%22%3Atrue%7D",
            ))
            .unwrap(),
    )
    .await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    assert_eq!(sent.json()["delivery"], "buffered");

    // Bulk: the count first, typed back; a wrong count does nothing.
    let ask = get(&app, "/ops/bulk/cancel?status=InProgress").await;
    assert_eq!(ask.status, StatusCode::OK, "{}", ask.body);
    assert!(ask.body.contains("<strong>4</strong>"), "{}", ask.body);
    let wrong = post_form(&app, "/ops/bulk/cancel", "status=InProgress&confirm=3").await;
    assert_eq!(wrong.status, StatusCode::CONFLICT);
    assert!(
        b.get_signal("running", SignalKind::Cancel)
            .await
            .unwrap()
            .is_none()
    );
    let done = post_form(&app, "/ops/bulk/cancel", "status=InProgress&confirm=4").await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert!(done.body.contains("requested for 4"), "{}", done.body);
    assert!(
        b.get_signal("running", SignalKind::Cancel)
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        get(&app, "/ops/bulk/cancel").await.status,
        StatusCode::BAD_REQUEST,
        "no status filter"
    );
}

#[tokio::test]
async fn metrics_are_sampled_not_counted_per_scrape() {
    let (_db, b) = backend().await;
    populate(&b).await;
    let app = app(&Dashboard::new(b.clone()).metrics(true), "");
    let first = get(&app, "/metrics").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(
        first
            .body
            .contains("sayiir_store_workflows{status=\"Completed\"} 1"),
        "{}",
        first.body
    );
    assert!(
        first
            .body
            .contains("sayiir_store_queue{state=\"running\"} 1")
    );
    // A new workflow shows up only at the next sample.
    b.save_snapshot(&mut at_task("later", "a")).await.unwrap();
    assert_eq!(get(&app, "/metrics").await.body, first.body);
    let off = app_without_metrics(b);
    assert_eq!(get(&off, "/metrics").await.status, StatusCode::NOT_FOUND);
}

fn app_without_metrics(b: serving::Backend) -> axum::Router {
    app(&Dashboard::new(b), "")
}
