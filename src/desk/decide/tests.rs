//! Decisions as tables of situations: no store, no runtime.

use std::collections::BTreeMap;

use super::*;
use crate::domain::{CodePrefix, ReferenceCode};
use crate::roster::{Agent, Roster, TierSettings};
use crate::routing::Rules;

fn addr(s: &str) -> EmailAddress {
    EmailAddress::parse(s).unwrap()
}

fn gateway() -> GatewaySettings {
    GatewaySettings {
        support_address: addr("support@example.com"),
        support_name: "Support".into(),
        reference_prefix: CodePrefix::new("HD").unwrap(),
        default_language: Language::Fr,
        templates_dir: None,
        max_participants: 10,
        contact_forms: Vec::new(),
        organisation: "Support".into(),
    }
}

fn desk() -> DeskSettings {
    let agent = |name: &str, tiers: &[Tier], languages: &[Language]| Agent {
        name: name.into(),
        address: addr(&format!("{}@example.com", name.to_lowercase())),
        tiers: tiers.to_vec(),
        categories: Vec::new(),
        languages: languages.to_vec(),
    };
    let mut tiers = BTreeMap::new();
    tiers.insert(
        Tier::L3Expert,
        TierSettings {
            labels: BTreeMap::new(),
            address: Some(addr("n3@example.com")),
        },
    );
    DeskSettings {
        knowledge: Default::default(),
        reports: Default::default(),
        strangers: crate::config::StrangerPolicy::NewTicket,
        require_agent_auth: false,
        agent_auth_chosen: true,
        agent_authserv_id: None,
        dkim_dns: None,
        notify_participants: true,
        reply_from: "{agent} ({support})".into(),
        budget: crate::config::MailBudget::default(),
        rules: Rules::new(Vec::new(), true),
        roster: Roster::new(
            vec![
                agent("Alice", &[Tier::L1FrontLine], &[Language::Fr]),
                agent("Bob", &[Tier::L2Advanced], &[Language::En, Language::Fr]),
            ],
            tiers,
        ),
        reopen_threshold: 2,
        notify_customer_on_assignment: false,
        time: crate::timing::TimeSettings::default(),
    }
}

fn mail(from: &str, subject: &str, body: &str) -> InboundMail {
    let raw = format!(
        "From: {from}\r\nTo: support@example.com\r\nSubject: {subject}\r\nMessage-ID: <m1@example.fr>\r\n\r\n{body}\r\n"
    );
    crate::inbound::parse(raw.as_bytes()).unwrap()
}

fn ticket(
    status: TicketStatus,
    tier: Tier,
    assignee: Option<&str>,
    reopen_count: u32,
) -> TicketRef {
    TicketRef {
        id: 7,
        code: ReferenceCode::from_stored("HD-7K3M9QXA".into()),
        status,
        tier,
        category: "printer".parse().unwrap(),
        priority: Priority::Normal,
        assignee: assignee.map(addr),
        customer: addr("marie@example.fr"),
        customer_name: Some("Marie".into()),
        subject: "Imprimante".into(),
        language: Language::Fr,
        reopen_count,
        participants: vec![addr("marie@example.fr")],
        clock: crate::timing::TicketClock::started(0),
        vendor: None,
        vendor_ticket: None,
        suggested_articles: Vec::new(),
    }
}

fn situation<'a>(
    mail: &'a InboundMail,
    thread: Option<(&'a TicketRef, ThreadedBy)>,
    gateway: &'a GatewaySettings,
    desk: &'a DeskSettings,
    loads: &'a HashMap<EmailAddress, Load>,
) -> MailSituation<'a> {
    MailSituation {
        mail,
        reading: read_mail(mail, gateway, desk),
        machine: None,
        earlier: None,
        thread,
        sender_is_participant: true,
        participants: Vec::new(),
        agent_dkim: None,
        collision: None,
        gateway,
        desk,
        loads,
        deliverable: Ok(()),
        now: 1_000,
    }
}

