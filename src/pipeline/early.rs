//! Work done before the write lock: a plan decided and its change set prepared on a
//! snapshot, then written only if the write transaction finds the same plan and the same
//! store.

use super::*;

/// A plan and its change set, prepared on a snapshot before the write transaction.
pub(super) struct Early {
    pub(super) plan: Plan,
    pub(super) changes: ChangeSet,
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
        let mark = StageMark::default();
        let work = async {
            let mut snapshot = self.store.snapshot().await?;
            let Decided::Plan(plan) = self
                .decide_in(&mut *snapshot, source, read, now, &mark)
                .await?
            else {
                return Ok(None);
            };
            let changes = prepare(
                &mut *snapshot,
                &self.apply_context(&self.desk(), &self.renderer(), now),
                &plan,
                Some(&mail_input(source, raw, read)),
            )
            .await?;
            snapshot.commit().await?;
            Ok::<_, Trouble>(Some(Early {
                plan: *plan,
                changes,
            }))
        };
        match guarded(&mark, work).await {
            Ok(early) => early,
            Err(trouble) => {
                let why = match trouble {
                    Trouble::Store(e) => e.to_string(),
                    Trouble::Failed(stage, error) => format!("{}: {error}", stage.doing()),
                };
                tracing::debug!(why, "not prepared before the lock");
                None
            }
        }
    }
}
