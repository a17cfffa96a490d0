//! Work done before the write lock: a plan decided and its change set prepared on a
//! snapshot, then written only if the write transaction finds the same plan and the same
//! store.

use super::*;

/// A plan and its change set, prepared on a snapshot before the write transaction.
pub(super) struct Early {
    pub(super) plan: Plan,
    pub(super) changes: ChangeSet,
    /// The time it was decided at, which the transaction decides at again.
    pub(super) now: Millis,
}

/// Writes the change set prepared before the transaction when the plan decided in it is
/// the same and what the change set read still holds; otherwise applies the plan afresh.
pub(super) async fn apply_prepared(
    tx: &mut dyn StoreTx,
    ctx: &ApplyContext<'_>,
    plan: &Plan,
    early: Option<Early>,
    mail: Option<&MailInput<'_>>,
) -> Result<Applied, StoreError> {
    let Some(early) = early else {
        return apply(tx, ctx, plan, mail).await;
    };
    if early.plan != *plan {
        tracing::debug!("prepared again under the lock: the plan is not the same");
    } else if !early.changes.still_holds(tx, ctx).await? {
        tracing::debug!("prepared again under the lock: what it read has changed");
    } else {
        match write(tx, ctx, early.changes, mail).await {
            Err(StoreError::CodeTaken(_)) => {}
            written => {
                tracing::debug!("written as prepared before the lock");
                return written;
            }
        }
    }
    apply(tx, ctx, plan, mail).await
}

impl Pipeline {
    /// Decides a mail and prepares its change set on a snapshot. `None` when there is
    /// nothing to prepare (a second delivery) or when anything goes wrong: the write
    /// transaction then meets the same trouble where it is handled (quarantine, retry).
    pub(super) async fn prepare_early(
        &self,
        source: &SourceRef,
        raw: &[u8],
        read: &Read,
        now: Millis,
    ) -> Option<Early> {
        let mut snapshot = self.store.snapshot().await.ok()?;
        let early = self
            .prepare_on(&mut *snapshot, source, raw, read, now)
            .await;
        snapshot.commit().await.ok()?;
        early
    }

    /// One mail decided and prepared on `snapshot`; `None` on any trouble (a panic too).
    async fn prepare_on(
        &self,
        snapshot: &mut dyn StoreTx,
        source: &SourceRef,
        raw: &[u8],
        read: &Read,
        now: Millis,
    ) -> Option<Early> {
        let mark = StageMark::default();
        let work = async {
            let Decided::Plan(plan) = self.decide_in(snapshot, source, read, now, &mark).await?
            else {
                return Ok(None);
            };
            let (desk, renderer) = (self.desk(), self.renderer());
            let changes = prepare(
                snapshot,
                &self.apply_context(&desk, &renderer, now),
                &plan,
                Some(&mail_input(source, raw, read)),
            )
            .await?;
            Ok::<_, Trouble>(Some(Early {
                plan: *plan,
                changes,
                now,
            }))
        };
        guarded(&mark, work).await.ok().flatten()
    }

    /// A group's mails decided and prepared on one snapshot, each as if it were alone:
    /// the write transaction finds out which of them the mails before them changed.
    pub(super) async fn prepare_group_early<T>(
        &self,
        mails: &[(T, SourceRef, Vec<u8>)],
        reads: &[Read],
    ) -> Vec<Option<Early>> {
        let mut out = Vec::with_capacity(mails.len());
        let Ok(mut snapshot) = self.store.snapshot().await else {
            return out;
        };
        for ((_, source, raw), read) in mails.iter().zip(reads) {
            let now = self.clock.now();
            let early = self
                .prepare_on(&mut *snapshot, source, raw, read, now)
                .await;
            out.push(early);
        }
        snapshot.commit().await.ok();
        out
    }
}