#[test]
fn a_new_mail_is_routed_assigned_acknowledged_and_the_agent_gets_the_thread() {
    let (g, d, loads) = (gateway(), desk(), HashMap::new());
    let m = mail(
        "Marie <marie@example.fr>",
        "Imprimante en panne",
        "Bourrage papier au 2e.",
    );
    let plan = decide_mail(&situation(&m, None, &g, &d, &loads));
    assert_eq!(plan.outcome, PlannedOutcome::NewTicket);
    let PlanTicket::New(new) = &plan.ticket else {
        panic!("{:?}", plan.ticket)
    };
    assert_eq!(new.routing.category.as_str(), "printer");
    assert_eq!(new.routing.tier, Tier::L1FrontLine);
    assert_eq!(
        plan.queued(),
        vec![
            (Template::Acknowledgement, &addr("marie@example.fr")),
            (Template::AgentNotification, &addr("alice@example.com")),
        ]
    );
    assert!(
        plan.effects
            .contains(&Effect::Assign(Some(addr("alice@example.com"))))
    );
    assert_eq!(
        plan.events(),
        vec![EventKind::Created, EventKind::Routed, EventKind::Assigned]
    );
    let notification = plan.effects.iter().find_map(|e| match e {
        Effect::Queue(m) if m.template == Template::AgentNotification => Some(m),
        _ => None,
    });
    assert!(notification.unwrap().include_thread);
}

#[test]
fn a_security_mail_goes_to_l2_as_urgent() {
    let (g, d, loads) = (gateway(), desk(), HashMap::new());
    let m = mail(
        "marie@example.fr",
        "Phishing",
        "J'ai cliqué sur un lien de hameçonnage",
    );
    let plan = decide_mail(&situation(&m, None, &g, &d, &loads));
    let PlanTicket::New(new) = &plan.ticket else {
        panic!()
    };
    assert_eq!(
        (new.routing.tier, new.routing.priority),
        (Tier::L2Advanced, Priority::Urgent)
    );
    assert!(
        plan.effects
            .contains(&Effect::Assign(Some(addr("bob@example.com"))))
    );
}

#[test]
fn with_nobody_fitting_the_tier_address_is_told_and_the_ticket_stays_unassigned() {
    let (g, loads) = (gateway(), HashMap::new());
    let mut d = desk();
    d.rules = Rules::new(
        vec![
            crate::routing::Rule::new(crate::routing::RuleSpec {
                name: "experts".into(),
                keywords: vec!["sap".into()],
                category: "software".parse().unwrap(),
                tier: Some(Tier::L3Expert),
                ..Default::default()
            })
            .unwrap(),
        ],
        true,
    );
    let m = mail("marie@example.fr", "SAP", "Le module SAP refuse ma saisie");
    let plan = decide_mail(&situation(&m, None, &g, &d, &loads));
    assert!(
        !plan.effects.iter().any(|e| matches!(e, Effect::Assign(_))),
        "a new ticket is unassigned already"
    );
    assert!(plan.events().contains(&EventKind::Unassigned));
    assert!(
        plan.queued()
            .contains(&(Template::AgentNotification, &addr("n3@example.com")))
    );
}

#[test]
fn a_desk_without_a_roster_files_and_acknowledges_only() {
    let (g, loads) = (gateway(), HashMap::new());
    let d = DeskSettings {
        rules: Rules::new(Vec::new(), true),
        ..DeskSettings::default()
    };
    let m = mail("marie@example.fr", "VPN", "Le VPN coupe.");
    let plan = decide_mail(&situation(&m, None, &g, &d, &loads));
    assert_eq!(
        plan.queued(),
        vec![(Template::Acknowledgement, &addr("marie@example.fr"))]
    );
    assert_eq!(plan.events(), vec![EventKind::Created, EventKind::Routed]);
}

#[test]
fn a_customer_follow_up_tells_the_assignee_the_new_text_only() {
    let t = ticket(
        TicketStatus::Open,
        Tier::L1FrontLine,
        Some("alice@example.com"),
        0,
    );
    let plan = customer_reply(&t, "Toujours en panne.");
    assert_eq!(plan.outcome, PlannedOutcome::Appended { reopened: false });
    assert_eq!(
        plan.queued(),
        vec![(Template::AgentFollowUp, &addr("alice@example.com"))]
    );
    let Some(Effect::Queue(out)) = plan.effects.iter().find(|e| matches!(e, Effect::Queue(_)))
    else {
        panic!()
    };
    assert!(!out.include_thread);
    assert_eq!(
        out.new_text.as_ref().unwrap().text.trim(),
        "Toujours en panne."
    );
}

