//! `helpdesk tickets …`: list and show tickets, and act on one through the same decision
//! as an agent's mail.

use super::*;

pub(super) async fn tickets(config_path: &Path, cmd: TicketsCommand) -> Result<ExitCode> {
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
            let due_before = due_before(due_within)?;
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
                ..TicketFilter::default()
            };
            let list = store.list_tickets(&filter).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                print_list(&list);
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
            let duration = wait_duration(duration)?;
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
                print_detail(&detail, config.desk.time.calendar.time_zone);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Runs one command on a ticket through the pipeline's decide/apply path, then sends what
/// it queued (unless `--no-send`).
pub(super) async fn act(
    config_path: &Path,
    act: ActArgs,
    command: DeskCommand,
) -> Result<ExitCode> {
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

/// `--due-within 2h`: the moment before which a target must fall due.
fn due_before(due_within: Option<String>) -> Result<Option<i64>> {
    due_within
        .map(|d| {
            humantime::parse_duration(&d)
                .map(|d| {
                    use crate::clock::Clock;
                    crate::clock::SystemClock.now() + d.as_millis() as i64
                })
                .map_err(|e| {
                    anyhow::Error::new(BadValue(format!("--due-within {d:?}: {e} (e.g. 2h, 1d)")))
                })
        })
        .transpose()
}

/// `tickets wait [DURATION]`: at most a year.
fn wait_duration(duration: Option<String>) -> Result<Option<std::time::Duration>> {
    duration
        .map(|d| {
            humantime::parse_duration(&d)
                .map_err(|e| {
                    anyhow::Error::new(BadValue(format!("DURATION {d:?}: {e} (e.g. 3d, 12h)")))
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
        .transpose()
}

/// One tab-separated line per ticket.
fn print_list(list: &[crate::store::TicketSummary]) {
    for t in list {
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

/// One ticket for people: its fields, its events in the desk's zone, its messages.
fn print_detail(detail: &crate::store::TicketDetail, tz: chrono_tz::Tz) {
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
