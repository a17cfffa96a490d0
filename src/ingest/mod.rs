//! Getting mail in without losing it: an IMAP mailbox, a Maildir folder, or files and
//! stdin (`helpdesk ingest`). Every source hands raw bytes to the pipeline and removes
//! a mail from its inbox only after the pipeline committed its outcome.

pub mod imap;
pub mod maildir;
