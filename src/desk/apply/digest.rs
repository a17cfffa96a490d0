//! The digest that replaces the mail held while one sender flooded the desk.

use super::*;

/// How many ticket codes a flood digest lists before "and N more".
pub(super) const DIGEST_CODES: usize = 50;

/// One outside sender's flood, as held for one of the desk's people.
pub struct Flood<'a> {
    pub to: &'a EmailAddress,
    pub from: &'a str,
    /// The held mails this digest replaces.
    pub held: Vec<crate::store::OutboxId>,
    /// Their tickets, oldest first, each once.
    pub codes: Vec<String>,
    /// How many mails the sender wrote in the hour the flood began.
    pub sent: u64,
}

/// Queues the digest that replaces a flood's held mail, and supersedes that mail. Not
/// budgeted: it goes to the desk's own people, once per flood.
pub async fn queue_digest(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    flood: Flood<'_>,
) -> Result<bool, StoreError> {
    let now = ctx.now;
    let language = ctx
        .roster
        .agent(flood.to)
        .map(|a| a.language(ctx.gateway.default_language))
        .unwrap_or(ctx.gateway.default_language);
    let count = flood.held.len() as u64;
    let context = MailContext {
        support_name: ctx.gateway.support_name.clone(),
        support_address: ctx.gateway.support_address.to_string(),
        recipient_name: ctx
            .roster
            .agent(flood.to)
            .map(|a| a.name.clone())
            .unwrap_or_default(),
        flood_from: flood.from.to_string(),
        flood_count: flood.sent.max(count),
        flood_held: count,
        flood_codes: flood.codes.iter().take(DIGEST_CODES).cloned().collect(),
        flood_more: flood.codes.len().saturating_sub(DIGEST_CODES) as u64,
        ..MailContext::default()
    };
    let env = Envelope {
        from: &ctx.gateway.support_address,
        from_name: &ctx.gateway.support_name,
        to: flood.to,
        to_name: ctx.roster.agent(flood.to).map(|a| a.name.as_str()),
        in_reply_to: None,
        references: &[],
        language,
        auto_submitted: Some(crate::render::AutoSubmitted::Generated),
        attachments: &[],
        inline: &[],
    };
    let mut events = Events::new(now);
    let detail = ev::MailDigested {
        to: flood.to.clone(),
        flood_from: flood.from.to_string(),
        held: count,
    };
    let rendered = match ctx.renderer.render(Template::FloodDigest, &context, &env) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(to = %flood.to, error = %e, "flood digest not rendered");
            events.push(
                None,
                None,
                &Actor::Gateway,
                Event::MailNotRendered(ev::MailNotRendered {
                    kind: Template::FloodDigest,
                    to: flood.to.clone(),
                    error: e.to_string(),
                }),
            );
            events.write(tx).await?;
            return Ok(false);
        }
    };
    let row = store_outgoing(
        tx,
        ctx,
        Outgoing {
            ticket: None,
            kind: Template::FloodDigest.name(),
            rendered: &rendered,
            from_name: &ctx.gateway.support_name,
            to: flood.to,
            in_reply_to: None,
            references: &[],
            language,
            hold: None,
        },
    )
    .await?;
    tx.supersede_mail(&flood.held).await?;
    events.push(
        None,
        Some(row),
        &Actor::Gateway,
        Event::MailDigested(detail),
    );
    events.write(tx).await?;
    tracing::warn!(to = %flood.to, flood_from = flood.from, held = count, "flood digest queued");
    Ok(true)
}
