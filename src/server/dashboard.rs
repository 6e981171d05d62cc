//! The web dashboard at `/`: static pages (HTML, CSS, JavaScript modules)
//! from `assets/dashboard/` and the vendored Chart.js, embedded in the binary
//! with `include_str!` so nothing is fetched from the network and nothing is
//! built at install time. The pages read and act only through the JSON API
//! (`/api/v1/...`), sending the bearer token the user types in when the
//! server asks for one; nothing here touches the database.
//!
//! These routes are not API operations, so they are outside the OpenAPI
//! document and outside the token check (the pages hold no data).

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// Only this origin's scripts, styles and API; no inline script, no
/// framing. Chart.js sets canvas sizes through the CSSOM, which a
/// `style-src 'self'` policy allows.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file: its name under `/dashboard/`, content type and text.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

macro_rules! asset {
    ($name:literal, $ct:expr) => {
        Asset {
            name: $name,
            content_type: $ct,
            body: include_str!(concat!("../../assets/dashboard/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file the dashboard serves besides Chart.js.
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("ui.js", JS),
    asset!("runs.js", JS),
    asset!("run.js", JS),
    asset!("programs.js", JS),
    asset!("ab.js", JS),
    asset!("start.js", JS),
];

/// Chart.js 4 (MIT), the same vendored file the HTML reports inline.
const CHART_JS: &str = include_str!("../../assets/vendor/chartjs/chart.umd.min.js");

/// The dashboard's routes: `/` and `/dashboard/{file}`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(index))
        .route("/dashboard/{file}", get(file))
}

fn respond(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            // A new binary may serve new pages: never use a stale copy.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

async fn index() -> Response {
    file(Path("index.html".to_string())).await
}

async fn file(Path(name): Path<String>) -> Response {
    if name == "chart.umd.min.js" {
        return respond(JS, CHART_JS);
    }
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => respond(a.content_type, a.body),
        None => super::error::ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no dashboard file `{name}`"),
        )
        .into_response(),
    }
}
