//! One mail in, one recorded outcome out: the life of a ticket starts here.
//!
//! `process` stores the raw bytes together with whatever the mail became (a new ticket,
//! a follow-up, a duplicate, ignored machine mail, or quarantine) and, for a new ticket,
//! the acknowledgement in the outbox: all in one transaction, with the source's
//! checkpoint. Either everything about a mail is committed or nothing is, so a crash
//! at any point means the mail is read again and filed exactly once.

use std::sync::Arc;

use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;

use crate::config::GatewaySettings;
use crate::domain::{Language, ReferenceCode, TicketStatus, Tier};
use crate::inbound::{self, InboundMail, MachineKind, ParseFailure, subject};
use crate::render::{AckContext, Envelope, RenderError, Renderer, Template};
use crate::store::{
    Checkpoint, Direction, MailContent, Millis, NewAttachment, NewEvent, NewMessage, NewOutgoing,
    NewTicket, ParticipantRole, Store, StoreError, StoreTx, StoredOutcome, TicketId, TicketRef,
    now_millis,
};

/// Where a mail came from, so a re-read of the same mail is recognised.
#[derive(Clone, Debug)]
pub struct SourceRef {
    /// Unique per source mail: `imap:<mailbox>:<uidvalidity>:<uid>`, `maildir:<name>`.
    pub key: Option<String>,
    /// Advanced in the same transaction as the mail's outcome.
    pub checkpoint: Option<(String, Checkpoint)>,
}

impl SourceRef {
    pub fn none() -> Self {
        Self {
            key: None,
            checkpoint: None,
        }
    }
}

/// What became of a mail. Expected outcomes are values, not errors.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Processed {
    Filed {
        ticket: TicketId,
        code: ReferenceCode,
    },
    Appended {
        ticket: TicketId,
        code: ReferenceCode,
        reopened: bool,
    },
    /// The same mail delivered again; carries what the first copy became, so a copy of a
    /// quarantined mail goes to quarantine too.
    Duplicate(StoredOutcome),
    Ignored(MachineKind),
    Quarantined(QuarantineReason),
    /// The source handed us a mail we had already committed (crash between commit and move).
    AlreadyProcessed(StoredOutcome),
}

