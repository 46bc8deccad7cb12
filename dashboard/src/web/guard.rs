//! What every request passes before a handler runs, and what every response
//! carries: the token, read-only mode, the cross-site check for actions,
//! and the security headers.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::{self, HeaderMap, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine as _;
use subtle::ConstantTimeEq as _;

use super::Inner;
use super::reply;

/// The policy every response carries: no inline script or style, nothing
/// from another origin, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     base-uri 'none'; frame-ancestors 'none'";

/// The shared secret every request must carry when one is set.
#[derive(Clone)]
pub struct Token(Vec<u8>);

impl Token {
    /// A token from its text, surrounding whitespace (a file's trailing
    /// newline) removed.
    ///
    /// # Errors
    /// [`crate::Error::Input`] when it is shorter than 16 characters.
    pub fn new(text: &str) -> Result<Self, crate::Error> {
        let text = text.trim();
        if text.chars().count() < 16 {
            return Err(crate::Error::Input(
                "the dashboard token must be at least 16 characters".to_owned(),
            ));
        }
        Ok(Self(text.as_bytes().to_vec()))
    }

    /// Whether `given` is the token, compared in constant time.
    fn matches(&self, given: &[u8]) -> bool {
        self.0.ct_eq(given).into()
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(…)")
    }
}

/// The middleware: checks, then the handler, then the headers.
pub async fn guard(State(state): State<Arc<Inner>>, request: Request, next: Next) -> Response {
    let mut response = match refusal(&state, &request) {
        Some(refused) => refused,
        None => next.run(request).await,
    };
    secure(response.headers_mut());
    response
}

/// Why `request` may not reach its handler, as the response to send.
fn refusal(state: &Inner, request: &Request) -> Option<Response> {
    let headers = request.headers();
    if let Some(token) = &state.token
        && !authorized(token, headers)
    {
        return Some(unauthorized());
    }
    let method = request.method();
    if method == Method::GET || method == Method::HEAD {
        return None;
    }
    if !state.actions {
        return Some(reply::refused(
            StatusCode::FORBIDDEN,
            "read-only: this dashboard was started without --actions",
        ));
    }
    if method != Method::POST {
        return Some(reply::refused(
            StatusCode::METHOD_NOT_ALLOWED,
            "actions are POST requests",
        ));
    }
    cross_site(headers).map(|why| reply::refused(StatusCode::FORBIDDEN, why))
}

/// Whether the request carries the token: `Authorization: Bearer <token>`,
/// or basic auth whose password is the token.
fn authorized(token: &Token, headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return token.matches(rest.as_bytes());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(rest) else {
            return false;
        };
        let password = decoded
            .iter()
            .position(|b| *b == b':')
            .and_then(|colon| decoded.get(colon + 1..))
            .unwrap_or_default();
        return token.matches(password);
    }
    false
}

fn unauthorized() -> Response {
    let mut response = reply::refused(
        StatusCode::UNAUTHORIZED,
        "this dashboard needs its token (bearer, or as the basic-auth password)",
    );
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"sayiir-diesel dashboard\", charset=\"UTF-8\""),
    );
    response
}

/// Why a POST looks cross-site, from what browsers send on their own: a
/// `Sec-Fetch-Site` other than `same-origin` (or `none`, typed by the
/// user), or an `Origin` whose host is not the one the request was sent to.
/// A script that sends neither (curl with the token) is let through.
fn cross_site(headers: &HeaderMap) -> Option<&'static str> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = text("sec-fetch-site")
        && site != "same-origin"
        && site != "none"
    {
        return Some("cross-site request refused (Sec-Fetch-Site)");
    }
    let origin = text("origin")?;
    let host = text("x-forwarded-host").or_else(|| text("host"));
    let origin_host = origin
        .split_once("://")
        .map(|(_, rest)| rest.trim_end_matches('/'));
    match (origin_host, host) {
        (Some(o), Some(h)) if o.eq_ignore_ascii_case(h) => None,
        _ => Some("cross-site request refused (Origin)"),
    }
}

/// Headers on every response, refusals included.
fn secure(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
}
