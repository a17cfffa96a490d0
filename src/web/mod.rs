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

/// How long a client has to send a request's headers (after connecting, or between
/// requests on a kept-alive connection).
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Connections served at once; past it, new ones are closed at once.
const MAX_CONNECTIONS: usize = 256;

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

    /// Serves until `shutdown`, then lets the requests in hand finish (five seconds at most).
    ///
    /// Connections are served by hyper with a header-read timeout and a cap on how many are
    /// open at once: a client that opens connections and never finishes a request (slowloris)
    /// is cut off, and cannot hold more than the cap. axum's own `serve` sets neither.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: CancellationToken,
    ) -> Result<(), DashboardError> {
        let addr = listener.local_addr().ok();
        tracing::info!(address = ?addr, "dashboard listening");
        let router = router(self);
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut refused_since_log = 0u64;
        loop {
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors, a connection reset before accept: wait a
                        // little and go on.
                        tracing::warn!(error = %e, "dashboard: cannot accept a connection");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                refused_since_log += 1;
                if refused_since_log == 1 || refused_since_log.is_multiple_of(1000) {
                    tracing::warn!(
                        peer = %peer,
                        open = MAX_CONNECTIONS,
                        refused = refused_since_log,
                        "dashboard: too many connections open; closing new ones"
                    );
                }
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let service = hyper_util::service::TowerToHyperService::new(
                router
                    .clone()
                    .layer(axum::Extension(axum::extract::ConnectInfo(peer))),
            );
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                let _slot = slot;
                if let Err(e) = connection.await {
                    tracing::debug!(peer = %peer, error = %e, "dashboard connection ended");
                }
            });
        }
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {
                tracing::warn!("dashboard: requests still open at shutdown were cut");
            }
        }
        Ok(())
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
