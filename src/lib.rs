//! Email helpdesk gateway: a support mailbox in, a ticket desk out.
//!
//! ```text
//! ingest (IMAP | Maildir | stdin) ──raw bytes──► pipeline ──one transaction──► store
//!    parse → classify (person or machine) → thread (code, References, subject)
//!    → new ticket + acknowledgement in the outbox | follow-up | duplicate | ignored | quarantine
//! outbox worker ──claims due mail──► transport (SMTP | .eml files) ──► marked sent
//! ```
//!
//! `domain` and `inbound` are pure (no I/O); `ingest` and `outbox` are the only modules
//! that speak IMAP or SMTP; `store` is the only one that speaks SQL.

pub mod app;
pub mod calendar;
pub mod cli;
pub mod clock;
pub mod config;
pub mod desk;
pub mod dkim;
pub mod domain;
pub mod inbound;
pub mod ingest;
pub mod kb;
pub mod lease;
pub mod metrics;
pub mod oauth;
pub mod outbox;
pub mod pipeline;
pub mod render;
pub mod roster;
pub mod routing;
pub mod stage;
pub mod stats;
pub mod store;
pub mod timing;
pub mod tls;
pub mod web;
