//! What every request passes: the token, read-only mode, the cross-site
//! check, and the headers every answer carries (refusals included).

mod serving;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine as _;
use sayiir_diesel_dashboard::Dashboard;
use sayiir_diesel_dashboard::web::Token;
use serving::*;

const TOKEN: &str = "a-long-enough-secret-token";

fn assert_secure_headers(a: &Answer) {
    let csp = a.headers["content-security-policy"].to_str().unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{csp}");
    }
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(a.headers["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn read_only_refuses_every_request_but_get() {
    let (_db, b) = backend().await;
    let app = app(&Dashboard::new(b), "");
    let a = post_form(&app, "/act/cancel/w", "").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.contains("read-only"), "{}", a.body);
    assert_secure_headers(&a);
    for method in ["PUT", "DELETE", "PATCH"] {
        let a = send(
            &app,
            Request::builder()
                .method(method)
                .uri("/workflows")
                .body(Body::empty())
                .unwrap(),
        )
        .await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{method}");
    }
    let a = post_form(&app, "/bulk/cancel", "status=InProgress&confirm=1").await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = get(&app, "/assets/style.css").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_secure_headers(&a);
}

#[tokio::test]
async fn a_token_is_needed_on_every_request_as_bearer_or_basic_password() {
    let (_db, b) = backend().await;
    let d = Dashboard::new(b).token(Token::new(TOKEN).unwrap());
    let app = app(&d, "/ops");
    let with = |auth: Option<String>| {
        let mut r = Request::get("/ops/assets/style.css");
        if let Some(v) = auth {
            r = r.header("authorization", v);
        }
        r.body(Body::empty()).unwrap()
    };
    let basic = |user: &str, pass: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    };
    for refused in [
        None,
        Some(format!("Bearer {TOKEN}x")),
        Some("Bearer ".to_owned()),
        Some(basic("ops", "wrong")),
        Some(basic(TOKEN, "")),
        Some(format!("Token {TOKEN}")),
        Some("Basic !!!".to_owned()),
    ] {
        let a = send(&app, with(refused.clone())).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{refused:?}");
        let challenge = a.headers["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Basic realm="), "{challenge}");
        assert_secure_headers(&a);
    }
    for accepted in [
        format!("Bearer {TOKEN}"),
        format!("bearer {TOKEN}"),
        basic("anyone", TOKEN),
    ] {
        let a = send(&app, with(Some(accepted.clone()))).await;
        assert_eq!(a.status, StatusCode::OK, "{accepted}");
    }
    // GETs of pages and the API need it too, and a POST is checked for the
    // token before anything else.
    for uri in ["/ops", "/ops/api/status", "/ops/workflows", "/ops/metrics"] {
        assert_eq!(
            get(&app, uri).await.status,
            StatusCode::UNAUTHORIZED,
            "{uri}"
        );
    }
    assert_eq!(
        post_form(&app, "/ops/act/cancel/w", "").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn a_short_token_is_refused() {
    assert!(Token::new("short").is_err());
    assert!(Token::new("  exactly-16-chars\n").is_ok());
}

#[tokio::test]
async fn a_cross_site_post_is_refused_and_a_script_with_the_token_may_act() {
    let (_db, b) = backend().await;
    let d = Dashboard::new(b)
        .actions(true)
        .token(Token::new(TOKEN).unwrap());
    let app = app(&d, "");
    let post = |headers: &[(&str, &str)]| {
        let mut r = Request::post("/act/cancel/nobody")
            .header("content-type", "application/x-www-form-urlencoded")
            .header("host", "dash.example")
            .header("authorization", format!("Bearer {TOKEN}"));
        for (k, v) in headers {
            r = r.header(*k, *v);
        }
        r.body(Body::empty()).unwrap()
    };
    for cross in [
        vec![("sec-fetch-site", "cross-site")],
        vec![("sec-fetch-site", "same-site")],
        vec![("origin", "http://evil.example")],
        vec![("origin", "null")],
        vec![
            ("sec-fetch-site", "same-origin"),
            ("origin", "https://evil.example"),
        ],
    ] {
        let a = send(&app, post(&cross)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{cross:?}");
        assert!(a.body.contains("cross-site"), "{}", a.body);
    }
    // Same origin (a browser on the dashboard's own page), or no browser
    // headers at all (a script): the action runs; there is no such workflow.
    for fine in [
        vec![
            ("sec-fetch-site", "same-origin"),
            ("origin", "http://dash.example"),
        ],
        vec![],
    ] {
        let a = send(&app, post(&fine)).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{fine:?}: {}", a.body);
    }
}

#[tokio::test]
async fn a_prefix_must_be_a_plain_path() {
    let (_db, b) = backend().await;
    for bad in ["ops", "/ops/", "/o ps", "/<x>", "/a//b"] {
        assert!(Dashboard::new(b.clone()).prefix(bad).is_err(), "{bad}");
    }
    let app = app(
        &Dashboard::new(b).prefix("/ops/sayiir").unwrap(),
        "/ops/sayiir",
    );
    assert_eq!(
        get(&app, "/ops/sayiir/assets/app.js").await.status,
        StatusCode::OK
    );
    let missing = get(&app, "/ops/sayiir/nothing-here").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_secure_headers(&missing);
}
