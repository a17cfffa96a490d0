//! `/healthz` for a supervisor and `/metrics` for Prometheus.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Dashboard;
use crate::domain::Tier;

/// The gateway's long-lived workers, as `/healthz` reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    Source,
    Outbox,
    Scheduler,
}

impl Task {
    const ALL: [Task; 3] = [Task::Source, Task::Outbox, Task::Scheduler];

    fn name(self) -> &'static str {
        match self {
            Task::Source => "source",
            Task::Outbox => "outbox",
            Task::Scheduler => "scheduler",
        }
    }
}

/// Which workers are running: each holds a [`Running`] guard for as long as it lives, so
/// a worker that returns or panics is seen at once.
#[derive(Clone, Debug, Default)]
pub struct Tasks(Arc<[AtomicBool; 3]>);

impl Tasks {
    pub fn running(&self, task: Task) -> Running {
        self.0[task as usize].store(true, Ordering::SeqCst);
        Running {
            tasks: self.clone(),
            task,
        }
    }

    fn alive(&self, task: Task) -> bool {
        self.0[task as usize].load(Ordering::SeqCst)
    }
}

/// Marks its task stopped when dropped (its future ended, or was dropped by a panic).
pub struct Running {
    tasks: Tasks,
    task: Task,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.tasks.0[self.task as usize].store(false, Ordering::SeqCst);
    }
}

/// The longest the health check waits for the database's write.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn healthz(State(d): State<Arc<Dashboard>>) -> Response {
    let mut problems = Vec::new();
    let mut tasks = serde_json::Map::new();
    match &d.tasks {
        Some(t) => {
            for task in Task::ALL {
                let alive = t.alive(task);
                tasks.insert(
                    task.name().into(),
                    (if alive { "running" } else { "stopped" }).into(),
                );
                if !alive {
                    problems.push(format!("the {} task stopped", task.name()));
                }
            }
        }
        None => {
            for task in Task::ALL {
                tasks.insert(task.name().into(), "not run by this process".into());
            }
        }
    }
    let database = match tokio::time::timeout(
        PROBE_TIMEOUT,
        d.store.probe_write(&d.instance, d.clock.now()),
    )
    .await
    {
        Ok(Ok(())) => "writable".to_string(),
        Ok(Err(e)) => {
            problems.push(format!("the database refuses a write: {e}"));
            "not writable".into()
        }
        Err(_) => {
            problems.push(format!(
                "the database did not take a write within {}s",
                PROBE_TIMEOUT.as_secs()
            ));
            "not writable".into()
        }
    };
    let ok = problems.is_empty();
    if !ok {
        tracing::warn!(problems = ?problems, "health check failed");
    }
    let body = serde_json::json!({
        "status": if ok { "ok" } else { "unavailable" },
        "database": database,
        "tasks": tasks,
        "problems": problems,
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        format!("{body}\n"),
    )
        .into_response()
}

pub(super) async fn metrics(State(d): State<Arc<Dashboard>>) -> Response {
    let m = crate::metrics::metrics();
    match tokio::time::timeout(PROBE_TIMEOUT, d.store.desk_gauges()).await {
        Ok(Ok(g)) => {
            for tier in Tier::ALL {
                let open = g
                    .open_by_tier
                    .iter()
                    .find(|(t, _)| *t == tier)
                    .map_or(0, |(_, n)| *n);
                m.tickets_open
                    .get_or_create(&crate::metrics::TierLabel {
                        tier: tier.as_str(),
                    })
                    .set(open);
            }
            m.outbox_pending.set(g.outbox_pending);
            let oldest = g
                .outbox_oldest
                .map_or(0.0, |at| ((d.clock.now() - at).max(0) as f64) / 1000.0);
            m.outbox_oldest_pending.set(oldest);
        }
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "metrics: cannot read the desk's gauges; serving the last values")
        }
        Err(_) => tracing::warn!("metrics: the database did not answer; serving the last values"),
    }
    (
        [
            (header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        m.encode(),
    )
        .into_response()
}
