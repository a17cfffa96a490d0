//! The `helpdesk` command line. Data goes to stdout, logs to stderr.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::app::{self, App};
use crate::config::Config;
use crate::desk::{Command as DeskCommand, CommandError};
use crate::domain::{Actor, Category, EmailAddress, Priority, ReferenceCode, TicketStatus, Tier};
use crate::ingest::maildir::MaildirSource;
use crate::pipeline::SourceRef;
use crate::store::{StoreError, TicketFilter};

/// Email helpdesk gateway: files mail sent to the support address as tickets.
#[derive(Parser, Debug)]
#[command(name = "helpdesk", version)]
pub struct Cli {
    /// Configuration file.
    #[arg(
        long,
        short,
        global = true,
        env = "HELPDESK_CONFIG",
        default_value = "helpdesk.toml"
    )]
    pub config: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Write a commented helpdesk.toml for the embedded default (Maildir in, SQLite, .eml files out) into DIR.
    Init(InitArgs),
    /// Run the configured source and the outbox until SIGINT/SIGTERM.
    Run,
    /// File mail from files (or stdin), as the source would, then send what is queued.
    Ingest(IngestArgs),
    /// Look at tickets and act on them.
    #[command(subcommand)]
    Tickets(TicketsCommand),
    /// Say what a mail would become (category, priority, tier, rule, assignee) without filing it.
    Route {
        /// The mail (RFC 5322); `-` or none for standard input.
        file: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The roster.
    #[command(subcommand)]
    Agents(AgentsCommand),
    /// Run the timed work that fell due (service levels, reminders, closing, vendors) once,
    /// send what it queued, and exit: for cron. With --at, print what would fall due at
    /// that moment, ticket by ticket, and change nothing (to try a calendar).
    Tick {
        /// The moment to look at (RFC 3339, e.g. 2026-12-24T18:00:00+01:00): a dry run.
        #[arg(long)]
        at: Option<String>,
        /// With --at: act as if it were that moment, for real (for trials on a copy of a
        /// desk, and tests). Its mail is queued to go now, never at that moment.
        #[arg(long, requires = "at")]
        apply: bool,
        /// Queue the resulting mail but do not send it now.
        #[arg(long)]
        no_send: bool,
    },
    /// Check the configuration file and report the first problem.
    CheckConfig,
}

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Folder for the configuration, database, Maildir and outgoing mail.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// Overwrite an existing helpdesk.toml.
    #[arg(long)]
    pub force: bool,
    /// `init` writes a configuration rather than reading one: this stands in for the
    /// global `--config`, hidden from its help, and is not used.
    #[arg(long, short, hide = true, default_value = "helpdesk.toml")]
    pub config: PathBuf,
}

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Mail files (RFC 5322); `-` or none for standard input.
    pub files: Vec<PathBuf>,
    /// Queue acknowledgements but do not send them now.
    #[arg(long)]
    pub no_send: bool,
}

