//! The plumbing every client command shares: find the control socket, reach the
//! daemon, or — when none runs — open the modem directly; turn failures into the
//! documented exit codes.
//!
//! # Exit codes
//! - 0: done.
//! - 1: the daemon or the modem answered with an error ([`Failure::Refused`]):
//!   `+CMS ERROR: 330`, an unknown modem name, a send budget, USSD "not supported".
//! - 2: atmate could not run ([`Failure::CouldNotRun`]): no config, an invalid config,
//!   no daemon and no way to open the modem, a broken connection, bad arguments (clap).
//!
//! # Why the fallback is careful
//! The daemon owns the port exclusively (tokio-serial opens it that way), so opening
//! the modem "directly" is only right when *no* daemon runs. A socket that exists but
//! refuses us for lack of permission means a daemon of another user runs: we must not
//! try the port then, and say so instead.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::broadcast;

use crate::config::Config;
use crate::control::{Client, ClientError, Request};
use crate::event::Event;
use crate::modem::{ModemError, ModemHandle};

/// How long a modem request may take end to end: a multipart SMS, a slow USSD
/// (the daemon's own `ussd_timeout` defaults to 30 s) or `AT+COPS=?` (up to 60 s),
/// possibly behind other requests in the modem's queue.
pub const MODEM_TIMEOUT: Duration = Duration::from_secs(180);
/// Status, inbox, outbox: answered from memory or SQLite.
pub const QUICK_TIMEOUT: Duration = Duration::from_secs(20);
/// A reload re-reads and recompiles everything and may reopen a modem.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `status` without a daemon waits for the modem to finish its init.
const DIRECT_SETTLE: Duration = Duration::from_secs(15);

/// Where to find the daemon: options shared by every client command.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Target {
    /// The configuration file (default: ATMATE_CONFIG, ./config/atmate.yaml,
    /// $XDG_CONFIG_HOME/atmate/atmate.yaml, /etc/atmate/atmate.yaml); it names the
    /// control socket, the store and the modems.
    #[arg(long, short, env = "ATMATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Talk to the daemon on this control socket instead of the one the config names.
    #[arg(long, env = "ATMATE_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
}

/// Why a command failed; decides the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The daemon or the modem answered with an error (exit 1).
    Refused(String),
    /// atmate could not run (exit 2).
    CouldNotRun(String),
}

impl Failure {
    /// The exit code: 1 or 2.
    pub fn code(&self) -> i32 {
        match self {
            Failure::Refused(_) => 1,
            Failure::CouldNotRun(_) => 2,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Failure::Refused(m) | Failure::CouldNotRun(m) => m,
        }
    }

    /// Print `atmate: <message>` on stderr and return the exit code.
    pub fn report(&self) -> i32 {
        eprintln!("atmate: {}", self.message());
        self.code()
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Failure {
        match e {
            ClientError::Daemon(m) => Failure::Refused(m),
            other => Failure::CouldNotRun(other.to_string()),
        }
    }
}

/// A modem error met on the direct path: the port or the actor being unavailable is
/// "could not run"; an answer from the modem (an error code, a timeout, a bad reply)
/// is "refused", the same as the daemon relaying it.
pub fn modem_failure(e: ModemError) -> Failure {
    match e {
        ModemError::Open { .. } | ModemError::Disconnected { .. } | ModemError::Shutdown(_) => {
            Failure::CouldNotRun(e.to_string())
        }
        other => Failure::Refused(other.to_string()),
    }
}

/// Run an async command body on a small runtime and turn its outcome into an exit code.
pub fn block_on<F>(body: F) -> anyhow::Result<i32>
where
    F: std::future::Future<Output = Result<(), Failure>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(match rt.block_on(body) {
        Ok(()) => 0,
        Err(f) => f.report(),
    })
}

/// The config (loaded on first use) and the control socket of one command run.
#[derive(Debug)]
pub struct Context {
    explicit: Option<PathBuf>,
    config: Option<Config>,
    socket: PathBuf,
}

impl Context {
    /// Resolve the socket: `--socket` as given, else the config's `control_socket`.
    /// With `--socket` the config is read only if it is needed later (store, direct).
    pub fn new(target: &Target) -> Result<Context, Failure> {
        let mut ctx = Context {
            explicit: target.config.clone(),
            config: None,
            socket: target.socket.clone().unwrap_or_default(),
        };
        if target.socket.is_none() {
            ctx.socket = ctx.config()?.control_socket.clone();
        }
        Ok(ctx)
    }

    /// The control socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The config file as given by `--config`/`ATMATE_CONFIG` (or `None`: searched).
    pub fn explicit_config(&self) -> Option<&Path> {
        self.explicit.as_deref()
    }

