//! The weekly report, sent by the scheduler once the desk's week has begun: last week's,
//! on the first working hour of the new one, once (the `reports` table, written with the
//! mail, says it went: a restart or a second gateway does not send it again).

use chrono::Duration;

use super::*;
use crate::desk::apply::{ReportMail, queue_report};
use crate::domain::EmailAddress;
use crate::stats::Period;
use crate::stats::report::{self, ReportError};

#[derive(Debug, thiserror::Error)]
pub enum ReportFailure {
    #[error(transparent)]
    Report(#[from] ReportError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Pipeline {
    /// Queues last week's report if the first working hour of this week has begun and it
    /// was not queued yet. How many mails it queued.
    pub async fn run_reports(&self) -> Result<usize, ReportFailure> {
        let desk = self.desk();
        if desk.reports.weekly_to.is_empty() {
            return Ok(0);
        }
        let now = self.now();
        let calendar = &desk.time.calendar;
        let today = crate::clock::instant(now)
            .with_timezone(&calendar.time_zone)
            .date_naive();
        let this_week = report::week_of(today, calendar.time_zone);
        let begins = desk.time.next_working(this_week.start_of(this_week.since));
        if now < begins {
            return Ok(0);
        }
        let last_week = report::week_of(this_week.since - Duration::days(1), calendar.time_zone);
        let name = last_week.week_of(last_week.start_of(last_week.since));
        if self.last_report().as_deref() == Some(name.as_str()) {
            return Ok(0);
        }
        let to = desk.reports.weekly_to.clone();
        let queued = self.queue_weekly_report(last_week, &to, true).await?;
        *self.reported.lock().unwrap_or_else(|e| e.into_inner()) = Some(name);
        Ok(queued)
    }

    fn last_report(&self) -> Option<String> {
        self.reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Queues the report of `week` to `to` (`once`: unless that week's went already) and
    /// wakes the outbox. How many mails it queued.
    pub async fn queue_weekly_report(
        &self,
        week: Period,
        to: &[EmailAddress],
        once: bool,
    ) -> Result<usize, ReportFailure> {
        let desk = self.desk();
        let language = desk
            .reports
            .language
            .unwrap_or(self.settings.default_language);
        let now = self.now();
        let cid = format!(
            "weekly-volume.{now}@{}",
            self.settings.support_address.domain()
        );
        let built = report::weekly(
            self.store.as_ref(),
            &desk.time.calendar,
            week,
            language,
            cid,
        )
        .await?;
        let renderer = self.renderer();
        let ctx = self.apply_context(&desk, &renderer, now);
        let mut tx = self.store.begin().await?;
        let queued = queue_report(
            tx.as_mut(),
            &ctx,
            ReportMail {
                period: &built.name,
                view: built.view,
                chart_png: built.chart_png,
                to,
                language,
            },
            once,
        )
        .await?;
        tx.commit().await?;
        if queued > 0 {
            self.outbox_wakeup.notify_one();
        }
        Ok(queued)
    }
}
