//! A deliberately slow SMTP server on loopback: it answers the end of DATA only after
//! `delay`, and counts every mail it accepted by Message-ID. For lease tests: a real
//! protocol peer whose slowness the test chooses.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

pub struct SlowSmtp {
    pub port: u16,
    accepted: Arc<Mutex<HashMap<String, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl SlowSmtp {
    pub async fn start(delay: Duration) -> SlowSmtp {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let counts = accepted.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let counts = counts.clone();
                tokio::spawn(async move {
                    let (read, mut write) = socket.into_split();
                    let mut lines = BufReader::new(read).lines();
                    if write.write_all(b"220 slow.test ESMTP\r\n").await.is_err() {
                        return;
                    }
                    while let Ok(Some(line)) = lines.next_line().await {
                        let verb = line.get(..4).unwrap_or("").to_ascii_uppercase();
                        let reply: &[u8] = match verb.as_str() {
                            "EHLO" | "HELO" => b"250 slow.test\r\n",
                            "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 ok\r\n",
                            "QUIT" => {
                                let _ = write.write_all(b"221 bye\r\n").await;
                                return;
                            }
                            "DATA" => {
                                if write.write_all(b"354 go on\r\n").await.is_err() {
                                    return;
                                }
                                let mut id = String::new();
                                while let Ok(Some(l)) = lines.next_line().await {
                                    if l == "." {
                                        break;
                                    }
                                    if id.is_empty()
                                        && l.to_ascii_lowercase().starts_with("message-id:")
                                    {
                                        id = l[11..].trim().to_string();
                                    }
                                }
                                tokio::time::sleep(delay).await;
                                *counts.lock().unwrap().entry(id).or_default() += 1;
                                b"250 queued\r\n"
                            }
                            _ => b"502 not here\r\n",
                        };
                        if write.write_all(reply).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        SlowSmtp {
            port,
            accepted,
            task,
        }
    }

    /// Message-ID → how many times the server accepted it.
    pub fn accepted(&self) -> HashMap<String, usize> {
        self.accepted.lock().unwrap().clone()
    }
}

impl Drop for SlowSmtp {
    fn drop(&mut self) {
        self.task.abort();
    }
}