    /// The validated config, read on first use.
    pub fn config(&mut self) -> Result<&Config, Failure> {
        if self.config.is_none() {
            let path = crate::config::locate(self.explicit.as_deref())
                .map_err(|e| Failure::CouldNotRun(e.to_string()))?;
            let cfg = crate::config::load(&path).map_err(|d| {
                Failure::CouldNotRun(format!(
                    "the configuration is invalid (see `atmate check`):\n{}",
                    d.render()
                ))
            })?;
            self.config = Some(cfg);
        }
        match &self.config {
            Some(c) => Ok(c),
            None => Err(Failure::CouldNotRun("no configuration".into())),
        }
    }

    /// Reach the daemon. [`Reached::Nobody`] when nothing listens on the socket (no
    /// file, or a stale one from a crash); any other failure is an error, because a
    /// daemon may be running that we cannot talk to.
    pub async fn daemon(&self) -> Result<Reached, Failure> {
        match Client::connect(&self.socket).await {
            Ok(c) => Ok(Reached::Daemon(c)),
            Err(ClientError::NotRunning { path, source }) => match source.kind() {
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
                    Ok(Reached::Nobody(format!("{path}: {source}")))
                }
                std::io::ErrorKind::PermissionDenied => Err(Failure::CouldNotRun(format!(
                    "cannot use the control socket {path}: {source}; the daemon runs as another user \
                     (run this as that user, e.g. `sudo -u atmate atmate …`, or join its group)"
                ))),
                _ => Err(Failure::CouldNotRun(format!(
                    "cannot reach the daemon at {path}: {source}"
                ))),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// The "no daemon" error for commands that need one.
    pub fn needs_daemon(&self, what: &str) -> Failure {
        Failure::CouldNotRun(format!(
            "no daemon running at {}; {what} needs one: start it with `atmate run`",
            self.socket.display()
        ))
    }
}

/// The outcome of [`Context::daemon`].
pub enum Reached {
    /// A daemon answered.
    Daemon(Client),
    /// Nothing listens; why (for the user).
    Nobody(String),
}

/// A modem opened by this process because no daemon runs.
pub struct DirectModem {
    /// The modem's handle (the same API the daemon uses).
    pub handle: ModemHandle,
    /// The config file it was opened from.
    pub config: Option<PathBuf>,
    /// Whatever keeps the modem open (the runtime's `Direct`); dropped last.
    _keep: Box<dyn std::any::Any + Send>,
}

impl DirectModem {
    /// Wrap a handle and whatever must live as long as it.
    pub fn new(
        handle: ModemHandle,
        config: Option<PathBuf>,
        keep: Box<dyn std::any::Any + Send>,
    ) -> DirectModem {
        DirectModem {
            handle,
            config,
            _keep: keep,
        }
    }
}

/// Open the modem without a daemon (`crate::runtime::open_direct`: the configured
/// modem, its store for what the start-up sweep finds, and the simulator for
/// `device: sim`), saying so on stderr. It waits until the modem is initialised.
async fn open_direct(
    ctx: &Context,
    modem: Option<&str>,
    why: &str,
) -> Result<DirectModem, Failure> {
    eprintln!("atmate: no daemon running ({why}); opening the modem directly");
    let d = crate::runtime::open_direct(ctx.explicit_config(), modem)
        .await
        .map_err(|e| {
            Failure::CouldNotRun(format!(
                "no daemon running at {}, and the modem could not be opened directly: {e}",
                ctx.socket().display()
            ))
        })?;
    let config = Some(d.config.path.clone());
    Ok(DirectModem::new(d.handle.clone(), config, Box::new(d)))
}

/// The way to the modem: the daemon, or the modem itself.
pub enum Link {
    /// Through the daemon's control socket.
    Daemon(Client),
    /// A modem this process opened.
    Direct(DirectModem),
}

impl Link {
    /// Reach the daemon; when none runs and `direct` is set, open `modem` (or the
    /// default one) directly, saying so on stderr (`direct` is off for requests that
    /// only make sense to a daemon, such as answering a USSD menu it keeps open).
    pub async fn open(ctx: &Context, modem: Option<&str>, direct: bool) -> Result<Link, Failure> {
        match ctx.daemon().await? {
            Reached::Daemon(c) => Ok(Link::Daemon(c)),
            Reached::Nobody(why) if direct => {
                Ok(Link::Direct(open_direct(ctx, modem, &why).await?))
            }
            Reached::Nobody(_) => Err(Failure::CouldNotRun(format!(
                "no daemon running at {}; start one with `atmate run`",
                ctx.socket().display()
            ))),
        }
    }

    /// True when this process opened the modem itself.
    pub fn is_direct(&self) -> bool {
        matches!(self, Link::Direct(_))
    }

    /// Send one request and wait for the answer (the daemon's `result`, or the same
    /// JSON built from the modem's answer on the direct path).
    pub async fn call(&mut self, req: Request, timeout: Duration) -> Result<Value, Failure> {
        match self {
            Link::Daemon(c) => Ok(c.call(&req, timeout).await?),
            Link::Direct(d) => {
                let fut = direct_call(d, req);
                tokio::time::timeout(timeout, fut).await.map_err(|_| {
                    Failure::CouldNotRun(format!("the modem gave no answer within {timeout:?}"))
                })?
            }
        }
    }

    /// A stream of events: a second connection subscribed to the daemon, or the
    /// direct modem's own broadcast.
    pub async fn events(&self, ctx: &Context) -> Result<Events, Failure> {
        match self {
            Link::Daemon(_) => Events::subscribe(ctx).await,
            Link::Direct(d) => Ok(Events::Direct(d.handle.events())),
        }
    }
}

/// The JSON the daemon would answer, from a modem this process holds.
async fn direct_call(d: &DirectModem, req: Request) -> Result<Value, Failure> {
    fn to_json<T: serde::Serialize>(v: T) -> Result<Value, Failure> {
        serde_json::to_value(v).map_err(|e| Failure::CouldNotRun(e.to_string()))
    }
    let h = &d.handle;
    match req {
        Request::Send { to, text, .. } => {
            to_json(h.send_sms(&to, &text).await.map_err(modem_failure)?)
        }
        Request::Ussd { code, .. } => to_json(h.ussd(&code).await.map_err(modem_failure)?),
        Request::UssdReply { text, .. } => {
            to_json(h.ussd_reply(&text).await.map_err(modem_failure)?)
        }
        Request::UssdCancel { .. } => {
            h.ussd_cancel().await.map_err(modem_failure)?;
            Ok(Value::Null)
        }
        Request::At { command, .. } => to_json(h.at(&command).await.map_err(modem_failure)?),
        Request::Status => {
            // A freshly opened modem is still running its init sequence; wait for it
            // to settle so the answer says something (link up, or why it is down).
            let deadline = tokio::time::Instant::now() + DIRECT_SETTLE;
            while h.status().link == "connecting" && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Ok(json!({
                "started": null,
                "config": d.config.as_ref().map(|p| p.display().to_string()),
                "direct": true,
                "modems": [to_json(h.status())?],
                "rules": [],
                "schedules": [],
            }))
        }
        other => Err(Failure::CouldNotRun(format!(
            "`{}` needs the daemon (start it with `atmate run`)",
            serde_json::to_value(&other)
                .ok()
                .and_then(|v| v.get("cmd").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_default()
        ))),
    }
}

/// Events as JSON objects, one at a time.
pub enum Events {
    /// A connection subscribed to the daemon.
    Daemon(Client),
    /// A direct modem's broadcast.
    Direct(broadcast::Receiver<Event>),
}

impl Events {
    /// Open a connection to the daemon and subscribe.
    pub async fn subscribe(ctx: &Context) -> Result<Events, Failure> {
        let mut c = match ctx.daemon().await? {
            Reached::Daemon(c) => c,
            Reached::Nobody(_) => return Err(ctx.needs_daemon("following events")),
        };
        c.call(&Request::Subscribe, QUICK_TIMEOUT).await?;
        Ok(Events::Daemon(c))
    }

    /// The next event; `None` when the source closed (the daemon stopped).
    pub async fn next(&mut self) -> Result<Option<Value>, Failure> {
        match self {
            Events::Daemon(c) => Ok(c.next_event().await?),
            Events::Direct(rx) => loop {
                match rx.recv().await {
                    Ok(e) => return Ok(Some(e.to_json())),
                    // A slow terminal missed some; the next one is still worth showing.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return Ok(None),
                }
            },
        }
    }
}

/// Lines typed on stdin, read on a plain thread.
///
/// Not `tokio::io::stdin`: its read cannot be cancelled, so a runtime shut down while
/// a read waits (Ctrl-D never typed, the daemon gone) would hang until Enter. The
/// thread ends at end of input, which closes the channel; an unfinished read simply
/// dies with the process.
pub fn stdin_lines() -> tokio::sync::mpsc::UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::stdin().lock().lines() {
            match line {
                Ok(l) if tx.send(l.trim_end_matches('\r').to_owned()).is_ok() => {}
                _ => break,
            }
        }
    });
    rx
}

