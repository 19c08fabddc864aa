//! One open port: read the client's bytes, echo them, cut command lines and `> ` bodies,
//! run the responder, and write answers and URCs in the order they happen.
//!
//! A session is the only writer to its stream, so an answer is never torn by a URC unless
//! a fault asks for it ([`crate::sim::faults::UrcMoment`]). While an answer is delayed
//! (slow-answer fault, `AT+COPS=?`) the session neither reads nor writes, like a busy
//! modem: input waits in the pipe, URCs wait in the queue.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, WriteHalf};
use tokio::sync::mpsc::UnboundedReceiver;

use super::cmdline;
use super::device::PortMsg;
use super::faults::UrcMoment;
use super::inject::Inner;
use super::responder::{self, Outcome, Prompt};
use super::wire::Direction;

/// V.250 asks for at least 40 characters; real firmware takes a few hundred. Longer
/// lines are answered with ERROR.
const MAX_LINE: usize = 2048;
/// A `> ` body longer than this cannot be an SMS (PDU hex is at most ~350 characters).
const MAX_BODY: usize = 4096;

enum Mode {
    Command,
    Prompt {
        prompt: Prompt,
        body: Vec<u8>,
        slow: Option<Duration>,
    },
}

struct Session {
    inner: Arc<Inner>,
    iface: u8,
    conn: u64,
    wr: WriteHalf<DuplexStream>,
    line: Vec<u8>,
    overflow: bool,
    last_line: Vec<u8>,
    mode: Mode,
}

/// Serve one connection until the client closes it or the stick goes away.
pub(crate) async fn run(
    inner: Arc<Inner>,
    iface: u8,
    conn: u64,
    stream: DuplexStream,
    mut rx: UnboundedReceiver<PortMsg>,
) {
    let (mut rd, wr) = tokio::io::split(stream);
    let mut s = Session {
        inner: Arc::clone(&inner),
        iface,
        conn,
        wr,
        line: Vec::new(),
        overflow: false,
        last_line: Vec::new(),
        mode: Mode::Command,
    };
    let mut buf = vec![0u8; 4096];
    loop {
        tokio::select! {
            // URCs first: a URC queued before a command arrived goes out before its answer.
            biased;
            msg = rx.recv() => match msg {
                Some(PortMsg::Out(bytes)) => {
                    if s.write(&bytes).await.is_err() {
                        break;
                    }
                }
                Some(PortMsg::Close) | None => break,
            },
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    inner.wire.record(iface, Direction::ToStick, &buf[..n]);
                    // if00 is DIAG/QCDM: it swallows AT and answers nothing (MF667.md §5.9).
                    if iface != 0 && s.input(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            },
        }
    }
    inner.with(|d| d.detach(iface, conn));
}

