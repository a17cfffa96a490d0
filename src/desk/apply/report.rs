//! The weekly report: one mail per recipient, queued once per week.

use super::*;
use crate::render::{InlineImage, ReportView};

/// A report ready to go: its figures in words, its chart, and to whom.
pub struct ReportMail<'a> {
    /// What the report is of, as `reports.period` keeps it (`2026-W48`).
    pub period: &'a str,
    pub view: ReportView,
    pub chart_png: Vec<u8>,
    pub to: &'a [EmailAddress],
    pub language: Language,
}

/// Queues `report` unless it already was (`once`: through the `reports` table, in this
/// transaction). Returns how many mails were queued: 0 when it was sent before.
pub async fn queue_report(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    report: ReportMail<'_>,
    once: bool,
) -> Result<usize, StoreError> {
    if once && !tx.claim_report("weekly", report.period, ctx.now).await? {
        return Ok(0);
    }
    let inline = [InlineImage {
        content_id: report.view.chart_cid.clone(),
        content_type: "image/png".into(),
        content: report.chart_png,
    }];
    let mut queued = 0;
    for to in report.to {
        let context = MailContext {
            support_name: ctx.gateway.support_name.clone(),
            support_address: ctx.gateway.support_address.to_string(),
            recipient_name: ctx
                .roster
                .agent(to)
                .map(|a| a.name.clone())
                .unwrap_or_default(),
            report: Some(report.view.clone()),
            ..MailContext::default()
        };
        let env = Envelope {
            from: &ctx.gateway.support_address,
            from_name: &ctx.gateway.support_name,
            to,
            to_name: ctx.roster.agent(to).map(|a| a.name.as_str()),
            in_reply_to: None,
            references: &[],
            language: report.language,
            auto_submitted: Some(crate::render::AutoSubmitted::Generated),
            attachments: &[],
            inline: &inline,
        };
        let rendered = match ctx.renderer.render(Template::WeeklyReport, &context, &env) {
            Ok(r) => r,
            Err(e) => {
                let mut events = Events::new(ctx.now);
                events.push(
                    None,
                    None,
                    &Actor::Gateway,
                    Event::MailNotRendered(ev::MailNotRendered {
                        kind: Template::WeeklyReport,
                        to: to.clone(),
                        error: e.to_string(),
                    }),
                );
                events.write(tx).await?;
                tracing::error!(%to, error = %e, "weekly report not rendered");
                continue;
            }
        };
        store_outgoing(
            tx,
            ctx,
            Outgoing {
                ticket: None,
                kind: Template::WeeklyReport.name(),
                rendered: &rendered,
                from_name: &ctx.gateway.support_name,
                to,
                in_reply_to: None,
                references: &[],
                language: report.language,
                hold: None,
            },
        )
        .await?;
        queued += 1;
    }
    tracing::info!(period = report.period, queued, "weekly report queued");
    Ok(queued)
}
