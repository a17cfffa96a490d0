//! Reading one inbound mail, without I/O: parse it, tell people from machines, separate
//! the new text from the quoted history, and normalise its subject for threading.

pub mod authentication;
pub mod classify;
pub mod parse;
pub mod quote_strip;
pub mod subject;

pub use classify::{MachineKind, classify};
pub use parse::{Attachment, BodyEncoding, InboundMail, Mailbox, ParseFailure, RawBody, parse};