impl Session {
    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if bytes.is_empty() {
            return Ok(());
        }
        self.inner
            .wire
            .record(self.iface, Direction::FromStick, bytes);
        self.wr.write_all(bytes).await?;
        self.wr.flush().await
    }

    fn echo_on(&self) -> bool {
        let iface = usize::from(self.iface);
        self.inner.with(|d| d.ports[iface].settings.echo)
    }

    fn gone() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the stick went away")
    }

    async fn input(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        let mut out = Vec::new();
        let mut echo = self.echo_on();
        for &b in bytes {
            match &mut self.mode {
                Mode::Command => {
                    // V.250: echo as received, CR included, before the answer.
                    if echo {
                        out.push(b);
                    }
                    match b {
                        b'\r' => {
                            self.write(&std::mem::take(&mut out)).await?;
                            let line = std::mem::take(&mut self.line);
                            if std::mem::take(&mut self.overflow) {
                                let err = self.inner.with(|d| {
                                    responder::Final::Error
                                        .render(&d.ports[usize::from(self.iface)].settings)
                                });
                                self.write(&err).await?;
                            } else {
                                self.command_line(&line).await?;
                            }
                            echo = self.echo_on();
                        }
                        b'\n' => {}
                        // S5 backspace edits the line.
                        0x08 | 0x7f => {
                            self.line.pop();
                        }
                        _ => {
                            if self.line.len() < MAX_LINE {
                                self.line.push(b);
                            } else {
                                self.overflow = true;
                            }
                            // V.250 §5.2.4: "A/" repeats the previous line, no CR needed.
                            if self.line.eq_ignore_ascii_case(b"A/") {
                                self.line.clear();
                                self.write(&std::mem::take(&mut out)).await?;
                                let last = self.last_line.clone();
                                self.command_line(&last).await?;
                                echo = self.echo_on();
                            }
                        }
                    }
                }
                Mode::Prompt { prompt, body, .. } => match b {
                    0x1a => {
                        self.write(&std::mem::take(&mut out)).await?;
                        self.finish_body().await?;
                        echo = self.echo_on();
                    }
                    0x1b => {
                        self.write(&std::mem::take(&mut out)).await?;
                        self.mode = Mode::Command;
                        let o = self.inner.with(|d| responder::cancel_prompt(d, self.iface));
                        self.write(&o.final_code).await?;
                        echo = self.echo_on();
                    }
                    // 27.005 §3.5.1: in text mode every CR gives a new "> " line.
                    b'\r' if prompt.is_text() => {
                        if echo {
                            out.push(b);
                        }
                        body.push(b'\n');
                        out.extend_from_slice(b"\r\n> ");
                    }
                    b'\r' | b'\n' => {
                        if echo {
                            out.push(b);
                        }
                    }
                    _ => {
                        if echo {
                            out.push(b);
                        }
                        if body.len() < MAX_BODY {
                            body.push(b);
                        }
                    }
                },
            }
        }
        self.write(&out).await
    }

    async fn command_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        // No "AT" in the line: the modem ignores it (gammu's blind `ESC \r` lands here).
        let Some(body) = cmdline::strip_prefix(line) else {
            return Ok(());
        };
        self.last_line = line.to_vec();
        let upper = format!("AT{}", String::from_utf8_lossy(body)).to_ascii_uppercase();
        let (iface, conn) = (self.iface, self.conn);
        let r = self.inner.with(|d| {
            if !d.is_current(iface, conn) {
                return None;
            }
            let after_echo = d.faults.take_urc(iface, UrcMoment::AfterEcho);
            let slow = d.faults.slow_delay(&upper);
            let outcome = responder::execute(d, iface, body);
            let before = if outcome.prompt.is_some() {
                d.faults.take_urc(iface, UrcMoment::BeforePrompt)
            } else {
                d.faults.take_urc(iface, UrcMoment::BeforeFinal)
            };
            Some((after_echo, outcome, before, slow))
        });
        let Some((after_echo, o, before, slow)) = r else {
            return Err(Self::gone());
        };
        if let Some(u) = after_echo {
            self.write(&u).await?;
        }
        if !o.delay.is_zero() {
            tokio::time::sleep(o.delay).await;
        }
        self.write(&o.body).await?;
        match o.prompt {
            Some(prompt) => {
                if let Some(u) = before {
                    self.write(&u).await?;
                }
                // 27.005 §3.5.1: the four bytes CR LF '>' SP.
                self.write(b"\r\n> ").await?;
                self.mode = Mode::Prompt {
                    prompt,
                    body: Vec::new(),
                    slow,
                };
                Ok(())
            }
            None => self.finish(o, before, slow).await,
        }
    }

    async fn finish(
        &mut self,
        o: Outcome,
        before: Option<Vec<u8>>,
        slow: Option<Duration>,
    ) -> std::io::Result<()> {
        if let Some(u) = before {
            self.write(&u).await?;
        }
        if let Some(d) = slow {
            tokio::time::sleep(d).await;
        }
        self.write(&o.final_code).await?;
        self.write(&o.after).await
    }

    async fn finish_body(&mut self) -> std::io::Result<()> {
        let Mode::Prompt { prompt, body, slow } = std::mem::replace(&mut self.mode, Mode::Command)
        else {
            return Ok(());
        };
        let (iface, conn) = (self.iface, self.conn);
        let r = self.inner.with(|d| {
            if !d.is_current(iface, conn) {
                return None;
            }
            let after_echo = d.faults.take_urc(iface, UrcMoment::AfterEcho);
            let o = responder::finish_prompt(d, iface, prompt, &body);
            let before = d.faults.take_urc(iface, UrcMoment::BeforeFinal);
            Some((after_echo, o, before))
        });
        let Some((after_echo, o, before)) = r else {
            return Err(Self::gone());
        };
        if let Some(u) = after_echo {
            self.write(&u).await?;
        }
        self.write(&o.body).await?;
        self.finish(o, before, slow).await
    }
}