impl Processed {
    pub fn label(&self) -> &'static str {
        match self {
            Processed::Filed { .. } => "new_ticket",
            Processed::Appended { .. } => "appended",
            Processed::Duplicate(_) => "duplicate",
            Processed::Ignored(_) => "ignored",
            Processed::Quarantined(_) => "quarantined",
            Processed::AlreadyProcessed(_) => "already_processed",
        }
    }

    pub fn is_quarantined(&self) -> bool {
        matches!(
            self,
            Processed::Quarantined(_)
                | Processed::AlreadyProcessed(StoredOutcome::Quarantined)
                | Processed::Duplicate(StoredOutcome::Quarantined)
        )
    }

    pub fn code(&self) -> Option<&ReferenceCode> {
        match self {
            Processed::Filed { code, .. } | Processed::Appended { code, .. } => Some(code),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QuarantineReason {
    Unparseable(ParseFailure),
    NoSender,
    /// The acknowledgement could not be built (e.g. a sender address lettre rejects).
    Unanswerable(String),
}

impl QuarantineReason {
    pub fn describe(&self) -> String {
        match self {
            QuarantineReason::Unparseable(f) => format!("unparseable: {f}"),
            QuarantineReason::NoSender => "no sender address".into(),
            QuarantineReason::Unanswerable(e) => format!("cannot answer: {e}"),
        }
    }
}

/// A mail as parsed before any database work.
struct Read {
    parsed: Result<InboundMail, ParseFailure>,
    sha: String,
}

/// How long a "Re: same subject" from the same customer may thread without a code or
/// threading headers.
const SUBJECT_THREADING_WINDOW_MS: Millis = 30 * 24 * 3600 * 1000;

/// Raw bytes to a mail: `inbound::parse`, or a stand-in in tests.
pub type Parser = fn(&[u8]) -> Result<InboundMail, ParseFailure>;

pub struct Pipeline {
    store: Arc<dyn Store>,
    renderer: Arc<Renderer>,
    settings: GatewaySettings,
    outbox_wakeup: Arc<Notify>,
    parser: Parser,
}

enum Thread {
    Ticket(TicketRef, &'static str),
    None,
}

impl Pipeline {
    pub fn new(
        store: Arc<dyn Store>,
        renderer: Arc<Renderer>,
        settings: GatewaySettings,
        outbox_wakeup: Arc<Notify>,
    ) -> Self {
        Self {
            store,
            renderer,
            settings,
            outbox_wakeup,
            parser: inbound::parse,
        }
    }

    /// The same pipeline reading mail with `parser` (tests give one that panics, to check
    /// that a parser crash costs one quarantined mail and nothing else).
    pub fn with_parser(mut self, parser: Parser) -> Self {
        self.parser = parser;
        self
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Files one mail. Errors are only store errors (the database is unreachable or
    /// broken); the mail then stays in its source and is read again later.
    pub async fn process(&self, source: &SourceRef, raw: &[u8]) -> Result<Processed, StoreError> {
        let read = self.read(raw);
        let mut tx = self.store.begin().await?;
        let outcome = self.process_in(&mut *tx, source, raw, &read, true).await?;
        tx.commit().await?;
        if matches!(outcome, Processed::Filed { .. }) {
            self.outbox_wakeup.notify_one();
        }
        Ok(outcome)
    }

    /// Files several mails in one transaction: the same outcomes as one `process` each,
    /// with one commit instead of many (what makes a backlog of thousands quick). If the
    /// batch fails, its mails are filed again one by one, in order, up to the first that
    /// still fails: the result ends with that error and has no entry for the mails after
    /// it, whose checkpoint must not be passed (they are read again on the next pass).
    pub async fn process_batch(
        &self,
        mails: &[(SourceRef, &[u8])],
    ) -> Vec<Result<Processed, StoreError>> {
        let reads: Vec<Read> = mails.iter().map(|(_, raw)| self.read(raw)).collect();
        let batch = async {
            let mut tx = self.store.begin().await?;
            let mut outcomes = Vec::with_capacity(mails.len());
            for ((source, raw), read) in mails.iter().zip(&reads) {
                outcomes.push(self.process_in(&mut *tx, source, raw, read, false).await?);
            }
            // One checkpoint write for the group; the store keeps the highest UID.
            if let Some((mailbox, checkpoint)) =
                mails.iter().rev().find_map(|(s, _)| s.checkpoint.as_ref())
            {
                tx.set_checkpoint(mailbox, *checkpoint, now_millis())
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, StoreError>(outcomes)
        };
        match batch.await {
            Ok(outcomes) => {
                if outcomes
                    .iter()
                    .any(|o| matches!(o, Processed::Filed { .. }))
                {
                    self.outbox_wakeup.notify_one();
                }
                outcomes.into_iter().map(Ok).collect()
            }
            Err(e) if mails.len() > 1 => {
                tracing::warn!(error = %e, "batch failed; filing its mails one by one");
                let mut out = Vec::with_capacity(mails.len());
                for (source, raw) in mails {
                    let result = self.process(source, raw).await;
                    let failed = result.is_err();
                    out.push(result);
                    if failed {
                        break;
                    }
                }
                out
            }
            Err(e) => vec![Err(e)],
        }
    }

    /// Parses and fingerprints a mail: pure work, done before the write transaction so
    /// SQLite's only write lock is not held while it runs. A parser bug on one hostile
    /// mail costs that mail (quarantined, raw kept), never the task that reads the mailbox.
    fn read(&self, raw: &[u8]) -> Read {
        let parser = self.parser;
        let parsed = std::panic::catch_unwind(|| parser(raw)).unwrap_or_else(|panic| {
            let what = crate::app::panic_message(panic.as_ref());
            tracing::error!(panic = %what, "the parser panicked on a mail; quarantining it");
            Err(ParseFailure::ParserPanicked)
        });
        Read {
            parsed,
            sha: hex::encode(Sha256::digest(raw)),
        }
    }

    async fn process_in(
        &self,
        tx: &mut dyn StoreTx,
        source: &SourceRef,
        raw: &[u8],
        read: &Read,
        write_checkpoint: bool,
    ) -> Result<Processed, StoreError> {
        if let Some(key) = &source.key
            && let Some(outcome) = tx.source_outcome(key).await?
        {
            return Ok(Processed::AlreadyProcessed(outcome));
        }
        let sha = &read.sha;
        let now = now_millis();
        let outcome = match &read.parsed {
            Err(failure) => match tx.message_by_sha(sha).await? {
                Some(first) => {
                    self.record_duplicate_raw(tx, source, raw, sha, now).await?;
                    Processed::Duplicate(first.outcome)
                }
                None => {
                    let reason = QuarantineReason::Unparseable(failure.clone());
                    self.record_quarantine(tx, source, raw, sha, None, &reason, now)
                        .await?;
                    Processed::Quarantined(reason)
                }
            },
            Ok(mail) => self.file(tx, source, raw, sha, mail, now).await?,
        };
        if write_checkpoint && let Some((mailbox, checkpoint)) = &source.checkpoint {
            tx.set_checkpoint(mailbox, *checkpoint, now).await?;
        }
        Ok(outcome)
    }

    async fn file(
        &self,
        tx: &mut dyn StoreTx,
        source: &SourceRef,
        raw: &[u8],
        sha: &str,
        mail: &InboundMail,
        now: Millis,
    ) -> Result<Processed, StoreError> {
        let own = [self.settings.support_address.as_str()];
        let machine = inbound::classify(mail, &own);

        let earlier = match &mail.message_id {
            Some(id) => {
                let content = MailContent {
                    sha256: &mail.content_sha256,
                    from: mail.from.as_ref().map(|f| f.address.as_str()),
                    subject: &mail.subject,
                    body_text: &mail.body_text,
                };
                tx.same_mail(id, &content).await?
            }
            None => tx.message_by_sha(sha).await?,
        };
        if let Some(first) = earlier {
            let detail = format!("duplicate of message {}", first.row);
            let record = self.message_record(
                mail,
                source,
                raw,
                sha,
                first.ticket,
                StoredOutcome::Duplicate,
                Some(&detail),
                machine,
                None,
                now,
            );
            tx.insert_message(record).await?;
            return Ok(Processed::Duplicate(first.outcome));
        }
        // Same Message-ID, other content: a different mail from a careless mailer. It is
        // filed on its own; the collision is recorded so nobody wonders later.
        let collision = match &mail.message_id {
            Some(id) => tx.message_id_in_use(id).await?,
            None => None,
        };

        let language = Language::choose(
            mail.content_language.as_deref(),
            &format!("{}\n{}", mail.subject, mail.reply_text),
            self.settings.default_language,
        );

        let outcome = self
            .file_new_mail(tx, source, raw, sha, mail, machine, language, now)
            .await?;
        if let (Some(earlier), Some(id)) = (collision, &mail.message_id) {
            tracing::warn!(message_id = %id, earlier, "a different mail reuses a Message-ID; filed on its own");
            tx.insert_event(NewEvent {
                ticket: match &outcome {
                    Processed::Filed { ticket, .. } | Processed::Appended { ticket, .. } => {
                        Some(*ticket)
                    }
                    _ => None,
                },
                message: None,
                kind: "message_id_collision",
                actor: "gateway",
                detail: json!({ "message_id": id, "earlier_message": earlier, "outcome": outcome.label() }),
                at: now,
            })
            .await?;
        }
        Ok(outcome)
    }

    /// A mail seen for the first time: threaded onto its ticket, ignored, quarantined, or
    /// a new ticket.
    #[allow(clippy::too_many_arguments)]
    async fn file_new_mail(
        &self,
        tx: &mut dyn StoreTx,
        source: &SourceRef,
        raw: &[u8],
        sha: &str,
        mail: &InboundMail,
        machine: Option<MachineKind>,
        language: Language,
        now: Millis,
    ) -> Result<Processed, StoreError> {
        match self.thread(tx, mail, machine).await? {
            Thread::Ticket(ticket, how) => {
                self.append(
                    tx, source, raw, sha, mail, machine, ticket, how, language, now,
                )
                .await
            }
            Thread::None => {
                if let Some(kind) = machine {
                    let record = self.message_record(
                        mail,
                        source,
                        raw,
                        sha,
                        None,
                        StoredOutcome::Ignored,
                        Some(kind.as_str()),
                        machine,
                        Some(language),
                        now,
                    );
                    tx.insert_message(record).await?;
                    return Ok(Processed::Ignored(kind));
                }
                if mail.from.is_none() {
                    let reason = QuarantineReason::NoSender;
                    self.record_quarantine(tx, source, raw, sha, Some(mail), &reason, now)
                        .await?;
                    return Ok(Processed::Quarantined(reason));
                }
                self.open_ticket(tx, source, raw, sha, mail, language, now)
                    .await
            }
        }
    }

    /// Reference code first, then threading headers, then — only for a mail that says it
    /// is a reply — the same customer's recent ticket with the same subject.
    async fn thread(
        &self,
        tx: &mut dyn StoreTx,
        mail: &InboundMail,
        machine: Option<MachineKind>,
    ) -> Result<Thread, StoreError> {
        if let Some(code) =
            ReferenceCode::find_in_subject(&self.settings.reference_prefix, &mail.subject)
            && let Some(t) = tx.ticket_by_code(&code).await?
        {
            return Ok(Thread::Ticket(t, "reference_code"));
        }
        let mut ids: Vec<String> = mail.in_reply_to.clone();
        for r in mail.references.iter().rev().take(50) {
            if !ids.contains(r) {
                ids.push(r.clone());
            }
        }
        if let Some(t) = tx.ticket_by_message_ids(&ids).await? {
            return Ok(Thread::Ticket(t, "references"));
        }
        // Machine mail never threads on subject alone: a list post titled "Re: VPN" must
        // not land on a customer's VPN ticket.
        if machine.is_none()
            && let Some(from) = &mail.from
        {
            let analysed = subject::analyse(&mail.subject);
            let looks_like_reply = analysed.is_reply || !mail.quoted_text.is_empty();
            if looks_like_reply && !analysed.base.is_empty() {
                let key = subject::thread_key(&mail.subject);
                let since = now_millis() - SUBJECT_THREADING_WINDOW_MS;
                if let Some(t) = tx.ticket_by_thread_key(&from.address, &key, since).await? {
                    return Ok(Thread::Ticket(t, "subject"));
                }
            }
        }
        Ok(Thread::None)
    }

    #[allow(clippy::too_many_arguments)]
    async fn append(
        &self,
        tx: &mut dyn StoreTx,
        source: &SourceRef,
        raw: &[u8],
        sha: &str,
        mail: &InboundMail,
        machine: Option<MachineKind>,
        ticket: TicketRef,
        how: &str,
        language: Language,
        now: Millis,
    ) -> Result<Processed, StoreError> {
        // A stranger quoting a valid code is kept on the ticket, marked, and sent nothing;
        // what to do with them is the agents' call.
        let participant = match &mail.from {
            Some(from) => tx.is_participant(ticket.id, &from.address).await?,
            None => false,
        };
        let mut record = self.message_record(
            mail,
            source,
            raw,
            sha,
            Some(ticket.id),
            StoredOutcome::Appended,
            machine.map(|m| m.as_str()),
            machine,
            Some(language),
            now,
        );
        record.from_non_participant = !participant;
        let message = tx.insert_message(record).await?;
        self.store_attachments(tx, message, mail).await?;
        let actor = mail
            .from
            .as_ref()
            .map(|f| f.address.to_string())
            .unwrap_or_else(|| "unknown".into());
        tx.insert_event(NewEvent {
            ticket: Some(ticket.id),
            message: Some(message),
            kind: "message_received",
            actor: &actor,
            detail: json!({
                "threaded_by": how,
                "machine": machine.map(|m| m.as_str()),
                "from_non_participant": !participant,
            }),
            at: now,
        })
        .await?;

        // Only a person's mail moves the ticket: an out-of-office must not reopen it.
        let mut reopened = false;
        if machine.is_none() {
            let next = ticket.status.on_customer_reply();
            reopened = ticket.status.reopens_on_reply();
            if next != ticket.status {
                tx.set_ticket_status(ticket.id, next, reopened, now).await?;
                tx.insert_event(NewEvent {
                    ticket: Some(ticket.id),
                    message: Some(message),
                    kind: if reopened {
                        "reopened"
                    } else {
                        "status_changed"
                    },
                    actor: &actor,
                    detail: json!({ "from": ticket.status.as_str(), "to": next.as_str() }),
                    at: now,
                })
                .await?;
            } else {
                tx.touch_ticket(ticket.id, now).await?;
            }
        }
        Ok(Processed::Appended {
            ticket: ticket.id,
            code: ticket.code,
            reopened,
        })
    }

    #[allow(clippy::too_many_arguments)]
    async fn open_ticket(
        &self,
        tx: &mut dyn StoreTx,
        source: &SourceRef,
        raw: &[u8],
        sha: &str,
        mail: &InboundMail,
        language: Language,
        now: Millis,
    ) -> Result<Processed, StoreError> {
        let Some(from) = &mail.from else {
            unreachable!("open_ticket is only called for mail with a sender")
        };
        let base_subject = subject::analyse(&mail.subject).base;
        let thread_key = subject::thread_key(&mail.subject);
        let tier = Tier::L1FrontLine;

        let reply_to = mail.reply_to.as_ref().unwrap_or(from);
        let mut attempt = 0;
        let (ticket_id, code, ack) = loop {
            let code = ReferenceCode::generate(&self.settings.reference_prefix);
            // Rendered before anything is written, so a mail we cannot answer is
            // quarantined whole rather than half-filed.
            let ack = match self.render_ack(mail, &code, &base_subject, reply_to, language) {
                Ok(ack) => ack,
                Err(e) => {
                    let reason = QuarantineReason::Unanswerable(e.to_string());
                    self.record_quarantine(tx, source, raw, sha, Some(mail), &reason, now)
                        .await?;
                    return Ok(Processed::Quarantined(reason));
                }
            };
            let new = NewTicket {
                code: &code,
                tier,
                customer: &from.address,
                customer_name: from.name.as_deref(),
                subject: if base_subject.is_empty() {
                    "(no subject)"
                } else {
                    &base_subject
                },
                thread_key: &thread_key,
                language,
                at: now,
            };
            match tx.insert_ticket(new).await {
                Ok(id) => break (id, code, ack),
                Err(StoreError::CodeTaken(_)) if attempt < 8 => attempt += 1,
                Err(e) => return Err(e),
            }
        };

        let record = self.message_record(
            mail,
            source,
            raw,
            sha,
            Some(ticket_id),
            StoredOutcome::NewTicket,
            None,
            None,
            Some(language),
            now,
        );
        let message = tx.insert_message(record).await?;
        self.store_attachments(tx, message, mail).await?;
        tx.add_participant(ticket_id, &from.address, ParticipantRole::Customer, now)
            .await?;
        if reply_to.address != from.address {
            tx.add_participant(ticket_id, &reply_to.address, ParticipantRole::Customer, now)
                .await?;
        }
        for cc in &mail.cc {
            if *cc != self.settings.support_address {
                tx.add_participant(ticket_id, cc, ParticipantRole::Cc, now)
                    .await?;
            }
        }
        tx.insert_event(NewEvent {
            ticket: Some(ticket_id),
            message: Some(message),
            kind: "created",
            actor: from.address.as_str(),
            detail: json!({ "tier": tier.as_str(), "status": TicketStatus::New.as_str(), "language": language.as_str() }),
            at: now,
        })
        .await?;

        let support = self.settings.support_address.to_string();
        let rcpt = [reply_to.address.to_string()];
        let ack_row = tx
            .insert_message(NewMessage {
                ticket: Some(ticket_id),
                direction: Direction::Outbound,
                outcome: StoredOutcome::Outgoing,
                outcome_detail: Some("acknowledgement"),
                source_key: None,
                message_id: Some(&ack.message_id),
                content_sha256: None,
                raw: &ack.raw,
                raw_sha256: &hex::encode(Sha256::digest(&ack.raw)),
                from_addr: Some(&support),
                from_name: Some(&self.settings.support_name),
                reply_to: None,
                to: rcpt.to_vec(),
                cc: Vec::new(),
                subject: &ack.subject,
                in_reply_to: &mail.message_id.iter().cloned().collect::<Vec<_>>(),
                references: &[],
                sent_date: Some(now),
                body_text: &ack.text,
                reply_text: &ack.text,
                quoted_text: "",
                language: Some(language),
                machine_kind: None,
                from_non_participant: false,
                at: now,
            })
            .await?;
        tx.enqueue(NewOutgoing {
            ticket: Some(ticket_id),
            message: ack_row,
            kind: "acknowledgement",
            mail_from: &support,
            rcpt_to: &rcpt,
            at: now,
        })
        .await?;
        tx.insert_event(NewEvent {
            ticket: Some(ticket_id),
            message: Some(ack_row),
            kind: "acknowledgement_queued",
            actor: "gateway",
            detail: json!({ "to": rcpt[0] }),
            at: now,
        })
        .await?;
        tracing::info!(code = %code, to = %rcpt[0], "ticket opened, acknowledgement queued");
        Ok(Processed::Filed {
            ticket: ticket_id,
            code,
        })
    }

    fn render_ack(
        &self,
        mail: &InboundMail,
        code: &ReferenceCode,
        base_subject: &str,
        to: &inbound::Mailbox,
        language: Language,
    ) -> Result<crate::render::Rendered, RenderError> {
        let ctx = AckContext {
            code: code.to_string(),
            tag: code.tag(),
            subject: crate::render::echoed_subject(if base_subject.is_empty() {
                &mail.subject
            } else {
                base_subject
            }),
            customer_name: to.name.clone().unwrap_or_default(),
            support_name: self.settings.support_name.clone(),
            support_address: self.settings.support_address.to_string(),
        };
        let env = Envelope {
            from: &self.settings.support_address,
            from_name: &self.settings.support_name,
            to: &to.address,
            to_name: to.name.as_deref(),
            in_reply_to: mail.message_id.as_deref(),
            references: &mail.references,
            language,
            auto_reply: true,
        };
        self.renderer.render(Template::Acknowledgement, &ctx, &env)
    }

    async fn store_attachments(
        &self,
        tx: &mut dyn StoreTx,
        message: i64,
        mail: &InboundMail,
    ) -> Result<(), StoreError> {
        for a in &mail.attachments {
            tx.insert_attachment(
                message,
                NewAttachment {
                    filename: a.filename.as_deref(),
                    content_type: &a.content_type,
                    content: &a.content,
                },
            )
            .await?;
        }
        Ok(())
    }

    async fn record_duplicate_raw(
        &self,
        tx: &mut dyn StoreTx,
        source: &SourceRef,
        raw: &[u8],
        sha: &str,
        now: Millis,
    ) -> Result<(), StoreError> {
        tx.insert_message(bare_record(
            source,
            raw,
            sha,
            StoredOutcome::Duplicate,
            Some("same bytes as an earlier mail"),
            now,
        ))
        .await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn record_quarantine(
        &self,
        tx: &mut dyn StoreTx,
        source: &SourceRef,
        raw: &[u8],
        sha: &str,
        mail: Option<&InboundMail>,
        reason: &QuarantineReason,
        now: Millis,
    ) -> Result<(), StoreError> {
        let detail = reason.describe();
        tracing::warn!(source = source.key.as_deref().unwrap_or("-"), reason = %detail, "mail quarantined");
        let record = match mail {
            Some(m) => self.message_record(
                m,
                source,
                raw,
                sha,
                None,
                StoredOutcome::Quarantined,
                Some(&detail),
                None,
                None,
                now,
            ),
            None => bare_record(
                source,
                raw,
                sha,
                StoredOutcome::Quarantined,
                Some(&detail),
                now,
            ),
        };
        let message = tx.insert_message(record).await?;
        tx.insert_event(NewEvent {
            ticket: None,
            message: Some(message),
            kind: "quarantined",
            actor: "gateway",
            detail: json!({ "reason": detail }),
            at: now,
        })
        .await?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn message_record<'a>(
        &self,
        mail: &'a InboundMail,
        source: &'a SourceRef,
        raw: &'a [u8],
        sha: &'a str,
        ticket: Option<TicketId>,
        outcome: StoredOutcome,
        detail: Option<&'a str>,
        machine: Option<MachineKind>,
        language: Option<Language>,
        now: Millis,
    ) -> NewMessage<'a> {
        NewMessage {
            ticket,
            direction: Direction::Inbound,
            outcome,
            outcome_detail: detail,
            source_key: source.key.as_deref(),
            message_id: mail.message_id.as_deref(),
            raw,
            raw_sha256: sha,
            from_addr: mail.from.as_ref().map(|f| f.address.as_str()),
            from_name: mail.from.as_ref().and_then(|f| f.name.as_deref()),
            reply_to: mail.reply_to.as_ref().map(|f| f.address.as_str()),
            to: mail.to.iter().map(|a| a.to_string()).collect(),
            cc: mail.cc.iter().map(|a| a.to_string()).collect(),
            subject: &mail.subject,
            in_reply_to: &mail.in_reply_to,
            references: &mail.references,
            sent_date: mail.date.map(|d| d * 1000),
            body_text: &mail.body_text,
            reply_text: &mail.reply_text,
            quoted_text: &mail.quoted_text,
            language,
            machine_kind: machine.map(|m| m.as_str()),
            from_non_participant: false,
            content_sha256: Some(&mail.content_sha256),
            at: now,
        }
    }
}

/// A stored mail we could not read: raw bytes and outcome only.
fn bare_record<'a>(
    source: &'a SourceRef,
    raw: &'a [u8],
    sha: &'a str,
    outcome: StoredOutcome,
    detail: Option<&'a str>,
    now: Millis,
) -> NewMessage<'a> {
    NewMessage {
        ticket: None,
        direction: Direction::Inbound,
        outcome,
        outcome_detail: detail,
        source_key: source.key.as_deref(),
        message_id: None,
        raw,
        raw_sha256: sha,
        from_addr: None,
        from_name: None,
        reply_to: None,
        to: Vec::new(),
        cc: Vec::new(),
        subject: "",
        in_reply_to: &[],
        references: &[],
        sent_date: None,
        body_text: "",
        reply_text: "",
        quoted_text: "",
        language: None,
        machine_kind: None,
        from_non_participant: false,
        content_sha256: None,
        at: now,
    }
}
