//! Commands given outside mail (the CLI, tests): the same decide/apply path as mail.

use super::*;

impl Pipeline {
    /// Runs a command on the ticket `code` through the same decide/apply path as mail, in
    /// one transaction, and wakes the outbox for the mail it queued. Like a mail, it is
    /// decided and rendered first on a snapshot, outside the write lock.
    pub async fn execute(
        &self,
        code: &ReferenceCode,
        command: &Command,
        actor: Actor,
    ) -> Result<Applied, CommandError> {
        let now = self.clock.now();
        let early = self.command_early(code, command, &actor, now).await;
        let mut tx = self.store.begin().await?;
        let plan = self
            .command_plan(&mut *tx, code, command, actor, now)
            .await?;
        let (desk, renderer) = (self.desk(), self.renderer());
        let ctx = self.apply_context(&desk, &renderer, now);
        let applied = apply_prepared(&mut *tx, &ctx, &plan, early, None).await?;
        tx.commit().await?;
        if applied.queued > 0 {
            self.outbox_wakeup.notify_one();
        }
        Ok(applied)
    }

    async fn command_plan(
        &self,
        tx: &mut dyn StoreTx,
        code: &ReferenceCode,
        command: &Command,
        actor: Actor,
        now: Millis,
    ) -> Result<Plan, CommandError> {
        let ticket = tx
            .ticket_by_code(code)
            .await?
            .ok_or_else(|| CommandError::NoTicket(code.clone()))?;
        let loads = self.loads(tx).await?;
        Ok(decide_command(&CommandSituation {
            ticket: &ticket,
            command,
            actor,
            gateway: &self.settings,
            desk: &self.desk(),
            loads: &loads,
            now,
        })?)
    }

    /// A command's plan and change set, prepared on a snapshot (`None`: the transaction
    /// decides alone, and meets any refusal there).
    async fn command_early(
        &self,
        code: &ReferenceCode,
        command: &Command,
        actor: &Actor,
        now: Millis,
    ) -> Option<Early> {
        let mut snapshot = self.store.snapshot().await.ok()?;
        let plan = self
            .command_plan(&mut *snapshot, code, command, actor.clone(), now)
            .await
            .ok()?;
        let (desk, renderer) = (self.desk(), self.renderer());
        let ctx = self.apply_context(&desk, &renderer, now);
        let changes = prepare(&mut *snapshot, &ctx, &plan, None).await.ok()?;
        snapshot.commit().await.ok()?;
        Some(Early { plan, changes })
    }
}
