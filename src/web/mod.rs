//! The read-only web dashboard, `/metrics` and `/healthz`: an axum server in the gateway's
//! process (`[dashboard] listen`), or alone (`helpdesk dashboard`) beside the same database.
//!
//! Pages are rendered on the server from handlebars templates (`templates/web/`), work
//! without JavaScript, refresh themselves every minute, and are sent with a Content
//! Security Policy that forbids every script: whatever a customer wrote is escaped, and
//! even a mistake there could not run in an agent's browser. A mail's HTML is never shown
//! as HTML, only the text the gateway kept of it.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, DashboardSettings};
use crate::store::Store;

mod auth;
mod chart;
mod health;
mod language;
mod pages;
mod query;
mod view;

pub use health::{Task, Tasks};
pub use pages::OverviewTimings;

/// Everything a request needs.
pub struct Dashboard {
    store: Arc<dyn Store>,
    config: Arc<Config>,
    settings: DashboardSettings,
    pages: view::Pages,
    tasks: Option<Tasks>,
    clock: Arc<dyn Clock>,
    stats: pages::StatsCache,
    /// Names this process's row in the health check's table.
    instance: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error(
        "dashboard.listen: cannot listen on {addr}: {source} (is another process on that port?)"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the dashboard's templates: {0}")]
    Templates(String),
    #[error("the dashboard stopped: {0}")]
    Serve(std::io::Error),
}

impl Dashboard {
    /// `tasks`: the gateway's workers whose liveness `/healthz` reports (none when the
    /// dashboard runs alone).
    pub fn new(
        config: Arc<Config>,
        settings: DashboardSettings,
        store: Arc<dyn Store>,
        tasks: Option<Tasks>,
    ) -> Result<Arc<Dashboard>, DashboardError> {
        Self::with_clock(config, settings, store, tasks, Arc::new(SystemClock))
    }

    pub fn with_clock(
        config: Arc<Config>,
        settings: DashboardSettings,
        store: Arc<dyn Store>,
        tasks: Option<Tasks>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Dashboard>, DashboardError> {
        Ok(Arc::new(Dashboard {
            store,
            config,
            settings,
            pages: view::Pages::new().map_err(DashboardError::Templates)?,
            tasks,
            clock,
            stats: Default::default(),
            instance: format!(
                "{}-{}",
                std::process::id(),
                hostname().unwrap_or_else(|| "host".into())
            ),
        }))
    }

    /// Binds the configured address: done before the gateway starts its work, so a port in
    /// use stops it with a clear error instead of a desk without its dashboard.
    pub async fn bind(&self) -> Result<tokio::net::TcpListener, DashboardError> {
        let addr = self.settings.listen;
        tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| DashboardError::Bind { addr, source })
    }

    /// Serves until `shutdown`.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), DashboardError> {
        let addr = listener.local_addr().ok();
        tracing::info!(address = ?addr, "dashboard listening");
        axum::serve(
            listener,
            router(self).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(DashboardError::Serve)
    }

    /// Renders the overview as a request would, with how long each part took (the bench).
    pub async fn overview_for_bench(self: &Arc<Self>) -> Result<(String, OverviewTimings), String> {
        pages::overview_html(self, crate::domain::Language::En)
            .await
            .map_err(|e| e.to_string())
    }
}

fn router(dashboard: Arc<Dashboard>) -> Router {
    let guarded = Router::new()
        .route("/", get(pages::overview))
        .route("/tickets", get(pages::tickets))
        .route("/tickets.csv", get(pages::tickets_csv))
        .route("/tickets/{code}", get(pages::ticket))
        .route("/metrics", get(health::metrics))
        .route("/healthz", get(health::healthz))
        .route_layer(middleware::from_fn_with_state(
            dashboard.clone(),
            auth::require_token,
        ));
    Router::new()
        .route("/login", get(auth::login_form).post(auth::login))
        .route("/style.css", get(style))
        .merge(guarded)
        .fallback(pages::not_found)
        .layer(middleware::map_response(security_headers))
        .with_state(dashboard)
}

/// No script, no frame, no referrer, no guessing of types: the page is what it says.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

async fn style() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../../templates/web/style.css"),
    )
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}
