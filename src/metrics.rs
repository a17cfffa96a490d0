//! The gateway's counters for Prometheus (`GET /metrics`): one registry per process, fed
//! where things happen (filing, sending, the IMAP source, the scheduler) and topped up at
//! each scrape with what only the database knows (open tickets, the outbox's backlog).
//!
//! Names follow Prometheus' conventions: `helpdesk_` first, counters end in `_total`, times
//! in seconds; labels take a handful of values each (never an address or a code), so a
//! scrape stays small however big the desk. Counters start at zero with the process, as
//! Prometheus expects (it handles the reset of a restart).

use std::sync::LazyLock;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// What the mail became: new_ticket, appended, duplicate, ignored, quarantined,
    /// already_processed.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The template's name: acknowledgement, agent_reply…
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabel {
    pub tier: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BreachLabels {
    pub tier: &'static str,
    /// first_response or resolution.
    pub target: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: &'static str,
}

/// Every metric the gateway exposes.
pub struct Metrics {
    registry: Registry,
    pub mails_received: Family<OutcomeLabel, Counter>,
    pub mails_sent: Family<KindLabel, Counter>,
    pub mail_send_failures: Counter,
    pub filing_duration: Histogram,
    pub sla_breaches: Family<BreachLabels, Counter>,
    pub imap_connected: Gauge,
    pub imap_idle: Gauge,
    pub tickets_open: Family<TierLabel, Gauge>,
    pub outbox_pending: Gauge,
    pub outbox_oldest_pending: Gauge<f64, AtomicU64>,
}

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::default();
        let mails_received = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "helpdesk_mails_received",
            "Mails read from the source, by what they became",
            mails_received.clone(),
        );
        let mails_sent = Family::<KindLabel, Counter>::default();
        registry.register(
            "helpdesk_mails_sent",
            "Mails the SMTP server (or the file transport) accepted, by kind",
            mails_sent.clone(),
        );
        let mail_send_failures = Counter::default();
        registry.register(
            "helpdesk_mail_send_failures",
            "Attempts to send a mail that failed (retried or given up)",
            mail_send_failures.clone(),
        );
        // 1 ms to ~33 s: a mail alone takes milliseconds, one in a busy batch longer.
        let filing_duration = Histogram::new(exponential_buckets(0.001, 2.0, 16));
        registry.register_with_unit(
            "helpdesk_filing_duration",
            "Time from reading a mail to its transaction's commit",
            Unit::Seconds,
            filing_duration.clone(),
        );
        let sla_breaches = Family::<BreachLabels, Counter>::default();
        registry.register(
            "helpdesk_sla_breaches",
            "Service-level targets missed, by the ticket's tier at the miss",
            sla_breaches.clone(),
        );
        let imap_connected = Gauge::default();
        registry.register(
            "helpdesk_imap_connected",
            "1 while the IMAP source holds a logged-in session",
            imap_connected.clone(),
        );
        let imap_idle = Gauge::default();
        registry.register(
            "helpdesk_imap_idle",
            "1 while the IMAP source waits in IDLE for new mail",
            imap_idle.clone(),
        );
        let tickets_open = Family::<TierLabel, Gauge>::default();
        registry.register(
            "helpdesk_tickets_open",
            "Tickets new, open or waiting on the customer, by tier (read at the scrape)",
            tickets_open.clone(),
        );
        let outbox_pending = Gauge::default();
        registry.register(
            "helpdesk_outbox_pending",
            "Mails waiting in the outbox to be sent (read at the scrape)",
            outbox_pending.clone(),
        );
        let outbox_oldest_pending = Gauge::<f64, AtomicU64>::default();
        registry.register_with_unit(
            "helpdesk_outbox_oldest_pending",
            "Age of the oldest mail waiting in the outbox, 0 when none (read at the scrape)",
            Unit::Seconds,
            outbox_oldest_pending.clone(),
        );
        registry.register(
            "helpdesk_build",
            "The gateway's version",
            Info::new(BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
            }),
        );
        Metrics {
            registry,
            mails_received,
            mails_sent,
            mail_send_failures,
            filing_duration,
            sla_breaches,
            imap_connected,
            imap_idle,
            tickets_open,
            outbox_pending,
            outbox_oldest_pending,
        }
    }

    /// The whole registry in the OpenMetrics text format (which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// This process's metrics. One per process, like the process itself: every part of the
/// gateway adds to the same counters.
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// The content type of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_conventions() {
        let m = metrics();
        m.mails_received
            .get_or_create(&OutcomeLabel {
                outcome: "new_ticket",
            })
            .inc();
        m.filing_duration.observe(0.004);
        let text = m.encode();
        for name in [
            "helpdesk_mails_received_total{outcome=\"new_ticket\"}",
            "helpdesk_filing_duration_seconds_bucket{le=\"0.004\"}",
            "helpdesk_build_info{version=",
            "helpdesk_outbox_oldest_pending_seconds ",
        ] {
            assert!(text.contains(name), "{name} not in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
