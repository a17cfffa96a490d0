//! The IMAP source against two real servers (Dovecot and Cyrus) with the things real
//! mailboxes do: other clients changing flags mid-backlog, folders under `INBOX.`, no
//! MOVE, and a store that fails on one mail of a batch.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures::TryStreamExt;
use helpdesk::config::TlsMode;
use helpdesk::ingest::imap::{ImapSession, ImapSource, PassReport};
use helpdesk::store::Checkpoint;

fn now_millis() -> i64 {
    helpdesk::clock::Clock::now(&helpdesk::clock::SystemClock)
}
use tokio_util::sync::CancellationToken;

use crate::support::cyrus::Cyrus;
use crate::support::flaky::FlakyStore;
use crate::support::stack::MailStack;
use crate::support::{Desk, customer_mail, embedded_config};

fn backlog(n: usize, tag: &str) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            customer_mail(
                "customer@example.test",
                &format!("{tag} request {i}"),
                &format!("{tag}-{i}@customer.test"),
                "Hello, my laptop will not start since the update.",
            )
        })
        .collect()
}

/// Passes until one files nothing new, tolerating the errors a pass may end with
/// (a UID answered without a body is fetched again on the next pass).
async fn passes_until_quiet(source: &ImapSource, session: &mut ImapSession) -> usize {
    let token = CancellationToken::new();
    let mut total = 0;
    for _ in 0..40 {
        match source.pass(session, &token).await {
            Ok(PassReport { processed: 0, .. }) => return total,
            Ok(r) => total += r.processed,
            Err(e) => eprintln!("pass ended early: {e:#}"),
        }
    }
    panic!("the mailbox never settled after 40 passes ({total} mails filed)");
}

/// Another client that keeps changing flags on every mail until told to stop.
fn flag_changer(
    mut session: ImapSession,
    command: &'static str,
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<usize>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let task = tokio::spawn(async move {
        session.select("INBOX").await.unwrap();
        let mut rounds = 0;
        while !flag.load(Ordering::Relaxed) {
            let on = rounds % 2 == 0;
            let cmd = command.replace("{sign}", if on { "+" } else { "-" });
            if let Ok(stream) = session.uid_store("1:*", &cmd).await {
                let _: Result<Vec<_>, _> = stream.try_collect().await;
            }
            rounds += 1;
        }
        session.logout().await.ok();
        rounds
    });
    (stop, task)
}

