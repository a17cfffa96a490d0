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

mod kb;
mod setup;
mod stats;
mod tick;
mod tickets;

use setup::*;
use tick::*;
use tickets::*;

/// Email helpdesk gateway: files mail sent to the support address as tickets.
#[derive(Parser, Debug)]
#[command(
    name = "helpdesk",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("HELPDESK_COMMIT"), ")")
)]
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
    /// The knowledge base (L0): search it, see what a mail would be sent, check articles.
    #[command(subcommand)]
    Kb(KbCommand),
    /// Figures for a period (the last 30 days by default): volumes, first-response and
    /// resolution times in business and plain hours, reopenings, targets, escalations,
    /// self-service and satisfaction; per agent, tier, category, priority or week.
    Stats(StatsArgs),
    /// Reports by mail.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Serve the read-only dashboard, `/metrics` and `/healthz` alone, without the rest of
    /// the gateway: for a second machine reading the same database.
    Dashboard {
        /// The address to listen on, instead of `[dashboard] listen`.
        #[arg(long)]
        listen: Option<String>,
    },
    /// OAuth2 sign-in for Microsoft 365 and Gmail mailboxes.
    #[command(subcommand)]
    Oauth(OauthCommand),
    /// The desk's database as a whole.
    #[command(subcommand)]
    Store(StoreCommand),
    /// A person's data.
    #[command(subcommand)]
    Customers(CustomersCommand),
    /// Write a consistent copy of the desk's database to FILE (a new file), while the
    /// gateway runs; print what it holds.
    Backup {
        /// The copy to write; it must not exist.
        file: PathBuf,
    },
    /// Put a backup in place as the desk's database. An existing database is replaced only
    /// with --replace (stop the gateway first: what was filed since the backup is lost).
    Restore {
        /// The backup to restore.
        file: PathBuf,
        /// Replace the desk's existing database.
        #[arg(long)]
        replace: bool,
    },
    /// Print a shell completion script: `helpdesk completions bash > /etc/bash_completion.d/helpdesk`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Copy a desk with all its history (tickets, messages with their raw mail, events,
    /// the outbox, checkpoints) from SQLite into an empty PostgreSQL database, then print
    /// each table's rows. Stop the gateway first; point `[database] url` at the copy after.
    Copy {
        /// The SQLite desk: sqlite:PATH.
        #[arg(long)]
        from: String,
        /// The PostgreSQL database: postgres://USER@HOST:PORT/DATABASE (no password in it).
        #[arg(long)]
        to: String,
        /// A file holding the PostgreSQL password (else $HELPDESK_DATABASE_PASSWORD).
        #[arg(long)]
        password_file: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum CustomersCommand {
    /// Erase a person's data (GDPR article 17): the raw mail, texts, attachments, address
    /// and name in their tickets, their mail on other tickets, the outbox and the events.
    /// Tickets stay, blanked, so the statistics do not change; the erasure is recorded
    /// (when, by whom, how many rows), never the address.
    Forget {
        /// The person's address.
        address: String,
        /// Say what would be erased, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Who asks, as the erasure's record names them.
        #[arg(long = "as", default_value = "cli")]
        actor: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum OauthCommand {
    /// Sign in once as the mailbox's user and write the refresh token to the
    /// `refresh_token_file` of the configuration's `[oauth2]` section: the device flow
    /// (a URL and a code, on any device) for Microsoft and custom servers; for Google, a
    /// browser on this machine (or reaching it through `ssh -L PORT:127.0.0.1:PORT`).
    Login {
        /// The provider the section must be for: microsoft, google or custom.
        #[arg(long)]
        provider: Option<String>,
        /// Which section: oauth2 (default), source.imap.oauth2 or outbox.smtp.oauth2.
        #[arg(long, default_value = "oauth2")]
        section: String,
        /// Google: the loopback port the browser returns to (default: any free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
}

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// Send the weekly report now: the week before the one that holds --at (default:
    /// today), as the scheduler sends it on that week's first working hour. It goes even
    /// if that week's report went already.
    Weekly {
        /// A day of the week after the one reported (YYYY-MM-DD): 2026-11-30 reports
        /// 23-29 November.
        #[arg(long)]
        at: Option<String>,
        /// Send to this address instead of `[reports] weekly_to` (repeatable).
        #[arg(long)]
        to: Vec<String>,
        /// Queue the mail but do not send it now.
        #[arg(long)]
        no_send: bool,
    },
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// First day (YYYY-MM-DD, the desk's time zone); default: 29 days before --until.
    #[arg(long)]
    pub since: Option<String>,
    /// Last day, included (YYYY-MM-DD); default: today.
    #[arg(long)]
    pub until: Option<String>,
    /// One group per agent, tier, category, priority or ISO week, and the total.
    #[arg(long)]
    pub by: Option<String>,
    /// Print one JSON object.
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV: a header, one row per group, then the total.
    #[arg(long)]
    pub csv: bool,
    /// Draw a chart instead: weekly-volume, first-response or backlog-age.
    #[arg(long, requires = "chart_file")]
    pub chart: Option<String>,
    /// Write the chart as SVG to this file.
    #[arg(long, group = "chart_file", requires = "chart")]
    pub svg: Option<PathBuf>,
    /// Write the chart as PNG to this file.
    #[arg(long, group = "chart_file", requires = "chart")]
    pub png: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum KbCommand {
    /// The articles that best match some text, best first, with their scores.
    Search {
        /// The text to search with (a mail's words).
        text: String,
        /// The articles' language: fr or en (default: the text's, as for a mail).
        #[arg(long)]
        lang: Option<String>,
        /// How many articles at most.
        #[arg(long, default_value_t = 5)]
        limit: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// The articles a mail's acknowledgement would carry (0 to 3), as the gateway decides.
    Suggest {
        /// The mail (RFC 5322); `-` or none for standard input.
        file: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Check every article (front matter, language, category, ids, body, links).
    Check,
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
        crate::config::SourceSettings::Imap(mailboxes) => {
            for i in mailboxes {
                tracing::info!(
                    kind = "imap",
                    server = %format!("{}:{}", i.host, i.port),
                    user = %i.username,
                    mailbox = %i.mailbox,
                    idle = i.idle,
                    "source"
                )
            }
        }
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

/// On SIGHUP, the roster, the routing rules, the rest of the desk's organisation, the
/// knowledge base and the templates are read again and put in place; a configuration or a template that does not
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
                crate::kb::log_problems(&desk.knowledge.kb);
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
    if only_reads(&cli.command) {
        quiet_on_closed_pipe();
    }
    match cli.command {
        Command::Init(args) => init(&args),
        Command::CheckConfig => {
            let config = Config::load(&cli.config)?;
            config.desk.check_agent_auth_chosen()?;
            config.check_database_folder()?;
            kb::refuse_problems(&config.desk.knowledge)?;
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
            if let crate::config::SourceSettings::Imap(mailboxes) = &config.source {
                for imap in mailboxes {
                    crate::ingest::imap::tls_connector(imap).map_err(|e| {
                    crate::config::ConfigError::Invalid {
                        key: "source.imap.ca_file".into(),
                        message: format!("{e:#}"),
                        hint: "give a readable PEM file of the CA that signed the server's certificate".into(),
                    }
                })?;
                }
            }
            check_tokens(&config).await?;
            println!("{}: ok", cli.config.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Run => {
            let config = Config::load(&cli.config)?;
            config.desk.check_agent_auth_chosen()?;
            config.check_database_folder()?;
            first_tokens(&config).await?;
            let store = app::open_store(&config).await?;
            let app = App::build(config, store).await?;
            // A long-lived gateway compiles every template at start: a broken override
            // stops it here, not mail by mail.
            app.pipeline
                .renderer()
                .check()
                .context("cannot load templates")?;
            log_start(&cli.config, &app.config);
            crate::kb::log_problems(&app.config.desk.knowledge.kb);
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
        Command::Kb(cmd) => kb::kb(&cli.config, cmd),
        Command::Stats(args) => stats::stats(&cli.config, args).await,
        Command::Report(ReportCommand::Weekly { at, to, no_send }) => {
            stats::report_weekly(&cli.config, at, to, no_send).await
        }
        Command::Dashboard { listen } => dashboard(&cli.config, listen).await,
        Command::Customers(CustomersCommand::Forget {
            address,
            dry_run,
            actor,
            json,
        }) => forget(&cli.config, &address, dry_run, &actor, json).await,
        Command::Store(StoreCommand::Copy {
            from,
            to,
            password_file,
        }) => store_copy(&from, &to, password_file.as_deref()).await,
        Command::Backup { file } => {
            let config = Config::load(&cli.config)?;
            let store = app::open_existing_store(&config).await?;
            let started = std::time::Instant::now();
            let counts = store.backup_into(&file).await?;
            println!(
                "{}: {} tickets, {} messages, {} events, {} outgoing mails ({} bytes, {} ms)",
                file.display(),
                counts.tickets,
                counts.messages,
                counts.events,
                counts.outbox,
                std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0),
                started.elapsed().as_millis()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore { file, replace } => {
            let config = Config::load(&cli.config)?;
            let target = config.sqlite_file().ok_or_else(|| {
                anyhow::Error::new(BadValue(format!(
                    "[database] url {:?} is not a file to restore into",
                    config.database_url
                )))
            })?;
            let counts = crate::store::sqlite::restore(&file, &target, replace)?;
            println!(
                "{} restored from {}: {} tickets, {} messages, {} events, {} outgoing mails",
                target.display(),
                file.display(),
                counts.tickets,
                counts.messages,
                counts.events,
                counts.outbox
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            let mut command = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut command, "helpdesk", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Oauth(OauthCommand::Login {
            provider,
            section,
            port,
        }) => oauth_login(&cli.config, provider, &section, port).await,
    }
}

/// The commands that only read and print: `tickets list | head` must end like any Unix
/// tool when its reader goes, not panic on a closed pipe.
fn only_reads(command: &Command) -> bool {
    matches!(
        command,
        Command::Tickets(TicketsCommand::List { .. } | TicketsCommand::Show { .. })
            | Command::Route { .. }
            | Command::Agents(_)
            | Command::Tick { apply: false, .. }
            | Command::Kb(_)
            | Command::Stats(_)
            | Command::Completions { .. }
    )
}

/// Restores the default action of SIGPIPE (Rust ignores it, so `println!` would panic on a
/// closed pipe). Only for commands that write nothing: they hold no transaction to lose,
/// and their sockets, if any, are written with `MSG_NOSIGNAL` anyway.
fn quiet_on_closed_pipe() {
    // SAFETY: setting a signal's disposition to its default has no memory effects; it is
    // done before any other thread could be writing to the pipe.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
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

/// `helpdesk customers forget`: one person's data erased (or counted, with --dry-run).
async fn forget(
    config_path: &Path,
    address: &str,
    dry_run: bool,
    actor: &str,
    json: bool,
) -> Result<ExitCode> {
    let address = EmailAddress::parse(address).map_err(|e| {
        anyhow::Error::new(BadValue(format!(
            "{address:?} is not an address ({e}): give the person's whole address"
        )))
    })?;
    let config = Config::load(config_path)?;
    let store = app::open_existing_store(&config).await?;
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);
    let report = store.forget_person(&address, actor, now, dry_run).await?;
    if json {
        let mut value = serde_json::to_value(&report)?;
        value["dry_run"] = dry_run.into();
        if dry_run {
            value["erasure"] = serde_json::Value::Null;
        }
        println!("{value}");
        return Ok(ExitCode::SUCCESS);
    }
    let verb = if dry_run { "would be" } else { "were" };
    match (dry_run, report.erasure) {
        (false, Some(id)) => println!("Erasure #{id}, asked by {actor}:"),
        _ => println!("Dry run: nothing changed. An erasure would cover:"),
    }
    let lines = [
        (
            report.tickets,
            "tickets of theirs",
            "blanked (customer, name, subject)",
        ),
        (
            report.messages,
            "messages",
            "blanked (raw mail, texts, addresses)",
        ),
        (report.attachments, "attachments", "removed"),
        (
            report.outbox,
            "outgoing mails",
            "scrubbed (mail still queued is not sent)",
        ),
        (report.events, "events", "scrubbed of the address and name"),
        (
            report.participants,
            "participant entries",
            "replaced or removed",
        ),
        (report.mentions, "other mails that named them", "scrubbed"),
        (report.names, "names", "searched for and replaced"),
    ];
    for (n, what, how) in lines {
        println!("  {n:>6} {what} {verb} {how}");
    }
    if !dry_run {
        println!("The tickets stay in the statistics; the record keeps no address.");
    }
    Ok(ExitCode::SUCCESS)
}

/// The OAuth2 sections the source and the outbox log in with, each once.
fn oauth_sections(config: &Config) -> Vec<Arc<crate::oauth::OAuth2>> {
    let mut out: Vec<Arc<crate::oauth::OAuth2>> = Vec::new();
    let mut add = |login: &crate::config::Login| {
        if let crate::config::Login::OAuth2(o) = login
            && !out.iter().any(|x| Arc::ptr_eq(x, o))
        {
            out.push(o.clone());
        }
    };
    if let crate::config::SourceSettings::Imap(mailboxes) = &config.source {
        for i in mailboxes {
            add(&i.login);
        }
    }
    if let crate::config::TransportSettings::Smtp(s) = &config.outbox.transport
        && let Some((_, login)) = &s.credentials
    {
        add(login);
    }
    out
}

/// `check-config`: asks each OAuth2 section's token server for a token, as `run` would
/// at its first login, and says how it went (never the token).
async fn check_tokens(config: &Config) -> Result<()> {
    for oauth in oauth_sections(config) {
        let key = oauth.settings.key.clone();
        let token = oauth.access_token().await.map_err(|e| {
            let message = e.to_string();
            anyhow::Error::new(crate::config::ConfigError::Invalid {
                key: key.clone(),
                message: format!("no token: {message}"),
                hint: "fix what the message names, then run check-config again".into(),
            })
        })?;
        let left = token
            .expires
            .saturating_duration_since(std::time::Instant::now());
        println!(
            "{key}: token refresh ok (the access token is valid for {})",
            humantime::format_duration(std::time::Duration::from_secs(left.as_secs()))
        );
    }
    Ok(())
}

/// `run`: the first tokens before any mail is touched. A refused grant stops the start
/// (a person must sign in again); a token server out of reach does not (the source and the
/// outbox retry).
async fn first_tokens(config: &Config) -> Result<()> {
    for oauth in oauth_sections(config) {
        match oauth.access_token().await {
            Ok(_) => {}
            Err(e) if e.is_permanent() => {
                return Err(anyhow::Error::new(crate::config::ConfigError::Invalid {
                    key: oauth.settings.key.clone(),
                    message: format!("no token: {e}"),
                    hint: "fix what the message names, then start again".into(),
                }));
            }
            Err(e) => tracing::warn!(error = %e, "no OAuth2 token yet: the logins will retry"),
        }
    }
    Ok(())
}

/// `helpdesk oauth login`: one sign-in, its refresh token written for `run`.
async fn oauth_login(
    config_path: &Path,
    provider: Option<String>,
    section: &str,
    port: u16,
) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    let oauth = oauth_sections(&config)
        .into_iter()
        .find(|o| o.settings.key == section)
        .ok_or_else(|| {
            anyhow::Error::new(BadValue(format!(
                "--section {section}: no such [{section}] section used by the source or the \
                 outbox (set auth = \"oauth2\" on the side that uses it)"
            )))
        })?;
    if let Some(p) = provider {
        let want = crate::oauth::Provider::parse(&p).ok_or_else(|| {
            anyhow::Error::new(BadValue(format!(
                "--provider {p:?}: use microsoft, google or custom"
            )))
        })?;
        if want != oauth.settings.provider {
            return Err(anyhow::Error::new(BadValue(format!(
                "--provider {p}: [{section}] is for {:?}; change its provider, or name \
                 another section with --section",
                oauth.settings.provider
            ))));
        }
    }
    let show = |prompt: &crate::oauth::LoginPrompt| {
        match &prompt.code {
            Some(code) => println!("Open {} and enter the code {code}", prompt.url),
            None => println!(
                "Open this page in a browser on this machine:\n{}",
                prompt.url
            ),
        }
        println!(
            "Sign in as the mailbox's user (waiting up to {}).",
            humantime::format_duration(std::time::Duration::from_secs(prompt.expires_in.as_secs()))
        );
    };
    let outcome = if oauth.settings.provider == crate::oauth::Provider::Google {
        crate::oauth::loopback_login(&oauth, port, show).await?
    } else {
        crate::oauth::device_login(&oauth, show).await?
    };
    println!(
        "Signed in: the refresh token is in {} (mode 600){}",
        outcome.refresh_token_file.display(),
        outcome
            .scopes
            .map(|s| format!("; scopes granted: {}", s.join(" ")))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// `helpdesk dashboard`: the pages alone, until SIGINT/SIGTERM.
async fn dashboard(config_path: &Path, listen: Option<String>) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    let mut settings = config
        .dashboard
        .clone()
        .unwrap_or(crate::config::DashboardSettings {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8025)),
            token: None,
        });
    if let Some(listen) = listen {
        settings.listen = listen.parse().map_err(|_| {
            anyhow::Error::new(BadValue(format!(
                "--listen {listen:?}: give an IP address and port, e.g. 127.0.0.1:8025"
            )))
        })?;
    } else if config.dashboard.is_none() {
        return Err(anyhow::Error::new(BadValue(
            "no [dashboard] in the configuration: add one (listen = \"127.0.0.1:8025\") or give --listen"
                .into(),
        )));
    }
    settings.check()?;
    let store = app::open_existing_store(&config).await?;
    let dashboard = crate::web::Dashboard::new(Arc::new(config), settings, store, None)?;
    let listener = dashboard.bind().await?;
    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        app::shutdown_signal().await;
        trigger.cancel();
    });
    dashboard.serve(listener, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

/// `store copy`: SQLite into an empty PostgreSQL database.
async fn store_copy(from: &str, to: &str, password_file: Option<&Path>) -> Result<ExitCode> {
    use crate::config::Backend;
    if Backend::of(from) != Backend::Sqlite || !from.starts_with("sqlite:") {
        anyhow::bail!("--from {from:?}: give the SQLite desk as sqlite:PATH");
    }
    if Backend::of(to) != Backend::Postgres {
        anyhow::bail!("--to {to:?}: give the PostgreSQL database as postgres://USER@HOST/DATABASE");
    }
    let password = match password_file {
        Some(file) => Some(secrecy::SecretString::from(
            std::fs::read_to_string(file)
                .with_context(|| format!("--password-file {}", file.display()))?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        )),
        None => std::env::var("HELPDESK_DATABASE_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty())
            .map(secrecy::SecretString::from),
    };
    let source = crate::store::sqlite::SqliteStore::open_existing(from).await?;
    let target = crate::store::postgres::PgStore::open(to, password.as_ref())
        .await
        .map_err(|e| e.at(to))?;
    let started = std::time::Instant::now();
    let counts = crate::store::copy::sqlite_to_postgres(&source, &target, |table, rows| {
        eprintln!("{table}: {rows} rows copied");
    })
    .await?;
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    for (table, rows) in &counts {
        println!("{table:<20} {rows:>10}");
    }
    println!(
        "copied {total} rows from {from} to {to} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}
