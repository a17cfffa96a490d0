//! The only writer of plans, in two halves: [`prepare`] turns a plan into a [`ChangeSet`]
//! (it reads what the plan's mail needs and renders that mail), and [`write`] writes the
//! change set, in order, reading nothing.
//!
//! Mail is rendered with the ticket as it is at that point of the plan (after the
//! assignment that precedes a notification), so a template always shows the new state. A
//! template that fails to render (a broken custom file) costs that one mail, recorded as a
//! `mail_not_rendered` event; it never costs the customer's mail or jams the mailbox.

use sha2::{Digest, Sha256};

use super::events::{self as ev, Event};
use super::thread::Writer;
use super::*;

mod digest;
mod mail;
mod prepare;
mod report;
mod write;

use crate::config::{GatewaySettings, MailBudget};
use crate::domain::Priority;
use crate::inbound::InboundMail;
use crate::render::{Envelope, MailContext, OutgoingAttachment, Renderer, ThreadItem, capped_text};
use crate::roster::Roster;
use crate::store::SourceRef;
use crate::store::{
    Direction, Hold, Millis, NewAttachment, NewEvent, NewMessage, NewOutgoing, NewTicket,
    StoreError, StoreTx,
};
pub use digest::{Flood, queue_digest};
use prepare::*;
pub use prepare::{ChangeSet, prepare};
pub use report::{ReportMail, queue_report};
pub use write::write;
use write::*;

pub struct ApplyContext<'a> {
    pub renderer: &'a Renderer,
    pub gateway: &'a GatewaySettings,
    pub roster: &'a Roster,
    /// The desk's calendar: its time zone for the times people read, and whether it is
    /// round the clock (the acknowledgement says so).
    pub calendar: &'a crate::calendar::Calendar,
    pub budget: MailBudget,
    pub now: Millis,
    /// When queued mail may go: `now`, but for `tick --at … --apply`, which acts at a
    /// simulated time and still sends what it queued at once, never at that time.
    pub send_at: Millis,
    /// Called before each mail is rendered (see `pipeline::StageHook`).
    pub hook: crate::stage::StageHook,
}

const HOUR_MS: Millis = 3_600_000;

/// The mail a plan files, when it files one.
pub struct MailInput<'a> {
    pub source: &'a SourceRef,
    pub raw: &'a [u8],
    pub sha: &'a str,
    /// `None` for a mail that could not be parsed.
    pub parsed: Option<&'a InboundMail>,
}

/// What was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub ticket: Option<Written>,
    /// Outgoing mails queued.
    pub queued: usize,
}

/// How many fresh codes to try when a generated one is taken (35 random bits: a
/// collision is rare; eight in a row means something else is wrong).
const CODE_ATTEMPTS: usize = 8;

/// Applies a plan: [`prepare`] reads what it needs and renders its mail, then [`write`]
/// writes it. A freshly chosen code already taken (rare: 35 random bits) is chosen again,
/// and the plan prepared again with it, since its mail carries the code.
pub async fn apply(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    plan: &Plan,
    mail: Option<&MailInput<'_>>,
) -> Result<Applied, StoreError> {
    let mut attempt = 0;
    loop {
        let cs = prepare(tx, ctx, plan, mail).await?;
        match write(tx, ctx, cs, mail).await {
            Err(StoreError::CodeTaken(_)) if attempt + 1 < CODE_ATTEMPTS => attempt += 1,
            written => return written,
        }
    }
}
