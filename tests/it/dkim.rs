//! Agents' DKIM signatures checked by the gateway itself: a real Ed25519 signature made
//! with `mail-auth`, its public key served by a small DNS responder on loopback. A signed
//! agent's command is applied; the same commands unsigned, or signed and then altered, are
//! a stranger's, and the agent is told.

use std::net::UdpSocket;

use base64::Engine;
use mail_auth::common::crypto::Ed25519Key;
use mail_auth::common::headers::HeaderWriter;
use mail_auth::dkim::DkimSigner;

use crate::support::{Desk, customer_mail, embedded_config};
use helpdesk::pipeline::Processed;

/// Answers TXT queries for `name` with `txt` (split in 255-byte strings), NXDOMAIN for any
/// other name. Returns the port; the thread lives as long as the test process.
fn dns_responder(name: &'static str, txt: String) -> u16 {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = socket.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, peer)) = socket.recv_from(&mut buf) {
            let query = &buf[..n];
            if n < 12 {
                continue;
            }
            // The question: labels up to the root, then type and class.
            let mut i = 12;
            let mut labels = Vec::new();
            while i < n && query[i] != 0 {
                let len = query[i] as usize;
                labels.push(String::from_utf8_lossy(&query[i + 1..i + 1 + len]).to_lowercase());
                i += 1 + len;
            }
            let question_end = i + 5;
            let qtype = u16::from_be_bytes([query[i + 1], query[i + 2]]);
            let found = labels.join(".") == name && qtype == 16;
            let mut answer = Vec::new();
            answer.extend_from_slice(&query[..2]); // id
            answer.extend_from_slice(&[0x81, if found { 0x80 } else { 0x83 }]);
            answer.extend_from_slice(&[0, 1, 0, u8::from(found), 0, 0, 0, 0]);
            answer.extend_from_slice(&query[12..question_end]);
            if found {
                let chunks: Vec<&[u8]> = txt.as_bytes().chunks(255).collect();
                let rdata_len: usize = chunks.iter().map(|c| c.len() + 1).sum();
                answer.extend_from_slice(&[0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 60]);
                answer.extend_from_slice(&(rdata_len as u16).to_be_bytes());
                for c in chunks {
                    answer.push(c.len() as u8);
                    answer.extend_from_slice(c);
                }
            }
            socket.send_to(&answer, peer).ok();
        }
    });
    port
}

fn sign(key_der: &[u8], raw: &str) -> String {
    let key = Ed25519Key::from_pkcs8_der(key_der).unwrap();
    let signature = DkimSigner::from_key(key)
        .domain("example.test")
        .selector("sel")
        .headers(["From", "To", "Subject", "Message-ID"])
        .sign(raw.as_bytes())
        .unwrap();
    format!("{}{raw}", signature.to_header())
}

#[tokio::test]
async fn a_signed_agents_command_is_applied_and_an_unsigned_or_altered_one_is_not() {
    let pkcs8 = Ed25519Key::generate_pkcs8().unwrap();
    let public = Ed25519Key::from_pkcs8_der(&pkcs8).unwrap().public_key();
    let port = dns_responder(
        "sel._domainkey.example.test",
        format!(
            "v=DKIM1; k=ed25519; p={}",
            base64::engine::general_purpose::STANDARD.encode(&public)
        ),
    );
    let toml = format!(
        "{}\n[agent_mail]\nrequire_authentication = true\ndns_server = \"127.0.0.1:{port}\"\n\n\
         [[agents]]\nname = \"Alice\"\naddress = \"alice@example.test\"\ntiers = [\"L1\"]\n",
        embedded_config()
    );
    let desk = Desk::with_config(&toml).await;
    let Processed::Filed { code, .. } = desk
        .file(&customer_mail(
            "marie@example.fr",
            "Imprimante",
            "k1@example.fr",
            "Bourrage.",
        ))
        .await
    else {
        panic!()
    };
    let agent_mail = |id: &str, body: &str| {
        format!(
            "From: alice@example.test\r\nTo: support@example.test\r\nSubject: Re: [{code}] Imprimante\r\n\
             Message-ID: <{id}@example.test>\r\n\r\n{body}\r\n"
        )
    };
    let status = || async {
        let (s,): (String,) = sqlx::query_as("SELECT status FROM tickets ORDER BY id LIMIT 1")
            .fetch_one(&desk.db().await)
            .await
            .unwrap();
        s
    };

    // Unsigned: a stranger's mail; the ticket stays open, Alice is told why.
    desk.file(agent_mail("u1", "#close").as_bytes()).await;
    assert_eq!(status().await, "new");
    // Signed, then altered after signing: the signature fails.
    let altered = sign(&pkcs8, &agent_mail("t1", "#note")).replace("#note", "#close");
    desk.file(altered.as_bytes()).await;
    assert_eq!(status().await, "new");
    let refusals = desk
        .count(
            "SELECT COUNT(*) FROM messages WHERE direction = 'outbound' AND outcome_detail = 'agent_receipt' \
             AND body_text LIKE '%authentifié comme venant de vous%'",
        )
        .await;
    assert_eq!(refusals, 2, "Alice is told of each refused mail");
    // Signed and intact: the command is applied.
    desk.file(sign(&pkcs8, &agent_mail("s1", "#close")).as_bytes())
        .await;
    assert_eq!(status().await, "closed");
}
