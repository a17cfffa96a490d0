//! `helpdesk tick`: run (or preview) the timed work that fell due, now or at a given
//! moment.

use super::*;

/// One pass of the timers, then the outbox drained. At another moment (`--at`), a dry
/// run unless `--apply`.
pub(super) async fn tick(
    config_path: &Path,
    at: Option<String>,
    apply: bool,
    no_send: bool,
) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    let at = match at {
        Some(text) => Some(chrono::DateTime::parse_from_rfc3339(&text).map_err(|e| {
            anyhow::Error::new(BadValue(format!(
                "--at {text:?}: {e} (write e.g. 2026-12-24T18:00:00+01:00)"
            )))
        })?),
        None => None,
    };
    if at.is_some() && !apply {
        return tick_preview(config, at.map(|t| t.timestamp_millis())).await;
    }
    let store = app::open_store(&config).await?;
    let clock: Arc<dyn crate::clock::Clock> = match at {
        Some(t) => {
            eprintln!(
                "helpdesk: tick --apply: acting on this desk as if it were {t}; its mail is queued to go now"
            );
            Arc::new(crate::clock::FixedClock::at(t.timestamp_millis()))
        }
        None => Arc::new(crate::clock::SystemClock),
    };
    let app = App::build_with_clock(config, store, clock).await?;
    let pipeline = if at.is_some() {
        // The app's pipeline, but queueing its mail by the machine's clock.
        Arc::new(
            crate::pipeline::Pipeline::new(
                app.pipeline.store().clone(),
                Arc::new(crate::render::Renderer::new(
                    app.config.gateway.templates_dir.as_deref(),
                )?),
                app.config.gateway.clone(),
                Arc::new(app.config.desk.clone()),
                Arc::new(tokio::sync::Notify::new()),
            )
            .with_clock(Arc::new(crate::clock::FixedClock::at(app.pipeline.now())))
            .sending_now(),
        )
    } else {
        app.pipeline.clone()
    };
    let owner = format!("tick-{}", std::process::id());
    let pass = pipeline
        .run_timers(&owner)
        .await
        .map_err(|e| anyhow::Error::from(e.at(&app.config.database_url)))?;
    println!(
        "{} ticket(s) with work due, {} mail queued",
        pass.tickets, pass.queued
    );
    // The weekly report is timed work too: a desk run from cron gets it from `tick`.
    if !app.config.desk.reports.weekly_to.is_empty() {
        let queued = pipeline.run_reports().await?;
        println!("weekly report: {queued} mail queued");
    }
    if !no_send {
        app.outbox.drain().await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What a tick at `at` would do, ticket by ticket; nothing is changed.
pub(super) async fn tick_preview(config: Config, at: Option<i64>) -> Result<ExitCode> {
    let store = app::open_existing_store(&config).await?;
    let clock = Arc::new(crate::clock::FixedClock::at(at.unwrap_or_default()));
    let app = App::build_with_clock(config, store, clock).await?;
    let plans = app
        .pipeline
        .preview_timers(PREVIEW_LIMIT)
        .await
        .map_err(|e| anyhow::Error::from(e.at(&app.config.database_url)))?;
    println!(
        "dry run at {}: nothing is changed (add --apply to act)",
        crate::store::format_millis(app.pipeline.now())
    );
    for (code, plan) in &plans {
        let events: Vec<String> = plan.events().iter().map(|e| e.to_string()).collect();
        let mail: Vec<String> = plan
            .queued()
            .iter()
            .map(|(template, to)| format!("{} to {to}", template.name()))
            .collect();
        let what = match (events.is_empty(), mail.is_empty()) {
            (true, true) => "its timers are recomputed, nothing else".to_string(),
            _ => [events.join(", "), mail.join(", ")]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join("; mail: "),
        };
        println!("{code}  {what}");
    }
    println!("{} ticket(s) with work due", plans.len());
    Ok(ExitCode::SUCCESS)
}

/// The most tickets `tick --at` lists.
pub(super) const PREVIEW_LIMIT: u32 = 10_000;