#[test]
fn machines_and_agents_notes_do_not_move_the_ticket() {
    let (g, d, loads) = (gateway(), desk(), HashMap::new());
    let t = ticket(
        TicketStatus::Resolved,
        Tier::L1FrontLine,
        Some("alice@example.com"),
        0,
    );
    let auto = mail("marie@example.fr", "Re: [HD-7K3M9QXA] Imprimante", "Absent");
    let mut s = situation(&auto, Some((&t, ThreadedBy::ReferenceCode)), &g, &d, &loads);
    s.machine = Some(MachineKind::AutoReply);
    let plan = decide_mail(&s);
    assert!(plan.queued().is_empty());
    assert!(
        !plan
            .effects
            .iter()
            .any(|e| matches!(e, Effect::SetStatus { .. }))
    );

    // An agent's mail is filed as theirs, not as a stranger's.
    let agent = mail(
        "alice@example.com",
        "Re: [HD-7K3M9QXA] Imprimante",
        "#note\nvu",
    );
    let mut s = situation(
        &agent,
        Some((&t, ThreadedBy::ReferenceCode)),
        &g,
        &d,
        &loads,
    );
    s.sender_is_participant = false;
    let plan = decide_mail(&s);
    assert!(matches!(&plan.effects[0], Effect::FileMail(f) if !f.from_non_participant));
    let Effect::Record(r) = &plan.effects[1] else {
        panic!()
    };
    assert_eq!(r.actor, Actor::Agent(addr("alice@example.com")));
}

/// Marie's reply on ticket `t`, decided on the default desk.
fn customer_reply(t: &TicketRef, body: &str) -> Plan {
    let (g, d, loads) = (gateway(), desk(), HashMap::new());
    let m = mail("marie@example.fr", "Re: [HD-7K3M9QXA] Imprimante", body);
    decide_mail(&situation(
        &m,
        Some((t, ThreadedBy::ReferenceCode)),
        &g,
        &d,
        &loads,
    ))
}

fn agent_plan(t: &TicketRef, body: &str) -> Plan {
    let (g, d, loads) = (gateway(), desk(), HashMap::new());
    let m = mail("alice@example.com", "Re: [HD-7K3M9QXA] Imprimante", body);
    let mut s = situation(&m, Some((t, ThreadedBy::ReferenceCode)), &g, &d, &loads);
    s.sender_is_participant = false;
    s.participants = vec![addr("marie@example.fr"), addr("paul@example.fr")];
    decide_mail(&s)
}

