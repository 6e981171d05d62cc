//! What keeps the server safe to expose: file paths in requests resolved
//! strictly inside `--data-dir` (nothing outside is ever opened), the bearer
//! token required on `/api` when one is configured, and the rule that a
//! non-loopback address needs a token at all.

use super::error::ApiError;
use crate::error::{Error, Result};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// The environment variable holding the API token.
pub const TOKEN_ENV: &str = "SKILL_FLEET_TOKEN";

/// The API token from the environment (an empty value counts as none).
pub fn token_from_env() -> Option<String> {
    std::env::var(TOKEN_ENV).ok().filter(|t| !t.is_empty())
}

/// Refuses to serve on a non-loopback address without a token: anyone who
/// can reach the port could otherwise start jobs and move aliases.
pub fn check_bind(host: IpAddr, token: Option<&str>) -> Result<()> {
    if host.is_loopback() || token.is_some() {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "refusing to listen on {host} without a token: anything but a loopback address needs \
         {TOKEN_ENV} set (clients then send `Authorization: Bearer <token>`); or use --host 127.0.0.1"
    )))
}

/// Decodes `%XX` escapes (so `%2e%2e%2f` is seen as `../`); `None` when an
/// escape is malformed or the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Resolves `requested`, the value of request field `field` (relative to
/// `data_dir`, which must be canonical)
/// to a file inside it. Absolute paths, `..`, percent-encoded forms of
/// either, and symlinks leading outside are refused before anything is
/// opened: the path is canonicalized (which resolves every link) and must
/// still lie under the data dir.
pub fn resolve_in_data_dir(
    data_dir: &Path,
    field: &str,
    requested: &str,
) -> Result<PathBuf, ApiError> {
    let refuse = |why: &str| {
        ApiError::bad_request(format!(
            "{field} `{requested}`: {why}; give a path relative to the server's data directory"
        ))
    };
    if requested.is_empty() || requested.contains('\0') {
        return Err(refuse("not a file name"));
    }
    // Checked as given and decoded, so an encoded `..` cannot slip through
    // a client or proxy that decodes it later.
    let decoded = percent_decode(requested).ok_or_else(|| refuse("malformed percent escape"))?;
    for form in [requested, decoded.as_str()] {
        let path = Path::new(form);
        if path.is_absolute() || form.starts_with('\\') {
            return Err(refuse("absolute paths are not allowed"));
        }
        if path
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
            || form.split(['/', '\\']).any(|part| part == "..")
        {
            return Err(refuse("`..` is not allowed"));
        }
    }
    let canonical = data_dir
        .join(requested)
        .canonicalize()
        .map_err(|_| refuse("no such file in the data directory"))?;
    if !canonical.starts_with(data_dir) {
        return Err(refuse("it leads outside the data directory"));
    }
    if !canonical.is_file() {
        return Err(refuse("not a regular file"));
    }
    Ok(canonical)
}

/// Compares without an early exit, so the time taken does not reveal how
/// much of a guessed token was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware on `/api`: with a token configured, a request without
/// `Authorization: Bearer <token>` is answered 401.
pub async fn require_token(
    State(token): State<Option<Arc<str>>>,
    req: Request,
    next: Next,
) -> Response {
    let Some(token) = token else {
        return next.run(req).await;
    };
    let given = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match given {
        Some(g) if constant_time_eq(g.trim().as_bytes(), token.as_bytes()) => next.run(req).await,
        _ => {
            let mut resp = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing or wrong bearer token: send `Authorization: Bearer <token>`",
            )
            .into_response();
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
            resp
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traversal_forms_are_refused_and_a_plain_file_resolves() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().canonicalize().unwrap();
        std::fs::write(data.join("ok.json"), "[]").unwrap();
        for bad in [
            "../x",
            "/etc/passwd",
            "%2e%2e%2fx",
            "a/../../x",
            "%2Fetc%2Fpasswd",
            "..",
            "%zz",
        ] {
            let e = resolve_in_data_dir(&data, "trainset_file", bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
        }
        assert_eq!(
            resolve_in_data_dir(&data, "trainset_file", "ok.json").unwrap(),
            data.join("ok.json")
        );
    }

    #[test]
    fn only_loopback_binds_without_a_token() {
        assert!(check_bind("127.0.0.1".parse().unwrap(), None).is_ok());
        assert!(check_bind("::1".parse().unwrap(), None).is_ok());
        assert!(check_bind("0.0.0.0".parse().unwrap(), None).is_err());
        assert!(check_bind("0.0.0.0".parse().unwrap(), Some("t")).is_ok());
    }
}
