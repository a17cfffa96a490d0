use std::io::IsTerminal;
use std::process::ExitCode;

use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // Parsed before any thread starts (clap starts none): the arenas depend on the command.
    let cli = <helpdesk::cli::Cli as clap::Parser>::parse();
    if !matches!(
        cli.command,
        helpdesk::cli::Command::Stats(_) | helpdesk::cli::Command::Report(_)
    ) {
        limit_malloc_arenas();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("helpdesk: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            // Colour codes only for a person at a terminal, never in a log file or journal.
            .with_ansi(std::io::stderr().is_terminal())
            .with_env_filter(
                EnvFilter::try_from_env("HELPDESK_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
            )
            .init();
        helpdesk::cli::main(cli).await
    })
}

/// glibc gives every thread that allocates an arena of its own (up to eight per core), and
/// memory freed into one is not reused by the others: with tokio's workers, sqlx's SQLite
/// threads and the threads that parse mail ahead, a 3,000-mail IMAP backlog peaked at
/// 37.9 MiB (mean of three runs) against 32.8 MiB with two arenas and 29.4 MiB with one. The
/// price is contention on the one arena's lock: an `ingest` of 10,000 files took 5.46 s
/// instead of 4.98 s (mean of four), a cost the IMAP backlog did not show within its noise
/// (it waits on the mail servers). Must run before any other thread starts;
/// `MALLOC_ARENA_MAX` in the environment still wins. Not for the one-shot `stats` and
/// `report`, whose two threads (one reading the log, one adding it up) both allocate for
/// every event: on one arena, `stats` over 30 days of a 1,000,000-ticket desk took 1.35 s,
/// against 1.08 s with four (`MALLOC_ARENA_MAX=4`; medians of three), for half a MiB less.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes a malloc tunable; no other thread exists yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 1);
        }
    }
}
