//! One integration-test binary. `support` builds throw-away desks and starts the real
//! mail stack (Dovecot + Postfix on loopback); tests fail loudly when it cannot start.

mod agents_mail;
mod attacks;
mod cli;
mod corpus;
mod dashboard;
mod database;
mod desk;
mod dkim;
mod house;
mod imap_source;
mod kb;
mod kb_mail;
mod loops;
mod mail_stack;
mod mta_pipe;
mod oauth;
mod outbox;
mod personal_data;
mod pipeline;
mod quotes;
mod reading;
mod routing;
mod scale_out;
mod service_unit;
mod shared_store;
mod stats;
mod store_suite;
mod support;
mod time;