/// Print `value` as pretty JSON on stdout (the `--json` form of every command).
pub fn print_json(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use crate::modem::{MemoryPersist, ModemConfig};
    use crate::sim::{SimConfig, SimHandle};

    /// A modem handle on the in-process simulator: the direct path minus the
    /// runtime's `open_direct`.
    fn direct() -> (Link, SimHandle) {
        let sim = SimHandle::spawn(SimConfig::default());
        let connector = crate::runtime::sim_connector(&sim, 1);
        let handle = ModemHandle::spawn(
            ModemConfig::new("main"),
            connector,
            Arc::new(MemoryPersist::new()),
        );
        (
            Link::Direct(DirectModem::new(
                handle,
                Some(PathBuf::from("/etc/atmate/atmate.yaml")),
                Box::new(()),
            )),
            sim,
        )
    }

    #[test]
    fn failures_map_to_the_documented_codes() {
        assert_eq!(Failure::Refused("x".into()).code(), 1);
        assert_eq!(Failure::CouldNotRun("x".into()).code(), 2);
        assert_eq!(
            Failure::from(ClientError::Daemon("+CMS ERROR: 330".into())),
            Failure::Refused("+CMS ERROR: 330".into())
        );
        assert_eq!(
            Failure::from(ClientError::Protocol("garbage".into())).code(),
            2
        );
        let open = ModemError::Open {
            device: "/dev/ttyUSB1".into(),
            reason: "busy".into(),
        };
        assert_eq!(modem_failure(open).code(), 2);
        let cmd = ModemError::Invalid("bad number".into());
        assert_eq!(modem_failure(cmd), Failure::Refused("bad number".into()));
    }

    #[tokio::test]
    async fn no_socket_means_nobody_and_a_file_that_is_no_socket_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let target = Target {
            config: None,
            socket: Some(dir.path().join("absent.sock")),
        };
        let ctx = Context::new(&target).unwrap();
        match ctx.daemon().await.unwrap() {
            Reached::Nobody(why) => assert!(why.contains("absent.sock"), "{why}"),
            Reached::Daemon(_) => panic!("nothing listens there"),
        }
        let err = match Link::open(&ctx, None, false).await {
            Err(e) => e,
            Ok(_) => panic!("no daemon"),
        };
        assert_eq!(err.code(), 2);
        assert!(
            err.message().contains("start one with `atmate run`"),
            "{err}"
        );
        // A stale socket file left by a crash: connection refused, also "nobody".
        let stale = dir.path().join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        let ctx = Context::new(&Target {
            config: None,
            socket: Some(stale),
        })
        .unwrap();
        assert!(matches!(ctx.daemon().await.unwrap(), Reached::Nobody(_)));
    }

    #[tokio::test]
    async fn a_missing_config_is_could_not_run() {
        let target = Target {
            config: Some(PathBuf::from("/nonexistent/atmate.yaml")),
            socket: None,
        };
        let e = Context::new(&target).unwrap_err();
        assert_eq!(e.code(), 2);
        assert!(e.message().contains("/nonexistent/atmate.yaml"), "{e}");
    }

    #[tokio::test]
    async fn direct_link_answers_like_the_daemon() {
        let (mut link, _sim) = direct();
        assert!(link.is_direct());
        let at = link
            .call(
                Request::At {
                    command: "AT+CGMI".into(),
                    modem: None,
                },
                MODEM_TIMEOUT,
            )
            .await
            .unwrap();
        assert_eq!(at, json!({"lines": ["ZTE CORPORATION"], "result": "OK"}));
        let status = link.call(Request::Status, QUICK_TIMEOUT).await.unwrap();
        assert_eq!(status["direct"], json!(true));
        assert_eq!(status["modems"][0]["name"], json!("main"));
        assert_eq!(status["modems"][0]["link"], json!("up"));
        assert_eq!(status["config"], json!("/etc/atmate/atmate.yaml"));
        // The store-backed and daemon-only requests say they need the daemon.
        let e = link.call(Request::Reload, QUICK_TIMEOUT).await.unwrap_err();
        assert_eq!(e.code(), 2);
        assert!(e.message().contains("`reload` needs the daemon"), "{e}");
    }

    #[tokio::test]
    async fn direct_link_relays_modem_errors_as_refused() {
        let (mut link, _sim) = direct();
        let e = link
            .call(
                Request::At {
                    command: "AT+NOSUCHTHING".into(),
                    modem: None,
                },
                MODEM_TIMEOUT,
            )
            .await
            .unwrap_err();
        assert_eq!(e.code(), 1, "{e}");
        assert!(e.message().contains("AT+NOSUCHTHING"), "{e}");
    }
}