fn receipt(plan: &Plan) -> Vec<(String, bool)> {
    plan.effects
        .iter()
        .find_map(|e| match e {
            Effect::Queue(m) if m.template == Template::AgentReceipt => Some(
                m.receipt
                    .iter()
                    .map(|l| (l.command.clone(), l.applied))
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default()
}

/// Whatever commands come with an answer, each person receives the answer before any
/// status mail those commands queue for them.
#[test]
fn an_answer_goes_out_before_the_status_mails_its_commands_queue() {
    let t = ticket(
        TicketStatus::Open,
        Tier::L1FrontLine,
        Some("alice@example.com"),
        0,
    );
    for commands in [
        "#resolve",
        "#close",
        "#wait 2d",
        "#escalate L2 needs a DBA",
        "#take\n#resolve",
        "#priority urgent\n#resolve",
        "#assign bob@example.com",
    ] {
        let plan = agent_plan(&t, &format!("{commands}\n\nVoici la réponse."));
        for to in [addr("marie@example.fr"), addr("paul@example.fr")] {
            let kinds: Vec<Template> = plan
                .effects
                .iter()
                .filter_map(|e| match e {
                    Effect::Queue(m) if m.to == to => Some(m.template),
                    _ => None,
                })
                .collect();
            assert_eq!(
                kinds.first(),
                Some(&Template::AgentReply),
                "{commands}: {kinds:?}"
            );
        }
    }
}

#[test]
fn an_agents_reply_goes_to_the_customer_and_participants_and_waits_for_them() {
    let t = ticket(
        TicketStatus::Open,
        Tier::L1FrontLine,
        Some("alice@example.com"),
        0,
    );
    let plan = agent_plan(&t, "Bonjour Marie,\nRedémarrez l'imprimante.\n-- \nAlice");
    assert_eq!(
        plan.queued(),
        vec![
            (Template::AgentReply, &addr("marie@example.fr")),
            (Template::AgentReply, &addr("paul@example.fr")),
        ]
    );
    let Some(Effect::Queue(reply)) = plan.effects.iter().find(|e| matches!(e, Effect::Queue(_)))
    else {
        panic!()
    };
    assert_eq!(
        reply.auto_submitted, None,
        "a person's words, not automatic mail"
    );
    assert_eq!(reply.from_name.as_deref(), Some("Alice (Support)"));
    assert!(reply.forward_attachments);
    assert!(reply.new_text.as_ref().unwrap().text.contains("Redémarrez"));
    assert!(plan.effects.contains(&Effect::FirstResponse));
    assert!(
        plan.effects
            .iter()
            .any(|e| e.status_to() == Some((TicketStatus::WaitingOnCustomer, false)))
    );
    assert!(receipt(&plan).is_empty(), "no commands, no receipt");
}

#[test]
fn commands_apply_in_order_and_the_agent_gets_a_receipt() {
    let t = ticket(TicketStatus::Open, Tier::L1FrontLine, None, 0);
    let plan = agent_plan(
        &t,
        "#priorité haute\n#take\n#escalate L9\n#frobnicate\n\nJe m'en occupe.",
    );
    assert!(plan.effects.contains(&Effect::SetPriority(Priority::High)));
    assert!(
        plan.effects
            .contains(&Effect::Assign(Some(addr("alice@example.com"))))
    );
    assert_eq!(
        receipt(&plan),
        vec![
            ("#priorité haute".to_string(), true),
            ("#take".to_string(), true),
            ("#escalate L9".to_string(), false),
            ("#frobnicate".to_string(), false),
        ]
    );
    let reply = plan.effects.iter().find_map(|e| match e {
        Effect::Queue(m) if m.template == Template::AgentReply => m.new_text.clone(),
        _ => None,
    });
    assert_eq!(
        reply.unwrap().text,
        "Je m'en occupe.",
        "the commands are not sent on"
    );
}

#[test]
fn a_mail_of_commands_only_sends_nothing_to_the_customer_but_the_status_mail() {
    let t = ticket(
        TicketStatus::Open,
        Tier::L1FrontLine,
        Some("alice@example.com"),
        0,
    );
    let plan = agent_plan(&t, "#resolve");
    assert!(
        !plan
            .queued()
            .iter()
            .any(|(t, _)| *t == Template::AgentReply)
    );
    assert!(
        plan.queued()
            .contains(&(Template::StatusUpdate, &addr("marie@example.fr")))
    );
    assert_eq!(receipt(&plan), vec![("#resolve".to_string(), true)]);
    let top = ticket(
        TicketStatus::Open,
        Tier::L4Vendor,
        Some("alice@example.com"),
        0,
    );
    assert_eq!(
        receipt(&agent_plan(&top, "#escalate")),
        vec![("#escalate".to_string(), false)]
    );
}

#[test]
fn a_note_never_reaches_the_customer() {
    let t = ticket(
        TicketStatus::Open,
        Tier::L1FrontLine,
        Some("bob@example.com"),
        0,
    );
    let plan = agent_plan(&t, "#note\nLe client a déjà eu ce souci en mars.");
    assert!(
        !plan
            .queued()
            .iter()
            .any(|(_, to)| **to == addr("marie@example.fr"))
    );
    assert!(
        plan.queued()
            .contains(&(Template::AgentNote, &addr("bob@example.com")))
    );
    assert!(plan.events().contains(&EventKind::NoteAdded));
    assert!(!plan.effects.contains(&Effect::FirstResponse));
}

#[test]
fn a_stranger_gets_a_ticket_of_their_own_or_waits_and_the_assignee_is_told() {
    let (g, loads) = (gateway(), HashMap::new());
    let t = ticket(
        TicketStatus::Open,
        Tier::L1FrontLine,
        Some("alice@example.com"),
        0,
    );
    let m = mail(
        "eve@evil.example",
        "Re: [HD-7K3M9QXA] Imprimante",
        "Moi aussi !",
    );
    // The last: a stranger whose address the outbox cannot use (the attack run's
    // crash: the plan sent mail with no ticket named).
    for (policy, deliverable, outcome_is_new) in [
        (crate::config::StrangerPolicy::NewTicket, true, true),
        (crate::config::StrangerPolicy::Hold, true, false),
        (crate::config::StrangerPolicy::NewTicket, false, false),
    ] {
        let mut d = desk();
        d.strangers = policy;
        let mut s = situation(&m, Some((&t, ThreadedBy::ReferenceCode)), &g, &d, &loads);
        s.sender_is_participant = false;
        if !deliverable {
            s.deliverable = Err("address x@-evil.example: invalid domain".into());
        }
        let plan = decide_mail(&s);
        assert_eq!(
            plan.outcome == PlannedOutcome::NewTicket,
            outcome_is_new,
            "{policy:?}"
        );
        if !outcome_is_new {
            assert_eq!(plan.ticket, PlanTicket::Existing(t.clone()), "{policy:?}");
        }
        assert!(
            !plan
                .queued()
                .iter()
                .any(|(_, to)| **to == addr("marie@example.fr"))
        );
        let told = plan.effects.iter().find_map(|e| match e {
            Effect::Queue(m) if m.to == addr("alice@example.com") => m.reason.clone(),
            _ => None,
        });
        assert!(
            told.unwrap()
                .to_string()
                .contains("is not on ticket HD-7K3M9QXA"),
            "{policy:?}"
        );
    }
}

#[test]
fn customers_close_by_a_word_on_the_first_line_and_rate_with_a_digit() {
    let open = ticket(
        TicketStatus::Open,
        Tier::L1FrontLine,
        Some("alice@example.com"),
        0,
    );
    let plan = customer_reply(&open, "RÉSOLU\nMerci !");
    assert!(
        plan.effects
            .iter()
            .any(|e| e.status_to() == Some((TicketStatus::Resolved, false)))
    );
    assert!(
        plan.queued()
            .contains(&(Template::StatusUpdate, &addr("marie@example.fr")))
    );
    let resolved = ticket(
        TicketStatus::Resolved,
        Tier::L1FrontLine,
        Some("alice@example.com"),
        0,
    );
    let plan = customer_reply(&resolved, "5 parfait");
    assert!(plan.effects.contains(&Effect::Rate {
        score: 5,
        comment: Some("parfait".into())
    }));
    assert_eq!(
        plan.outcome,
        PlannedOutcome::Appended { reopened: false },
        "a rating does not reopen"
    );
    let plan = customer_reply(&resolved, "Ça ne marche toujours pas");
    assert_eq!(plan.outcome, PlannedOutcome::Appended { reopened: true });
}

#[test]
fn with_authentication_required_a_forged_agent_mail_is_a_strangers_and_the_agent_is_told() {
    let (g, loads) = (gateway(), HashMap::new());
    let mut d = desk();
    d.require_agent_auth = true;
    d.agent_authserv_id = Some("mx.example.com".into());
    let t = ticket(
        TicketStatus::Open,
        Tier::L1FrontLine,
        Some("bob@example.com"),
        0,
    );
    let forged = mail(
        "alice@example.com",
        "Re: [HD-7K3M9QXA] Imprimante",
        "#close\nFermé.",
    );
    let mut s = situation(
        &forged,
        Some((&t, ThreadedBy::ReferenceCode)),
        &g,
        &d,
        &loads,
    );
    s.sender_is_participant = false;
    let plan = decide_mail(&s);
    assert_eq!(
        plan.outcome,
        PlannedOutcome::NewTicket,
        "handled as a stranger's mail"
    );
    assert!(!plan.effects.iter().any(|e| {
        e.status_to()
            .is_some_and(|(to, _)| to == TicketStatus::Closed)
    }));
    let refusal = plan.effects.iter().find_map(|e| match e {
        Effect::Queue(m)
            if m.template == Template::AgentReceipt && m.to == addr("alice@example.com") =>
        {
            Some(m.receipt[0].result.clone())
        }
        _ => None,
    });
    assert_eq!(refusal, Some(Notice::NotTakenAsYours));
    // Why, for the operator: in the log of the quoted ticket.
    let why = plan.effects.iter().find_map(|e| match e {
        Effect::Record(EventRecord {
            event: crate::desk::events::Event::CommandsRefused(refused),
            ..
        }) => Some(refused.reason.clone()),
        _ => None,
    });
    assert!(
        why.unwrap()
            .contains("no Authentication-Results from mx.example.com")
    );

    let signed = {
        // The server's result is on top; the same header among the sender's own is not read.
        let raw = "Authentication-Results: mx.example.com; dkim=pass header.d=example.com\r\n\
                   From: alice@example.com\r\nTo: support@example.com\r\nSubject: Re: [HD-7K3M9QXA] Imprimante\r\n\
                   Message-ID: <s1@example.com>\r\n\r\n#close\r\n";
        crate::inbound::parse(raw.as_bytes()).unwrap()
    };
    let mut s = situation(
        &signed,
        Some((&t, ThreadedBy::ReferenceCode)),
        &g,
        &d,
        &loads,
    );
    s.sender_is_participant = false;
    let plan = decide_mail(&s);
    assert!(plan.effects.iter().any(|e| {
        e.status_to()
            .is_some_and(|(to, _)| to == TicketStatus::Closed)
    }));
}

#[test]
fn participants_receive_status_mail_unless_the_desk_says_not() {
    let (g, loads) = (gateway(), HashMap::new());
    let mut t = ticket(TicketStatus::Open, Tier::L1FrontLine, None, 0);
    t.participants = vec![
        addr("marie@example.fr"),
        addr("paul@example.fr"),
        addr("bob@example.com"),
    ];
    for (notify, expected) in [(true, 2), (false, 1)] {
        let mut d = desk();
        d.notify_participants = notify;
        let plan = decide_command(&CommandSituation {
            ticket: &t,
            command: &Command::Resolve,
            actor: Actor::Cli("cli".into()),
            gateway: &g,
            desk: &d,
            loads: &loads,
            now: 0,
        })
        .unwrap();
        let to: Vec<_> = plan
            .queued()
            .into_iter()
            .map(|(_, to)| to.to_string())
            .collect();
        assert_eq!(
            to.len(),
            expected,
            "{to:?}: the agent in Cc (bob) is never among them"
        );
        assert_eq!(to[0], "marie@example.fr");
    }
}

#[test]
fn a_customers_commands_are_not_applied_and_the_assignee_is_told() {
    let t = ticket(
        TicketStatus::Open,
        Tier::L1FrontLine,
        Some("alice@example.com"),
        0,
    );
    let plan = customer_reply(&t, "#resolve\n#priority urgent\nMerci");
    assert!(plan.events().contains(&EventKind::CommandsRefused));
    assert!(
        !plan
            .effects
            .iter()
            .any(|e| matches!(e, Effect::SetPriority(_) | Effect::SetStatus { .. }))
    );
    let told = plan.effects.iter().find_map(|e| match e {
        Effect::Queue(m) if m.template == Template::AgentFollowUp => m.reason.clone(),
        _ => None,
    });
    assert!(told.unwrap().to_string().contains("not on the roster"));
}
#[test]
fn the_second_reopening_escalates_by_itself() {
    let (g, d, loads) = (gateway(), desk(), HashMap::new());
    let m = mail(
        "marie@example.fr",
        "Re: [HD-7K3M9QXA] Imprimante",
        "Encore en panne !",
    );
    let once = ticket(
        TicketStatus::Resolved,
        Tier::L1FrontLine,
        Some("alice@example.com"),
        0,
    );
    let plan = decide_mail(&situation(
        &m,
        Some((&once, ThreadedBy::ReferenceCode)),
        &g,
        &d,
        &loads,
    ));
    assert!(!plan.events().contains(&EventKind::Escalated));
    assert!(
        plan.queued()
            .contains(&(Template::StatusUpdate, &addr("marie@example.fr")))
    );

    let twice = ticket(
        TicketStatus::Resolved,
        Tier::L1FrontLine,
        Some("alice@example.com"),
        1,
    );
    let plan = decide_mail(&situation(
        &m,
        Some((&twice, ThreadedBy::ReferenceCode)),
        &g,
        &d,
        &loads,
    ));
    assert!(
        plan.effects
            .iter()
            .any(|e| e.tier_to() == Some(Tier::L2Advanced))
    );
    assert!(
        plan.effects
            .contains(&Effect::Assign(Some(addr("bob@example.com"))))
    );
    let queued = plan.queued();
    assert!(queued.contains(&(Template::AgentNotification, &addr("bob@example.com"))));
    assert!(queued.contains(&(Template::AgentReassigned, &addr("alice@example.com"))));
    let changes: Vec<_> = plan
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::Queue(m) if m.template == Template::StatusUpdate => m.change,
            _ => None,
        })
        .collect();
    assert_eq!(changes, vec![Change::Escalated], "one status mail, not two");
}

#[test]
fn a_duplicate_or_an_unanswerable_sender_opens_nothing() {
    let (g, d, loads) = (gateway(), desk(), HashMap::new());
    let m = mail("marie@example.fr", "Imprimante", "Bourrage");
    let mut s = situation(&m, None, &g, &d, &loads);
    s.earlier = Some(EarlierMail {
        row: 3,
        ticket: Some(1),
        outcome: StoredOutcome::NewTicket,
    });
    let plan = decide_mail(&s);
    assert_eq!(
        plan.outcome,
        PlannedOutcome::Duplicate(StoredOutcome::NewTicket)
    );
    assert_eq!(plan.ticket, PlanTicket::None);
    let mut s = situation(&m, None, &g, &d, &loads);
    s.deliverable = Err("bad".into());
    let plan = decide_mail(&s);
    assert!(matches!(
        plan.outcome,
        PlannedOutcome::Quarantined(QuarantineReason::Unanswerable(_))
    ));
    assert!(plan.queued().is_empty());
}

fn command(t: &TicketRef, c: Command) -> Result<Plan, Refusal> {
    let (g, d, loads) = (gateway(), desk(), HashMap::new());
    decide_command(&CommandSituation {
        ticket: t,
        command: &c,
        actor: Actor::Cli("cli".into()),
        gateway: &g,
        desk: &d,
        loads: &loads,
        now: 1_000,
    })
}

#[test]
fn a_category_the_desk_does_not_know_is_refused_with_the_list() {
    let t = ticket(TicketStatus::Open, Tier::L1FrontLine, None, 0);
    let typo: Category = "imprimnate".parse().unwrap();
    let Err(Refusal::NoSuchCategory { name, known }) =
        command(&t, Command::SetCategory(typo.clone()))
    else {
        panic!("a typo must be refused")
    };
    assert_eq!(name, typo);
    let known: Vec<&str> = known.iter().map(|c| c.as_str()).collect();
    for id in ["printer", "account", "security", "general"] {
        assert!(known.contains(&id), "{known:?}");
    }
    let plan = command(&t, Command::SetCategory("network".parse().unwrap())).unwrap();
    assert!(
        plan.effects
            .contains(&Effect::SetCategory("network".parse().unwrap()))
    );

    // A category of the desk's own rules or labels is known too.
    let mut d = desk();
    d.roster = d.roster.with_category_labels(
        [("badges".parse().unwrap(), Default::default())]
            .into_iter()
            .collect(),
    );
    assert!(d.known_categories().contains(&"badges".parse().unwrap()));
}

#[test]
fn escalation_moves_up_reassigns_and_tells_everyone() {
    let t = ticket(
        TicketStatus::Open,
        Tier::L1FrontLine,
        Some("alice@example.com"),
        0,
    );
    let plan = command(
        &t,
        Command::Escalate {
            to: None,
            reason: Some("needs admin rights".into()),
            vendor: None,
        },
    )
    .unwrap();
    assert_eq!(plan.effects[0].tier_to(), Some(Tier::L2Advanced));
    assert_eq!(
        plan.queued(),
        vec![
            (Template::AgentNotification, &addr("bob@example.com")),
            (Template::AgentReassigned, &addr("alice@example.com")),
            (Template::StatusUpdate, &addr("marie@example.fr")),
        ]
    );
    // To L3, where only the shared address is: unassigned, the address is told.
    let plan = command(
        &t,
        Command::Escalate {
            to: Some(Tier::L3Expert),
            reason: None,
            vendor: None,
        },
    )
    .unwrap();
    assert!(plan.effects.contains(&Effect::Assign(None)));
    assert!(
        plan.queued()
            .contains(&(Template::AgentNotification, &addr("n3@example.com")))
    );
}

#[test]
fn commands_the_ticket_does_not_allow_are_refused() {
    let top = ticket(TicketStatus::Open, Tier::L4Vendor, None, 0);
    assert_eq!(
        command(
            &top,
            Command::Escalate {
                to: None,
                reason: None,
                vendor: None,
            }
        )
        .unwrap_err(),
        Refusal::TopTier(Tier::L4Vendor)
    );
    let l2 = ticket(TicketStatus::Open, Tier::L2Advanced, None, 0);
    assert!(
        command(
            &l2,
            Command::Escalate {
                to: Some(Tier::L1FrontLine),
                reason: None,
                vendor: None,
            }
        )
        .is_err()
    );
    let closed = ticket(TicketStatus::Closed, Tier::L1FrontLine, None, 0);
    assert_eq!(
        command(&closed, Command::Resolve).unwrap_err(),
        Refusal::Closed
    );
    let open = ticket(TicketStatus::Open, Tier::L1FrontLine, None, 0);
    assert!(command(&open, Command::Reopen).is_err());
    assert!(command(&open, Command::Assign(addr("nobody@example.com"))).is_err());
}

#[test]
fn resolving_and_reopening_tell_the_customer() {
    let open = ticket(
        TicketStatus::Open,
        Tier::L1FrontLine,
        Some("alice@example.com"),
        0,
    );
    let plan = command(&open, Command::Resolve).unwrap();
    assert_eq!(
        plan.effects[0].status_to(),
        Some((TicketStatus::Resolved, false))
    );
    assert_eq!(
        plan.queued(),
        vec![(Template::StatusUpdate, &addr("marie@example.fr"))]
    );
    let resolved = ticket(
        TicketStatus::Resolved,
        Tier::L1FrontLine,
        Some("alice@example.com"),
        0,
    );
    let plan = command(&resolved, Command::Reopen).unwrap();
    assert_eq!(
        plan.effects[0].status_to(),
        Some((TicketStatus::Open, true))
    );
    assert_eq!(plan.events(), vec![EventKind::Reopened]);
    let plan = command(&open, Command::Assign(addr("bob@example.com"))).unwrap();
    assert_eq!(
        plan.queued(),
        vec![
            (Template::AgentNotification, &addr("bob@example.com")),
            (Template::AgentReassigned, &addr("alice@example.com")),
        ]
    );
}

#[test]
fn news_on_a_closed_ticket_opens_one_that_follows_it_but_thanks_do_not() {
    let (g, d, loads) = (gateway(), desk(), HashMap::new());
    let closed = ticket(
        TicketStatus::Closed,
        Tier::L1FrontLine,
        Some("alice@example.com"),
        0,
    );
    let news = mail(
        "Marie <marie@example.fr>",
        "Re: [HD-7K3M9QXA] Imprimante",
        "Elle bourre de nouveau.",
    );
    let plan = decide_mail(&situation(
        &news,
        Some((&closed, ThreadedBy::ReferenceCode)),
        &g,
        &d,
        &loads,
    ));
    assert_eq!(plan.outcome, PlannedOutcome::NewTicket);
    let PlanTicket::New(new) = &plan.ticket else {
        panic!("{:?}", plan.ticket)
    };
    assert_eq!(new.follows.as_ref().map(|t| t.id), Some(closed.id));
    assert_eq!(new.subject, "Imprimante");
    assert!(plan.events().contains(&EventKind::Follows));
    assert!(matches!(plan.effects.last(), Some(Effect::Timing(_))));

    let thanks = mail(
        "Marie <marie@example.fr>",
        "Re: [HD-7K3M9QXA] Imprimante",
        "Merci beaucoup, ça marche ! Bonne journée",
    );
    let plan = decide_mail(&situation(
        &thanks,
        Some((&closed, ThreadedBy::ReferenceCode)),
        &g,
        &d,
        &loads,
    ));
    assert_eq!(plan.outcome, PlannedOutcome::Appended { reopened: false });
    assert!(plan.queued().is_empty());
    assert!(
        !plan
            .effects
            .iter()
            .any(|e| matches!(e, Effect::SetStatus { .. }))
    );
}
