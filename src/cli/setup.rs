//! Setting a desk up and trying it: `init`, `route`, `agents` and `ingest`.

use super::*;

pub(super) fn init(args: &InitArgs) -> Result<ExitCode> {
    let dir = &args.dir;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let path = dir.join("helpdesk.toml");
    if path.exists() && !args.force {
        eprintln!(
            "{} exists already; kept as is (use --force to overwrite)",
            path.display()
        );
    } else {
        std::fs::write(&path, crate::config::embedded_default_toml())
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    let holidays = dir.join("holidays-fr.toml");
    if !holidays.exists() {
        std::fs::write(&holidays, crate::config::french_holidays_toml())
            .with_context(|| format!("cannot write {}", holidays.display()))?;
    }
    let kb_dir = crate::config::Config::from_toml(
        &std::fs::read_to_string(&path)?,
        &path,
        dir,
        &crate::config::ProcessEnv,
    )?
    .desk
    .knowledge
    .dir;
    let written = crate::kb::starter::write(&kb_dir).with_context(|| {
        format!(
            "cannot write the starter articles into {}",
            kb_dir.display()
        )
    })?;
    if !written.is_empty() {
        eprintln!(
            "wrote {} starter knowledge-base articles into {} (adapt them to your desk)",
            written.len(),
            kb_dir.display()
        );
    }
    let config = Config::load(&path)?;
    if let crate::config::SourceSettings::Maildir(m) = &config.source {
        MaildirSource::ensure_layout(&m.path)?;
    }
    if let crate::config::TransportSettings::File { dir } = &config.outbox.transport {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    eprintln!("start it with: helpdesk --config {} run", path.display());
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn route(
    config_path: &Path,
    file: Option<PathBuf>,
    json: bool,
) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    let raw = match file.as_ref().filter(|f| f.as_os_str() != "-") {
        Some(f) => std::fs::read(f).with_context(|| format!("cannot read {}", f.display()))?,
        None => {
            let mut raw = Vec::new();
            std::io::stdin().read_to_end(&mut raw)?;
            raw
        }
    };
    let mail =
        crate::inbound::parse(&raw).map_err(|e| anyhow::anyhow!("cannot read the mail: {e}"))?;
    // Before the desk's first mail there is no database, and nobody has a load yet.
    let loads = match app::open_existing_store(&config).await {
        Ok(store) if !config.desk.roster.agents().is_empty() => {
            store.agent_loads(&config.desk.roster.addresses()).await?
        }
        Ok(_) | Err(StoreError::NoDatabase(_)) => Default::default(),
        Err(e) => return Err(e.into()),
    };
    let preview = crate::desk::decide::preview_route(&mail, &config.gateway, &config.desk, &loads);
    if json {
        println!("{}", serde_json::to_string_pretty(&preview)?);
    } else {
        println!("category: {}", preview.category);
        println!("priority: {}", preview.priority);
        println!("tier:     {}", preview.tier);
        println!(
            "rule:     {}",
            preview.rule.as_deref().unwrap_or("(none: default)")
        );
        println!("matched:  {}", preview.matched.join(", "));
        for s in &preview.scores {
            println!("  {:>3}  {:<9} {}", s.score, s.category, s.words.join(", "));
        }
        println!(
            "assignee: {}",
            preview.assignee.as_deref().unwrap_or("(nobody)")
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn agents(config_path: &Path, json: bool) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    // Before the desk's first mail there is no database: nobody has a ticket yet.
    let store = match app::open_existing_store(&config).await {
        Ok(store) => Some(store),
        Err(StoreError::NoDatabase(_)) => None,
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for agent in config.desk.roster.agents() {
        let open = match &store {
            Some(store) => {
                store
                    .list_tickets(&TicketFilter {
                        open_only: true,
                        assignee: Some(agent.address.clone()),
                        ..TicketFilter::default()
                    })
                    .await?
            }
            None => Vec::new(),
        };
        out.push(serde_json::json!({
            "name": agent.name,
            "address": agent.address.as_str(),
            "tiers": agent.tiers,
            "categories": agent.categories,
            "languages": agent.languages,
            "open_tickets": open.len(),
            "tickets": open.iter().map(|t| serde_json::json!({
                "code": t.code, "status": t.status, "priority": t.priority, "subject": t.subject,
            })).collect::<Vec<_>>(),
        }));
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (agent, row) in config.desk.roster.agents().iter().zip(&out) {
            let tiers: Vec<&str> = agent.tiers.iter().map(|t| t.as_str()).collect();
            let list = |v: &serde_json::Value| {
                let items: Vec<&str> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|x| x.as_str())
                    .collect();
                if items.is_empty() {
                    "all".to_string()
                } else {
                    items.join(",")
                }
            };
            println!(
                "{} <{}>\ttiers {}\tcategories {}\tlanguages {}\t{} open",
                agent.name,
                agent.address,
                tiers.join(","),
                list(&row["categories"]),
                list(&row["languages"]),
                row["open_tickets"]
            );
            for t in row["tickets"].as_array().into_iter().flatten() {
                println!(
                    "    {}\t{}\t{}\t{}",
                    t["code"].as_str().unwrap_or(""),
                    t["status"].as_str().unwrap_or(""),
                    t["priority"].as_str().unwrap_or(""),
                    t["subject"].as_str().unwrap_or("")
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress line on standard error for a person at a terminal filing many files;
/// nothing at all when standard error is a file, a pipe or a journal (a script's log must
/// not fill with redraws).
fn ingest_progress(files: usize) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if files < 2 || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(files as u64),
        indicatif::ProgressDrawTarget::stderr(),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} mails filed, {eta} left")
    {
        bar.set_style(style);
    }
    bar
}

pub(super) async fn ingest(config_path: &Path, args: IngestArgs) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    config.desk.check_agent_auth_chosen()?;
    let store = app::open_store(&config).await?;
    let app = App::build(config, store).await?;
    // Many files are filed in groups, one transaction each (what a migration from another
    // helpdesk's spool needs), the next group read from disk and parsed while one is
    // written; a group that fails is filed again mail by mail. Files are read group by
    // group, so a spool of any size takes the memory of two groups.
    let names: Vec<PathBuf> = if args.files.is_empty() {
        vec![PathBuf::from("-")]
    } else {
        args.files.clone()
    };
    let unreadable = std::cell::Cell::new(0);
    let progress = ingest_progress(names.len());
    let mut groups = names.chunks(INGEST_GROUP).map(|paths| {
        paths
            .iter()
            .filter_map(|path| {
                let name = path.display().to_string();
                let raw = if path.as_os_str() == "-" {
                    let mut raw = Vec::new();
                    std::io::stdin().read_to_end(&mut raw).map(|_| raw)
                } else {
                    std::fs::read(path)
                };
                match raw {
                    Ok(raw) => Some((name, SourceRef::none(), raw)),
                    Err(e) => {
                        progress.suspend(|| eprintln!("helpdesk: cannot read {name}: {e}"));
                        unreadable.set(unreadable.get() + 1);
                        None
                    }
                }
            })
            .collect::<Vec<_>>()
    });
    let mut ahead = groups.next().map(|g| app.pipeline.read_ahead(g));
    while let Some(reading) = ahead.take() {
        let read = reading.await.context("reading mail")?;
        ahead = groups.next().map(|g| app.pipeline.read_ahead(g));
        let (names, outcomes) = app.pipeline.file_read_ahead(read).await;
        let filed = names.len() as u64;
        progress.suspend(|| -> Result<()> {
            for (name, outcome) in names.iter().zip(outcomes) {
                let outcome = outcome
                    .map_err(|e| e.at(&app.config.database_url))
                    .with_context(|| format!("filing {name}"))?;
                println!(
                    "{name}\t{}\t{}",
                    outcome.label(),
                    outcome.code().map(|c| c.as_str()).unwrap_or("-")
                );
            }
            Ok(())
        })?;
        progress.inc(filed);
    }
    progress.finish_and_clear();
    if !args.no_send {
        let report = app.outbox.drain().await?;
        if report.retried > 0 || report.failed > 0 {
            tracing::warn!(
                sent = report.sent,
                retried = report.retried,
                failed = report.failed,
                "not everything could be sent"
            );
        }
    }
    Ok(if unreadable.get() > 0 {
        ExitCode::from(exit::NO_INPUT)
    } else {
        ExitCode::SUCCESS
    })
}

/// Mails filed per transaction by `ingest` when it is given several files.
pub(super) const INGEST_GROUP: usize = 50;
