//! What the store says about a mail before it is decided: filed already, a second
//! delivery, which ticket it threads onto, whether its sender is on that ticket, how busy
//! the agents are. Read the same way on a snapshot and in the write transaction.

use super::*;

pub(super) enum Decided {
    AlreadyProcessed(StoredOutcome),
    Plan(Box<Plan>),
}

impl Pipeline {
    /// What the store says of a mail before it is applied: filed already from this source,
    /// or the plan for it.
    pub(super) async fn decide_in(
        &self,
        tx: &mut dyn StoreTx,
        source: &SourceRef,
        read: &Read,
        now: Millis,
        mark: &StageMark,
    ) -> Result<Decided, Trouble> {
        mark.set(Stage::Classify);
        if let Some(key) = &source.key
            && let Some(outcome) = tx.source_outcome(key).await?
        {
            return Ok(Decided::AlreadyProcessed(outcome));
        }
        Ok(Decided::Plan(Box::new(match &read.parsed {
            Err(Unread::Parse(failure)) => {
                let earlier = tx.message_by_sha(&read.sha).await?;
                decide::decide_unreadable(failure, earlier)
            }
            Err(Unread::Failed(stage, error)) => {
                return Err(Trouble::Failed(*stage, error.clone()));
            }
            Ok((mail, reading)) => {
                self.situate_and_decide(tx, mail, reading, read, now, mark)
                    .await?
            }
        })))
    }

    /// The roster's loads, read only when there is a roster.
    pub(super) async fn loads(
        &self,
        tx: &mut dyn StoreTx,
    ) -> Result<HashMap<crate::domain::EmailAddress, crate::roster::Load>, StoreError> {
        if self.desk().roster.agents().is_empty() {
            return Ok(HashMap::new());
        }
        tx.agent_loads(&self.desk().roster.addresses()).await
    }

    /// Gathers what `decide_mail` needs from the store: is it a second delivery, which
    /// ticket does it thread onto, is the sender on that ticket, how busy are the agents.
    pub(super) async fn situate_and_decide(
        &self,
        tx: &mut dyn StoreTx,
        mail: &InboundMail,
        reading: &MailReading,
        read: &Read,
        now: Millis,
        mark: &StageMark,
    ) -> Result<Plan, StoreError> {
        let (agent_dkim, sha) = (read.dkim.clone(), read.sha.as_str());
        let own = [self.settings.support_address.as_str()];
        (self.hook)(Stage::Classify, &mail.subject);
        let machine = inbound::classify(mail, &own);
        let (earlier, in_use) = match &mail.message_id {
            Some(id) => {
                let content = MailContent {
                    sha256: &mail.content_sha256,
                    from: mail.from.as_ref().map(|f| f.address.as_str()),
                    subject: &mail.subject,
                    body_text: &mail.body_text,
                };
                let seen = tx.message_id_seen(id, &content).await?;
                (seen.same, seen.in_use)
            }
            None => (tx.message_by_sha(sha).await?, None),
        };
        let (thread, collision, participant) = if earlier.is_some() {
            (None, None, false)
        } else {
            let collision = in_use;
            let thread = self.thread(tx, mail, machine, now).await?;
            let participant = match (&thread, &mail.from) {
                (Some((t, _)), Some(from)) => tx.is_participant(t.id, &from.address).await?,
                _ => false,
            };
            (thread, collision, participant)
        };
        // Loads are read only when someone may be assigned, and only with a roster.
        let from_agent_on_ticket = thread.is_some()
            && mail
                .from
                .as_ref()
                .is_some_and(|f| self.desk().roster.agent(&f.address).is_some());
        // An agent's commands may assign or escalate; a new ticket or a reopening may too.
        let may_assign = earlier.is_none()
            && machine.is_none()
            && (thread.is_none()
                || from_agent_on_ticket
                || thread.as_ref().is_some_and(|(t, _)| !t.status.is_open()));
        let loads = if may_assign {
            self.loads(tx).await?
        } else {
            HashMap::new()
        };
        let deliverable = match decide::answer_address(mail) {
            Some(to) => crate::render::deliverable(&to.address),
            None => Ok(()),
        };
        let from_agent = machine.is_none()
            && mail
                .from
                .as_ref()
                .is_some_and(|f| self.desk().roster.agent(&f.address).is_some());
        let participants = match (&thread, from_agent) {
            (Some((t, _)), true) => tx.participants(t.id).await?,
            _ => Vec::new(),
        };
        let situation = MailSituation {
            mail,
            reading: reading.clone(),
            machine,
            earlier,
            thread: thread.as_ref().map(|(t, how)| (t, *how)),
            sender_is_participant: participant,
            participants,
            agent_dkim,
            collision,
            gateway: &self.settings,
            desk: &self.desk(),
            loads: &loads,
            deliverable,
            now,
        };
        mark.set(Stage::Decide);
        (self.hook)(Stage::Decide, &mail.subject);
        Ok(decide_mail(&situation))
    }

    /// Reference code first, then threading headers, then — only for a mail that says it
    /// is a reply — the same customer's recent ticket with the same subject.
    pub(super) async fn thread(
        &self,
        tx: &mut dyn StoreTx,
        mail: &InboundMail,
        machine: Option<MachineKind>,
        now: Millis,
    ) -> Result<Option<(TicketRef, ThreadedBy)>, StoreError> {
        if let Some(code) =
            ReferenceCode::find_in_subject(&self.settings.reference_prefix, &mail.subject)
            && let Some(t) = tx.ticket_by_code(&code).await?
        {
            return Ok(Some((t, ThreadedBy::ReferenceCode)));
        }
        let mut ids: Vec<String> = mail.in_reply_to.clone();
        for r in mail.references.iter().rev().take(50) {
            if !ids.contains(r) {
                ids.push(r.clone());
            }
        }
        if let Some(t) = tx.ticket_by_message_ids(&ids).await? {
            return Ok(Some((t, ThreadedBy::References)));
        }
        // A vendor who dropped our code and our headers still quotes their own number.
        if let Some(from) = &mail.from
            && let Some(vendor) = self.desk().time.vendor_by_address(&from.address)
            && let Some(number) = decide::vendor_ticket_number(vendor, mail)
            && let Some(t) = tx.ticket_by_vendor_ticket(&vendor.name, &number).await?
        {
            return Ok(Some((t, ThreadedBy::VendorTicket)));
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
                let since = now - SUBJECT_THREADING_WINDOW_MS;
                if let Some(t) = tx.ticket_by_thread_key(&from.address, &key, since).await? {
                    return Ok(Some((t, ThreadedBy::Subject)));
                }
            }
        }
        Ok(None)
    }
}