#[derive(Subcommand, Debug)]
pub enum AgentsCommand {
    /// Each agent with their tiers, categories, languages and open tickets.
    List {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Options shared by the commands that change a ticket.
#[derive(Args, Debug)]
pub struct ActArgs {
    /// The ticket's code, e.g. HD-7K3M9QXA.
    pub code: String,
    /// Who is acting, as recorded in the ticket's events.
    #[arg(long = "as", default_value = "cli")]
    pub actor: String,
    /// Queue the resulting mail but do not send it now (a running gateway will).
    #[arg(long)]
    pub no_send: bool,
}

#[derive(Subcommand, Debug)]
pub enum TicketsCommand {
    /// List tickets, oldest first.
    List {
        /// Only tickets in this status (new, open, waiting_on_customer, resolved, closed).
        #[arg(long)]
        status: Option<String>,
        /// Only tickets at this tier (L0-L4).
        #[arg(long)]
        tier: Option<String>,
        /// Only tickets assigned to this address.
        #[arg(long)]
        assignee: Option<String>,
        /// Only tickets in this category (printer, account, network…).
        #[arg(long)]
        category: Option<String>,
        /// Only tickets of this priority: low, normal, high or urgent.
        #[arg(long)]
        priority: Option<String>,
        /// Only tickets with a service-level target due within this time (e.g. 2h).
        #[arg(long)]
        due_within: Option<String>,
        /// Only tickets that missed a service-level target.
        #[arg(long)]
        breached: bool,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Give a ticket to an agent on the roster.
    Assign {
        #[command(flatten)]
        act: ActArgs,
        /// The agent's address.
        address: String,
    },
    /// Move a ticket up (one tier by default), re-route and re-assign it.
    Escalate {
        #[command(flatten)]
        act: ActArgs,
        /// The tier to go to (L2-L4).
        #[arg(long)]
        to: Option<String>,
        /// Why, as the new assignee and the ticket's log will read it.
        #[arg(long)]
        reason: Option<String>,
        /// Send the ticket to this external vendor (a [[vendors]] name; implies --to L4).
        #[arg(long)]
        vendor: Option<String>,
    },
    /// Mark a ticket resolved; the customer is told how to reopen it.
    Resolve {
        #[command(flatten)]
        act: ActArgs,
    },
    /// Close a ticket.
    Close {
        #[command(flatten)]
        act: ActArgs,
    },
    /// Reopen a resolved or closed ticket.
    Reopen {
        #[command(flatten)]
        act: ActArgs,
    },
    /// The ticket waits for the customer's answer (for DURATION, e.g. 3d, when given).
    Wait {
        #[command(flatten)]
        act: ActArgs,
        /// How long to wait (e.g. 3d, 12h); the desk's default when absent.
        duration: Option<String>,
    },
    /// Show one ticket with its messages.
    Show {
        /// The ticket's code, e.g. HD-7K3M9QXA.
        code: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// Mails filed per transaction by `ingest` when it is given several files.
const INGEST_GROUP: usize = 50;

/// The exit codes, one table (the README's "Exit codes" repeats it): what a script
/// calling `helpdesk` can tell apart.
pub mod exit {
    /// Done.
    pub const OK: u8 = 0;
    /// Anything not below (an unreadable file, a mail stack that refused us…).
    pub const FAILURE: u8 = 1;
    /// The command line itself is wrong: an unknown command or flag, a missing argument
    /// (clap's code).
    pub const USAGE: u8 = 2;
    /// The ticket's state does not allow the command (closed, already there, not on the
    /// roster…): nothing changed.
    pub const REFUSED: u8 = 3;
    /// A well-formed code that no ticket has.
    pub const NO_TICKET: u8 = 4;
    /// A value that is not what it should be: a mistyped code, a duration, a date, a
    /// status or tier name (sysexits' EX_DATAERR).
    pub const BAD_VALUE: u8 = 65;
    /// Something to read is missing: no database yet (the desk has filed nothing), or a
    /// mail file that cannot be read (EX_NOINPUT).
    pub const NO_INPUT: u8 = 66;
    /// The database is busy or unreachable: try again later (EX_TEMPFAIL).
    pub const TEMPORARY: u8 = 75;
    /// The configuration is wrong; the message names the key and the fix (EX_CONFIG).
    pub const CONFIG: u8 = 78;
}

/// A value on the command line that is not valid (exit [`exit::BAD_VALUE`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadValue(pub String);

pub async fn main(cli: Cli) -> ExitCode {
    match dispatch(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("helpdesk: {}", report(&e));
            let any = |f: &dyn Fn(&(dyn std::error::Error + 'static)) -> bool| e.chain().any(f);
            ExitCode::from(
                if any(&|c| {
                    c.downcast_ref::<StoreError>()
                        .is_some_and(StoreError::is_temporary)
                }) {
                    exit::TEMPORARY
                } else if any(&|c| c.is::<crate::config::ConfigError>()) {
                    exit::CONFIG
                } else if any(&|c| {
                    matches!(
                        c.downcast_ref::<StoreError>(),
                        Some(StoreError::NoDatabase(_))
                    )
                }) {
                    exit::NO_INPUT
                } else if any(&|c| {
                    c.is::<BadValue>() || c.is::<crate::domain::reference_code::CodeError>()
                }) {
                    exit::BAD_VALUE
                } else if any(&|c| {
                    matches!(
                        c.downcast_ref::<CommandError>(),
                        Some(CommandError::NoTicket(_))
                    )
                }) {
                    exit::NO_TICKET
                } else {
                    exit::FAILURE
                },
            )
        }
    }
}

/// What `run` works with, one line each, so an operator's log shows it at a glance.
fn log_start(path: &Path, config: &Config) {
    tracing::info!(file = %path.display(), "configuration");
    match &config.source {
        crate::config::SourceSettings::Maildir(m) => {
            tracing::info!(kind = "maildir", path = %m.path.display(), "source");
        }
        crate::config::SourceSettings::Imap(i) => tracing::info!(
            kind = "imap",
            server = %format!("{}:{}", i.host, i.port),
            user = %i.username,
            mailbox = %i.mailbox,
            idle = i.idle,
            "source"
        ),
    }
    let roster = &config.desk.roster;
    tracing::info!(
        agents = roster.agents().len(),
        rules = config.desk.rules.len(),
        "roster and routing"
    );
    match &config.outbox.transport {
        crate::config::TransportSettings::File { dir } => {
            tracing::info!(kind = "files", dir = %dir.display(), "outbox");
        }
        crate::config::TransportSettings::Smtp(s) => tracing::info!(
            kind = "smtp",
            server = %format!("{}:{}", s.host, s.port),
            "outbox"
        ),
    }
    let calendar = &config.desk.time.calendar;
    if *calendar == crate::calendar::Calendar::always() {
        tracing::info!("calendar: round the clock, UTC (no [calendar] configured)");
    } else {
        let mut days: Vec<_> = calendar.working_days.iter().collect();
        days.sort_by_key(|d| d.num_days_from_monday());
        tracing::info!(
            time_zone = %calendar.time_zone,
            days = %days.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(","),
            hours = %calendar.working_hours.iter().map(|h| h.to_string()).collect::<Vec<_>>().join(","),
            holidays = calendar.holidays.len(),
            "calendar"
        );
    }
}

/// On SIGHUP, the roster, the routing rules, the rest of the desk's organisation and the
/// templates are read again and put in place; a configuration or a template that does not
/// load is refused, with the error, and the running one kept. (The source, the outbox, the
/// database and `[gateway]` need a restart.)
async fn reload_on_hangup(path: PathBuf, pipeline: Arc<crate::pipeline::Pipeline>) {
    let Ok(mut hangups) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    else {
        tracing::warn!("cannot listen for SIGHUP: reloading needs a restart");
        return;
    };
    while hangups.recv().await.is_some() {
        match reloaded(&path) {
            Ok((renderer, desk)) => {
                tracing::info!(
                    agents = desk.roster.agents().len(),
                    rules = desk.rules.len(),
                    "reloaded the roster, the routing rules and the templates"
                );
                pipeline.reload(Arc::new(renderer), Arc::new(desk));
            }
            Err(e) => tracing::error!(
                error = %report(&e),
                "reload refused: the running configuration is kept"
            ),
        }
    }
}

fn reloaded(path: &Path) -> Result<(crate::render::Renderer, crate::config::DeskSettings)> {
    let config = Config::load(path)?;
    config.desk.check_agent_auth_chosen()?;
    let renderer = crate::render::Renderer::new(config.gateway.templates_dir.as_deref())
        .and_then(|r| r.check().map(|()| r))
        .context("templates")?;
    Ok((renderer, config.desk))
}

/// The error and its causes on one line, each said once: our errors repeat their cause in
/// their own message (so a log line with `%e` is complete), and anyhow's `{:#}` would then
/// print it again for every level.
fn report(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

async fn dispatch(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Init(args) => init(&args),
        Command::CheckConfig => {
            let config = Config::load(&cli.config)?;
            config.desk.check_agent_auth_chosen()?;
            config.check_database_folder()?;
            crate::render::Renderer::new(config.gateway.templates_dir.as_deref())
                .and_then(|r| r.check())
                .context("templates")?;
            // Build the clients as `run` would (TLS roots, ca_file), without connecting.
            crate::outbox::Transport::check(&config.outbox.transport).map_err(|e| {
                crate::config::ConfigError::Invalid {
                    key: "outbox.smtp".into(),
                    message: format!("{e:#}"),
                    hint: "fix the [outbox.smtp] settings".into(),
                }
            })?;
            if let crate::config::SourceSettings::Imap(imap) = &config.source {
                crate::ingest::imap::tls_connector(imap).map_err(|e| {
                    crate::config::ConfigError::Invalid {
                        key: "source.imap.ca_file".into(),
                        message: format!("{e:#}"),
                        hint: "give a readable PEM file of the CA that signed the server's certificate".into(),
                    }
                })?;
            }
            println!("{}: ok", cli.config.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run => {
            let config = Config::load(&cli.config)?;
            config.desk.check_agent_auth_chosen()?;
            config.check_database_folder()?;
            let store = app::open_store(&config).await?;
            let app = App::build(config, store).await?;
            // A long-lived gateway compiles every template at start: a broken override
            // stops it here, not mail by mail.
            app.pipeline
                .renderer()
                .check()
                .context("cannot load templates")?;
            log_start(&cli.config, &app.config);
            let reloading = app.pipeline.clone();
            let config_path = cli.config.clone();
            tokio::spawn(async move { reload_on_hangup(config_path, reloading).await });
            let shutdown = CancellationToken::new();
            let trigger = shutdown.clone();
            tokio::spawn(async move {
                app::shutdown_signal().await;
                tracing::info!("stopping: finishing the mail in hand");
                trigger.cancel();
            });
            app.run(shutdown).await?;
            tracing::info!("stopped");
            Ok(ExitCode::SUCCESS)
        }
        Command::Ingest(args) => ingest(&cli.config, args).await,
        Command::Tickets(cmd) => tickets(&cli.config, cmd).await,
        Command::Route { file, json } => route(&cli.config, file, json).await,
        Command::Agents(AgentsCommand::List { json }) => agents(&cli.config, json).await,
        Command::Tick { at, apply, no_send } => tick(&cli.config, at, apply, no_send).await,
    }
}

fn parse_arg<T: std::str::FromStr>(
    flag: &str,
    value: Option<String>,
    hint: &str,
) -> Result<Option<T>>
where
    T::Err: std::fmt::Display,
{
    value
        .map(|v| {
            v.parse::<T>()
                .map_err(|e| anyhow::Error::new(BadValue(format!("{flag}: {e} ({hint})"))))
        })
        .transpose()
}

async fn route(config_path: &Path, file: Option<PathBuf>, json: bool) -> Result<ExitCode> {
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

async fn agents(config_path: &Path, json: bool) -> Result<ExitCode> {
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

/// Runs one command on a ticket through the pipeline's decide/apply path, then sends what
/// it queued (unless `--no-send`).
async fn act(config_path: &Path, act: ActArgs, command: DeskCommand) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    let store = app::open_existing_store(&config).await?;
    let app = App::build(config, store).await?;
    let code = ReferenceCode::parse(
        &app.config.gateway.reference_prefix,
        act.code.trim_matches(['[', ']']),
    )?;
    let actor = match EmailAddress::parse(&act.actor) {
        Ok(a) if app.config.desk.roster.agent(&a).is_some() => Actor::Agent(a),
        _ => Actor::Cli(act.actor.clone()),
    };
    match app.pipeline.execute(&code, &command, actor).await {
        Ok(applied) => {
            println!("{code}\tok\t{} mail queued", applied.queued);
        }
        Err(CommandError::Store(e)) => return Err(e.at(&app.config.database_url).into()),
        Err(e @ CommandError::NoTicket(_)) => return Err(e.into()),
        Err(e) => {
            eprintln!("helpdesk: {code}: {e}");
            return Ok(ExitCode::from(exit::REFUSED));
        }
    }
    if !act.no_send {
        app.outbox.drain().await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// One pass of the timers, then the outbox drained. At another moment (`--at`), a dry
/// run unless `--apply`.
async fn tick(
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
    if !no_send {
        app.outbox.drain().await?;
    }
    Ok(ExitCode::SUCCESS)
}

/// What a tick at `at` would do, ticket by ticket; nothing is changed.
async fn tick_preview(config: Config, at: Option<i64>) -> Result<ExitCode> {
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
const PREVIEW_LIMIT: u32 = 10_000;

fn init(args: &InitArgs) -> Result<ExitCode> {
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

async fn ingest(config_path: &Path, args: IngestArgs) -> Result<ExitCode> {
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
                        eprintln!("helpdesk: cannot read {name}: {e}");
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
    }
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

async fn tickets(config_path: &Path, cmd: TicketsCommand) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    let store = app::open_existing_store(&config).await?;
    match cmd {
        TicketsCommand::List {
            status,
            tier,
            assignee,
            category,
            priority,
            due_within,
            breached,
            json,
        } => {
            let due_before = due_within
                .map(|d| {
                    humantime::parse_duration(&d)
                        .map(|d| {
                            use crate::clock::Clock;
                            crate::clock::SystemClock.now() + d.as_millis() as i64
                        })
                        .map_err(|e| {
                            anyhow::Error::new(BadValue(format!(
                                "--due-within {d:?}: {e} (e.g. 2h, 1d)"
                            )))
                        })
                })
                .transpose()?;
            let filter = TicketFilter {
                due_before,
                breached,
                status: parse_arg::<TicketStatus>(
                    "--status",
                    status,
                    "use new, open, waiting_on_customer, resolved or closed",
                )?,
                open_only: false,
                tier: parse_arg::<Tier>("--tier", tier, "use L0, L1, L2, L3 or L4")?,
                assignee: parse_arg::<EmailAddress>("--assignee", assignee, "give an address")?,
                category: parse_arg::<Category>("--category", category, "e.g. printer")?,
                priority: parse_arg::<Priority>(
                    "--priority",
                    priority,
                    "use low, normal, high or urgent",
                )?,
            };
            let list = store.list_tickets(&filter).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for t in &list {
                    // The next target due (UTC, to the minute), "missed" once one was.
                    let due = [&t.sla.first_response_due, &t.sla.resolution_due]
                        .into_iter()
                        .flatten()
                        .min()
                        .map(|d| d.get(..16).unwrap_or(d).replace('T', " "))
                        .unwrap_or_else(|| "-".into());
                    let due = if t.sla.breached.is_empty() {
                        due
                    } else {
                        format!("{due} (missed)")
                    };
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                        t.code,
                        t.status,
                        t.tier,
                        t.priority,
                        t.category,
                        t.assignee.as_deref().unwrap_or("-"),
                        due,
                        t.messages,
                        t.customer,
                        t.subject
                    );
                }
            }
        }
        TicketsCommand::Assign { act: a, address } => {
            let to = EmailAddress::parse(&address)
                .map_err(|e| anyhow::Error::new(BadValue(format!("ADDRESS: {e}"))))?;
            drop(store);
            return act(config_path, a, DeskCommand::Assign(to)).await;
        }
        TicketsCommand::Escalate {
            act: a,
            to,
            reason,
            vendor,
        } => {
            let mut to = parse_arg::<Tier>("--to", to, "use L2, L3 or L4")?;
            if vendor.is_some() {
                to = Some(Tier::L4Vendor);
            }
            drop(store);
            return act(config_path, a, DeskCommand::Escalate { to, reason, vendor }).await;
        }
        TicketsCommand::Resolve { act: a } => {
            drop(store);
            return act(config_path, a, DeskCommand::Resolve).await;
        }
        TicketsCommand::Close { act: a } => {
            drop(store);
            return act(config_path, a, DeskCommand::Close).await;
        }
        TicketsCommand::Reopen { act: a } => {
            drop(store);
            return act(config_path, a, DeskCommand::Reopen).await;
        }
        TicketsCommand::Wait { act: a, duration } => {
            let duration = duration
                .map(|d| {
                    humantime::parse_duration(&d)
                        .map_err(|e| {
                            anyhow::Error::new(BadValue(format!(
                                "DURATION {d:?}: {e} (e.g. 3d, 12h)"
                            )))
                        })
                        .and_then(|p| {
                            if p > crate::timing::LONGEST {
                                return Err(anyhow::Error::new(BadValue(format!(
                                    "DURATION {d:?} is longer than a year (e.g. 3d, 12h)"
                                ))));
                            }
                            Ok(p)
                        })
                })
                .transpose()?;
            drop(store);
            return act(config_path, a, DeskCommand::Wait(duration)).await;
        }
        TicketsCommand::Show { code, json } => {
            let parsed = ReferenceCode::parse(
                &config.gateway.reference_prefix,
                code.trim_matches(['[', ']']),
            )?;
            let Some(detail) = store.ticket_detail(&parsed).await? else {
                return Err(CommandError::NoTicket(parsed).into());
            };
            if json {
                println!("{}", serde_json::to_string_pretty(&detail.to_json())?);
            } else {
                let s = &detail.summary;
                println!("{}  [{}] {}  {}", s.code, s.status, s.tier, s.subject);
                println!(
                    "customer: {}   created: {}   updated: {}",
                    s.customer, s.created_at, s.updated_at
                );
                println!(
                    "category: {}   priority: {}   assignee: {}",
                    s.category,
                    s.priority,
                    s.assignee.as_deref().unwrap_or("-")
                );
                println!(
                    "first response due: {}   resolution due: {}{}{}",
                    s.sla.first_response_due.as_deref().unwrap_or("-"),
                    s.sla.resolution_due.as_deref().unwrap_or("-"),
                    if s.sla.paused {
                        "   (clock stopped)"
                    } else {
                        ""
                    },
                    if s.sla.breached.is_empty() {
                        String::new()
                    } else {
                        format!("   missed: {}", s.sla.breached.join(", "))
                    }
                );
                if let Some(v) = &s.vendor {
                    println!(
                        "vendor: {v}   their ticket: {}",
                        s.vendor_ticket.as_deref().unwrap_or("-")
                    );
                }
                if let Some(f) = &s.follows {
                    println!("follows: {f}");
                }
                if let Some(score) = s.satisfaction {
                    println!(
                        "satisfaction: {score}/5 {}",
                        s.satisfaction_comment.as_deref().unwrap_or("")
                    );
                }
                let tz = config.desk.time.calendar.time_zone;
                println!("\nevents ({tz}):");
                for e in &detail.events {
                    let at = crate::timing::instant(e.at_ms).with_timezone(&tz);
                    let detail = match &e.detail {
                        serde_json::Value::Object(o) if o.is_empty() => String::new(),
                        d => d.to_string(),
                    };
                    println!(
                        "  {}  {:<18} {:<28} {detail}",
                        at.format("%Y-%m-%d %H:%M:%S"),
                        e.kind,
                        if e.actor == e.actor_kind {
                            e.actor_kind.clone()
                        } else {
                            format!("{} {}", e.actor_kind, e.actor)
                        },
                    );
                }
                for m in &detail.messages {
                    println!(
                        "\n--- {} {} from {} ({}) {}",
                        m.received_at,
                        m.direction,
                        m.from.as_deref().unwrap_or("?"),
                        m.kind.as_deref().unwrap_or(&m.outcome),
                        m.delivery.as_deref().unwrap_or("")
                    );
                    println!("Subject: {}", m.subject);
                    println!("{}", m.reply_text);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
