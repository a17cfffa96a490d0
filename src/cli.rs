//! The `helpdesk` command line. Data goes to stdout, logs to stderr.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::app::{self, App};
use crate::config::Config;
use crate::domain::{ReferenceCode, TicketStatus};
use crate::ingest::maildir::MaildirSource;
use crate::pipeline::SourceRef;
use crate::store::StoreError;

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
    /// Look at tickets.
    #[command(subcommand)]
    Tickets(TicketsCommand),
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
}

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Mail files (RFC 5322); standard input when none is given.
    pub files: Vec<PathBuf>,
    /// Queue acknowledgements but do not send them now.
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
        #[arg(long)]
        json: bool,
    },
    /// Show one ticket with its messages.
    Show {
        code: String,
        #[arg(long)]
        json: bool,
    },
}

/// sysexits.h: the database is unreachable, try again later.
const EX_TEMPFAIL: u8 = 75;
const EX_NOINPUT: u8 = 66;
const EX_CONFIG: u8 = 78;

pub async fn main(cli: Cli) -> ExitCode {
    match dispatch(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("helpdesk: {}", report(&e));
            if e.chain().any(|c| {
                c.downcast_ref::<StoreError>()
                    .is_some_and(StoreError::is_temporary)
            }) {
                ExitCode::from(EX_TEMPFAIL)
            } else if e
                .chain()
                .any(|c| c.downcast_ref::<crate::config::ConfigError>().is_some())
            {
                ExitCode::from(EX_CONFIG)
            } else {
                ExitCode::FAILURE
            }
        }
    }
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
            crate::render::Renderer::new(config.gateway.templates_dir.as_deref())
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
            let store = app::open_store(&config).await?;
            let app = App::build(config, store).await?;
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
    }
}

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
    let store = app::open_store(&config).await?;
    let app = App::build(config, store).await?;
    let mut inputs: Vec<(String, Result<Vec<u8>, std::io::Error>)> = Vec::new();
    if args.files.is_empty() {
        let mut raw = Vec::new();
        let read = std::io::stdin().read_to_end(&mut raw).map(|_| raw);
        inputs.push(("-".into(), read));
    } else {
        for f in &args.files {
            inputs.push((f.display().to_string(), std::fs::read(f)));
        }
    }
    let mut unreadable = 0;
    for (name, raw) in inputs {
        let raw = match raw {
            Ok(raw) => raw,
            Err(e) => {
                eprintln!("helpdesk: cannot read {name}: {e}");
                unreadable += 1;
                continue;
            }
        };
        let outcome = app
            .pipeline
            .process(&SourceRef::none(), &raw)
            .await
            .map_err(|e| e.at(&app.config.database_url))
            .with_context(|| format!("filing {name}"))?;
        println!(
            "{name}\t{}\t{}",
            outcome.label(),
            outcome.code().map(|c| c.as_str()).unwrap_or("-")
        );
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
    Ok(if unreadable > 0 {
        ExitCode::from(EX_NOINPUT)
    } else {
        ExitCode::SUCCESS
    })
}

async fn tickets(config_path: &Path, cmd: TicketsCommand) -> Result<ExitCode> {
    let config = Config::load(config_path)?;
    let store = app::open_store(&config).await?;
    match cmd {
        TicketsCommand::List { status, json } => {
            let status = match status {
                Some(s) => Some(s.parse::<TicketStatus>().map_err(|e| {
                    anyhow::anyhow!(
                        "--status: {e} (use new, open, waiting_on_customer, resolved or closed)"
                    )
                })?),
                None => None,
            };
            let list = store.list_tickets(status).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for t in &list {
                    println!(
                        "{}\t{}\t{}\t{}\t{}\t{}",
                        t.code, t.status, t.tier, t.messages, t.customer, t.subject
                    );
                }
            }
        }
        TicketsCommand::Show { code, json } => {
            let parsed = ReferenceCode::parse(
                &config.gateway.reference_prefix,
                code.trim_matches(['[', ']']),
            )?;
            let Some(detail) = store.ticket_detail(&parsed).await? else {
                bail!("no ticket {parsed}");
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
                for m in &detail.messages {
                    println!(
                        "\n--- {} {} from {} ({}) {}",
                        m.received_at,
                        m.direction,
                        m.from.as_deref().unwrap_or("?"),
                        m.outcome,
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