async fn count(desk: &Desk, sql: &'static str) -> i64 {
    desk.count(sql).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_cyrus_a_backlog_is_filed_once_while_another_client_flags_mail() {
    const N: usize = 100;
    let cyrus = Cyrus::start("");
    cyrus.append("support", &backlog(N, "cyrus")).await;
    let desk = Desk::new().await;
    let mut settings = cyrus.settings("support");
    settings.batch_size = 20;
    let source = ImapSource::new(settings, desk.app.pipeline.clone());
    let mut session = cyrus.session("support").await;
    let folders = source.prepare(&mut session).await.expect("folders ready");
    assert_eq!(
        folders.processed, "INBOX.Processed",
        "Cyrus keeps personal folders under INBOX."
    );
    assert_eq!(folders.quarantine, "INBOX.Quarantine");

    let (stop, changer) = flag_changer(cyrus.session("support").await, "{sign}FLAGS (\\Flagged)");
    let filed = passes_until_quiet(&source, &mut session).await;
    stop.store(true, Ordering::Relaxed);
    let rounds = changer.await.unwrap();
    assert!(
        rounds > 0,
        "the other client changed flags during the backlog"
    );
    let unsolicited = source.stats().unsolicited_fetches.load(Ordering::Relaxed);
    eprintln!("flag rounds: {rounds}, unsolicited FETCH responses set aside: {unsolicited}");
    assert!(
        unsolicited > 0,
        "Cyrus reported no flag change inside our fetches: the test did not exercise the case"
    );

    assert_eq!(filed, N);
    assert_eq!(count(&desk, "SELECT COUNT(*) FROM tickets").await, N as i64);
    assert_eq!(
        count(&desk, "SELECT COUNT(DISTINCT message_id) FROM messages WHERE direction = 'inbound' AND outcome = 'new_ticket'").await,
        N as i64
    );
    assert_eq!(
        count(
            &desk,
            "SELECT COUNT(*) FROM messages WHERE outcome IN ('quarantined', 'duplicate')"
        )
        .await,
        0,
        "no flag change became an empty mail or a duplicate"
    );
    assert_eq!(cyrus.messages("support", "INBOX.Processed").await.len(), N);
    assert!(cyrus.messages("support", "INBOX").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_move_a_mail_whose_deleted_flag_was_wiped_is_copied_once() {
    const N: usize = 100;
    let cyrus = Cyrus::start("suppress_capabilities: MOVE");
    cyrus.append("support", &backlog(N, "nomove")).await;
    let desk = Desk::new().await;
    let mut settings = cyrus.settings("support");
    settings.batch_size = 10;
    let source = ImapSource::new(settings, desk.app.pipeline.clone());
    let mut session = cyrus.session("support").await;
    assert!(!session.capabilities().await.unwrap().has_str("MOVE"));
    source.prepare(&mut session).await.unwrap();

    // Another client sets the flags outright (STORE FLAGS), wiping our \Deleted.
    let (stop, changer) = flag_changer(cyrus.session("support").await, "FLAGS (\\Seen)");
    let token = CancellationToken::new();
    for _ in 0..3 {
        let _ = source.pass(&mut session, &token).await;
    }
    stop.store(true, Ordering::Relaxed);
    changer.await.unwrap();
    passes_until_quiet(&source, &mut session).await;
    // Leftovers are expunged on the next pass; give it one more.
    source.pass(&mut session, &token).await.unwrap();

    assert_eq!(count(&desk, "SELECT COUNT(*) FROM tickets").await, N as i64);
    let processed = cyrus.messages("support", "INBOX.Processed").await;
    assert_eq!(processed.len(), N, "each mail copied exactly once");
    let saved = source.stats().copies_not_repeated.load(Ordering::Relaxed);
    eprintln!("copies not repeated: {saved}");
    assert!(
        saved > 0,
        "no \\Deleted flag was wiped: the test did not exercise the case"
    );
    assert!(cyrus.messages("support", "INBOX").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_that_can_neither_be_found_nor_created_stops_the_source_with_the_servers_words() {
    let cyrus = Cyrus::start("");
    let desk = Desk::new().await;
    let mut settings = cyrus.settings("support");
    settings.processed_folder = "user.someone-else.Processed".into();
    let source = ImapSource::new(settings, desk.app.pipeline.clone());
    let mut session = cyrus.session("support").await;
    let err = format!("{:#}", source.prepare(&mut session).await.unwrap_err());
    assert!(err.contains("user.someone-else.Processed"), "{err}");
    assert!(err.contains("source.imap.processed_folder"), "{err}");
    assert!(
        err.to_lowercase().contains("permission denied"),
        "the server's words: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_that_fails_inside_a_batch_is_never_passed_by_the_checkpoint() {
    a_failure_inside_a_batch(200).await;
}

/// Batches of three: mail 7 fails in the third batch, filed while the fourth is already
/// being fetched; the groups before it are committed and moved, nothing after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_while_the_next_batch_is_fetched_stops_at_the_failing_mail() {
    a_failure_inside_a_batch(3).await;
}

async fn a_failure_inside_a_batch(batch_size: u32) {
    const N: usize = 20;
    let stack = MailStack::start();
    stack.append("support", "INBOX", &backlog(N, "flaky")).await;
    // Mail 7 fails twice: once in its batch, once alone.
    let desk = Desk::with_store(&embedded_config(), |inner| {
        Arc::new(FlakyStore::new(inner, "flaky-7@customer.test", 2))
    })
    .await;
    let mut settings = stack.imap_settings("support", TlsMode::StartTls);
    settings.batch_size = batch_size;
    let source = ImapSource::new(settings, desk.app.pipeline.clone());
    let mut session = stack.imap("support").await;
    source.prepare(&mut session).await.unwrap();
    let token = CancellationToken::new();
    let err = source.pass(&mut session, &token).await.unwrap_err();
    assert!(format!("{err:#}").contains("injected failure"), "{err:#}");

    // What reached Processed was filed; mail 7 and those after it were not moved.
    let filed: BTreeSet<String> = sqlx::query_as::<_, (String,)>(
        "SELECT message_id FROM messages WHERE direction = 'inbound'",
    )
    .fetch_all(&desk.db().await)
    .await
    .unwrap()
    .into_iter()
    .map(|(m,)| m)
    .collect();
    assert_eq!(
        filed.len(),
        7,
        "mails 0-6 filed one by one, then the failure stopped it"
    );
    for raw in stack.messages("support", "Processed").await {
        let mail = helpdesk::inbound::parse(&raw).unwrap();
        assert!(
            filed.contains(&mail.message_id.unwrap()),
            "an unfiled mail reached Processed"
        );
    }

    // The next pass files the rest, each exactly once.
    let report = source.pass(&mut session, &token).await.unwrap();
    assert_eq!(report.processed, N - 7);
    assert_eq!(
        count(
            &desk,
            "SELECT COUNT(*) FROM messages WHERE direction = 'inbound'"
        )
        .await,
        N as i64
    );
    assert_eq!(count(&desk, "SELECT COUNT(*) FROM tickets").await, N as i64);
    assert_eq!(stack.messages("support", "Processed").await.len(), N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_below_the_checkpoint_without_a_record_is_filed_not_moved() {
    let stack = MailStack::start();
    stack
        .append("support", "INBOX", &backlog(5, "orphan"))
        .await;
    let desk = Desk::new().await;
    let settings = stack.imap_settings("support", TlsMode::StartTls);
    let mut session = stack.imap("support").await;
    let uid_validity = session.select("INBOX").await.unwrap().uid_validity.unwrap();
    // A checkpoint already past the five mails, as a failed batch of an older version left it.
    let key = format!("imap://{}@{}/INBOX", settings.username, settings.host);
    let store = desk.app.pipeline.store();
    let mut tx = store.begin().await.unwrap();
    tx.set_checkpoint(
        &key,
        Checkpoint {
            uid_validity,
            last_uid: 5,
        },
        now_millis(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let source = ImapSource::new(settings, desk.app.pipeline.clone());
    source.prepare(&mut session).await.unwrap();
    let report = source
        .pass(&mut session, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.processed, 5);
    assert_eq!(count(&desk, "SELECT COUNT(*) FROM tickets").await, 5);
    assert_eq!(stack.messages("support", "Processed").await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_keeps_filing_when_moving_fails() {
    let stack = MailStack::start();
    stack.append("support", "INBOX", &backlog(3, "stuck")).await;
    let desk = Desk::new().await;
    let source = ImapSource::new(
        stack.imap_settings("support", TlsMode::StartTls),
        desk.app.pipeline.clone(),
    );
    let mut session = stack.imap("support").await;
    source.prepare(&mut session).await.unwrap();
    // The folder disappears behind the gateway's back: moves fail, filing must not.
    session.delete("Processed").await.unwrap();
    let token = CancellationToken::new();
    let report = source.pass(&mut session, &token).await.unwrap();
    assert_eq!(report.processed, 3);
    stack.append("support", "INBOX", &backlog(2, "later")).await;
    let report = source.pass(&mut session, &token).await.unwrap();
    assert_eq!(
        report.processed, 2,
        "new mail is filed although old mail cannot be moved"
    );
    assert_eq!(count(&desk, "SELECT COUNT(*) FROM tickets").await, 5);
}
