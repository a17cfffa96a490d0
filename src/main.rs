use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in a log file or journal.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_env("HELPDESK_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let cli = helpdesk::cli::Cli::parse();
    helpdesk::cli::main(cli).await
}
