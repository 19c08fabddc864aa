//! The runtime: the only module that knows everything. It starts the modems, the store,
//! rules, scripts and schedules, dispatches events, hot-reloads and serves the control
//! socket.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | [`Runtime::start`], the event bus and dispatch, shutdown |
//! | `load.rs` | loading and validating config + scripts + rules together (also `atmate check`) |
//! | `reload.rs` | hot reload: watch directories, re-validate, swap or keep the previous version |
//! | `control.rs` | the control socket server |
//! | `host.rs` | the `Host` rules and scripts get (modem handle + policy + store) |
//! | `persist.rs` | `modem::Persist` on the SQLite store |
//! | `policy.rs` | send budgets |
//! | `demo.rs` | realistic traffic for `device: sim` with `demo: true` |

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::sync::broadcast;
use tokio::task::JoinSet;

use crate::config::{Config, Device};
use crate::event::Event;
use crate::host::Host;
use crate::modem::{
    FnConnector, ModemConfig, ModemError, ModemHandle, Opened, SerialConnector, SerialPath,
    TcpConnector,
};
use crate::rules::RuleRunner;
use crate::schedule::Scheduler;
use crate::sim::SimHandle;
use crate::store::Store;

mod control;
mod demo;
pub mod host;
pub mod load;
pub mod persist;
pub mod policy;
mod reload;

pub use load::{check, Loaded};

/// A failure that stops the daemon (config invalid at start, store unopenable).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FatalError {
    /// The configuration, rules or scripts are invalid.
    #[error("invalid configuration:\n{0}")]
    Invalid(crate::diag::Diagnostics),
    /// The store could not be opened.
    #[error("cannot open the store {path}: {reason}")]
    Store {
        /// File.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Anything else at start (control socket in use…).
    #[error("{0}")]
    Start(String),
}

/// One running modem.
pub(crate) struct ModemEntry {
    pub(crate) handle: ModemHandle,
    pub(crate) sim: Option<SimHandle>,
    pub(crate) host: Arc<host::ModemHost>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for ModemEntry {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Shared state of a running daemon.
pub(crate) struct State {
    pub(crate) loaded: RwLock<Arc<Loaded>>,
    pub(crate) store: Store,
    pub(crate) modems: RwLock<BTreeMap<String, Arc<ModemEntry>>>,
    pub(crate) bus: broadcast::Sender<Event>,
    pub(crate) policy: Arc<policy::SendPolicy>,
    pub(crate) runner: RuleRunner,
    pub(crate) scheduler: Scheduler,
    pub(crate) started: chrono::DateTime<chrono::Utc>,
    /// Serialises reloads.
    pub(crate) reload_lock: tokio::sync::Mutex<()>,
}

impl State {
    pub(crate) fn loaded(&self) -> Arc<Loaded> {
        self.loaded
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(crate) fn modem(&self, name: Option<&str>) -> Result<Arc<ModemEntry>, String> {
        let modems = self.modems.read().unwrap_or_else(|e| e.into_inner());
        let name = match name {
            Some(n) => n.to_owned(),
            None => self
                .loaded()
                .config
                .default_modem()
                .map(|m| m.name.clone())
                .ok_or("several modems are configured: name one with --modem")?,
        };
        modems
            .get(&name)
            .cloned()
            .ok_or_else(|| format!("no modem called `{name}`"))
    }

    fn host_for(&self, modem: &str) -> Option<Arc<dyn Host>> {
        let modems = self.modems.read().unwrap_or_else(|e| e.into_inner());
        modems.get(modem).map(|m| m.host.clone() as Arc<dyn Host>)
    }
}

/// A running daemon. Dropping it stops everything.
pub struct Runtime {
    state: Arc<State>,
    tasks: JoinSet<()>,
}

fn modem_config(m: &crate::config::ModemSection) -> ModemConfig {
    let mut c = ModemConfig::new(&m.name);
    c.vendor = match m.vendor {
        crate::config::Vendor::Zte => crate::modem::Vendor::Zte,
        crate::config::Vendor::Generic => crate::modem::Vendor::Generic,
    };
    c.pin = m
        .pin
        .as_ref()
        .map(|p| crate::modem::Secret::new(p.expose()));
    c.init_extra = m.init.clone();
    c.storage = m.storage.as_str().to_owned();
    c.ussd_timeout = m.ussd_timeout;
    c.probe_interval = m.health.probe_interval;
    c.storage_check_interval = m.health.storage_check;
    c.multipart_timeout = m.multipart_timeout;
    c.data_interface = m.data_interface.clone();
    c.recovery_command = m.recovery.command.clone();
    c.reconnect_min = m.reconnect.min;
    c.reconnect_max = m.reconnect.max;
    c.recovery = crate::modem::RecoveryConfig {
        enabled: m.recovery.enabled,
        steps: m.recovery.steps.clone(),
        backoff: m.recovery.backoff,
        max_attempts: m.recovery.max_attempts,
    };
    c
}

fn discovery(d: &crate::config::Discovery) -> crate::modem::discover::Discovery {
    crate::modem::discover::Discovery {
        vendor_id: crate::config::Discovery::hex(d.vendor_id),
        product_ids: d
            .product_ids
            .iter()
            .map(|p| crate::config::Discovery::hex(*p))
            .collect(),
        interfaces: d.interfaces.clone(),
        serial: d.serial.clone(),
        sysfs_root: d.sysfs_root.clone(),
        dev_root: d.dev_root.clone(),
    }
}

/// The in-process simulator as a connector (the modem engine must not know `sim`).
pub fn sim_connector(sim: &SimHandle, iface: u8) -> Arc<FnConnector> {
    let sim = sim.clone();
    let name = format!("sim:if{iface:02}");
    Arc::new(FnConnector::new(name.clone(), move || {
        let sim = sim.clone();
        let name = name.clone();
        async move {
            let port = sim.open_port(iface).map_err(|e| ModemError::Open {
                device: name.clone(),
                reason: e.to_string(),
            })?;
            Ok(Opened {
                port: Box::new(port),
                device: name,
            })
        }
    }))
}

impl Runtime {
    /// Start everything for a validated configuration.
    pub async fn start(loaded: Loaded) -> Result<Runtime, FatalError> {
        Runtime::start_with_clock(loaded, Arc::new(crate::schedule::clock::SystemClock)).await
    }

    /// Like [`Runtime::start`], with the schedules' wall clock given (tests start a
    /// daemon at 07:59:58 to see the 08:00 job fire).
    pub async fn start_with_clock(
        loaded: Loaded,
        clock: Arc<dyn crate::schedule::clock::Clock>,
    ) -> Result<Runtime, FatalError> {
        let cfg = loaded.config.clone();
        let store_path = cfg.store.clone();
        let store = tokio::task::spawn_blocking(move || Store::open(&store_path))
            .await
            .map_err(|e| FatalError::Start(e.to_string()))?
            .map_err(|e| FatalError::Store {
                path: cfg.store.clone(),
                reason: e.to_string(),
            })?;
        let (bus, _) = broadcast::channel(4096);
        let policy = Arc::new(policy::SendPolicy::new(policy::Budgets {
            per_hour: cfg.limits.sms_per_hour,
            per_day: cfg.limits.sms_per_day,
            per_recipient_hour: cfg.limits.sms_per_recipient_per_hour,
        }));
        let scheduler = Scheduler::start_with_clock(
            clock,
            crate::schedule::scheduler::EventSink::Broadcast(bus.clone()),
        );
        let state = Arc::new_cyclic(|weak: &std::sync::Weak<State>| {
            let (w1, w2) = (weak.clone(), weak.clone());
            let runner = RuleRunner::new(crate::rules::RunnerDeps {
                host_for: Arc::new(move |modem: &str| w1.upgrade().and_then(|s| s.host_for(modem))),
                scripts: Arc::new(move || w2.upgrade().map(|s| s.loaded().scripts.clone())),
                allow_senders: cfg.allow_senders.clone(),
                default_max: cfg.limits.rule_queue,
            });
            State {
                loaded: RwLock::new(Arc::new(loaded)),
                store,
                modems: RwLock::new(BTreeMap::new()),
                bus: bus.clone(),
                policy,
                runner,
                scheduler,
                started: chrono::Utc::now(),
                reload_lock: tokio::sync::Mutex::new(()),
            }
        });
        let loaded = state.loaded();
        state.runner.set_rules(loaded.rules.clone());
        // Sends of the last day count against the budgets, across restarts.
        let store = state.store.clone();
        let since = chrono::Utc::now() - chrono::Duration::days(1);
        if let Ok(Ok(sent)) = tokio::task::spawn_blocking(move || {
            store.outbox(&crate::store::OutboxQuery {
                since: Some(since),
                limit: 100_000,
                ..Default::default()
            })
        })
        .await
        {
            let now = chrono::Utc::now();
            for o in sent {
                let ago = (now - o.created_at).to_std().unwrap_or_default();
                state.policy.record_past(&o.to, ago);
            }
        }
        // Messages archived by an earlier run (or by a CLI command that opened the
        // modem directly) whose event never reached the rules: they go first. Read
        // before the modems start, so nothing archived now is handed over twice.
        let store = state.store.clone();
        let leftovers = tokio::task::spawn_blocking(move || store.undispatched(None))
            .await
            .map_err(|e| FatalError::Start(e.to_string()))?
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "reading undispatched messages failed");
                Vec::new()
            });
        let mut tasks = JoinSet::new();
        // The socket first: a second daemon on the same config stops here, before it
        // touches a modem.
        match control::serve(state.clone()).await {
            Ok(t) => {
                tasks.spawn(t);
            }
            Err(e) => return Err(FatalError::Start(e)),
        }
        tasks.spawn(dispatch(state.clone(), state.bus.subscribe()));
        for m in leftovers {
            tracing::info!(id = m.id, from = ?m.number, "handing a message from an earlier run to the rules");
            let _ = state.bus.send(m.to_event());
        }
        for m in &loaded.config.modems {
            start_modem(&state, m);
        }
        reschedule(&state);
        tasks.spawn(reload::watch(state.clone()));
        log_banner(&state);
        Ok(Runtime { state, tasks })
    }

    /// Run until `shutdown` completes, then stop cleanly: in-flight rule runs get a
    /// grace period, the store is checkpointed.
    pub async fn run_until(mut self, shutdown: impl Future<Output = ()>) {
        shutdown.await;
        tracing::info!("shutting down");
        // In-flight runs get a grace period, then are cancelled.
        if tokio::time::timeout(Duration::from_secs(5), self.state.runner.wait_idle())
            .await
            .is_err()
        {
            tracing::warn!("rule runs still in flight after 5 s; cancelling them");
            self.state.runner.cancel_all();
        }
        self.tasks.abort_all();
        self.state
            .modems
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let store = self.state.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.checkpoint()).await;
        tracing::info!("stopped");
    }

    /// Every event, as rules see them.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.state.bus.subscribe()
    }

    /// A modem's handle.
    pub fn modem(&self, name: &str) -> Option<ModemHandle> {
        self.state.modem(Some(name)).ok().map(|m| m.handle.clone())
    }

    /// The in-process simulator behind a `device: sim` modem.
    pub fn sim(&self, name: &str) -> Option<SimHandle> {
        self.state
            .modem(Some(name))
            .ok()
            .and_then(|m| m.sim.clone())
    }

    /// The store.
    pub fn store(&self) -> Store {
        self.state.store.clone()
    }

    /// Re-read and validate everything now (as a file change or `atmate reload` would).
    pub async fn reload(&self) -> Result<String, String> {
        reload::reload(&self.state).await
    }

    /// Wait until no rule run is in flight.
    pub async fn idle(&self) {
        self.state.runner.wait_idle().await;
    }

    /// The control socket path.
    pub fn control_socket(&self) -> PathBuf {
        self.state.loaded().config.control_socket.clone()
    }
}

/// How to open a configured modem (and, for `device: sim`, its simulator).
fn connector_for(
    m: &crate::config::ModemSection,
) -> (Arc<dyn crate::modem::Connector>, Option<SimHandle>) {
    match &m.device {
        Device::Sim(opts) => {
            let h = SimHandle::spawn(demo::sim_config(opts));
            (sim_connector(&h, 1), Some(h))
        }
        Device::Auto(d) => (
            Arc::new(SerialConnector {
                path: SerialPath::Auto(discovery(d)),
                baud: m.baud,
            }),
            None,
        ),
        Device::Path(p) => (
            Arc::new(SerialConnector {
                path: SerialPath::Path(p.clone()),
                baud: m.baud,
            }),
            None,
        ),
        Device::Tcp { host, port } => (
            Arc::new(TcpConnector {
                addr: format!("{host}:{port}"),
            }),
            None,
        ),
    }
}

/// A modem opened directly by a CLI command when no daemon runs.
pub struct Direct {
    /// The modem.
    pub handle: ModemHandle,
    /// The simulator, for `device: sim`.
    pub sim: Option<SimHandle>,
    /// The store (messages the start-up sweep finds are archived, as the daemon would).
    pub store: Store,
    /// The configuration used.
    pub config: Arc<Config>,
}

/// Open one modem of the configuration directly (no daemon, no rules): the CLI's
/// fallback for `send`, `ussd`, `at` and `status`. Waits until the modem is
/// initialised, or fails with the reason it could not be opened.
pub async fn open_direct(config: Option<&Path>, modem: Option<&str>) -> Result<Direct, String> {
    let path = crate::config::locate(config).map_err(|e| e.to_string())?;
    let cfg = crate::config::load(&path).map_err(|d| d.render())?;
    let section = match modem {
        Some(n) => cfg
            .modem(n)
            .ok_or_else(|| format!("no modem called `{n}` in {}", path.display()))?,
        None => cfg
            .default_modem()
            .ok_or("several modems are configured: name one with --modem")?,
    }
    .clone();
    let store_path = cfg.store.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&store_path))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let (connector, sim) = connector_for(&section);
    let persist = Arc::new(persist::StorePersist::new(store.clone()));
    let handle = ModemHandle::spawn(modem_config(&section), connector, persist);
    let mut events = handle.events();
    let up = async {
        loop {
            match events.recv().await {
                Ok(Event::Link(l)) if l.state == crate::event::LinkState::Up => return,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return,
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(20), up)
        .await
        .is_err()
    {
        let why = handle
            .status()
            .link_error
            .unwrap_or_else(|| "no answer within 20 s".into());
        return Err(format!("cannot open modem `{}`: {why}", section.name));
    }
    Ok(Direct {
        handle,
        sim,
        store,
        config: Arc::new(cfg),
    })
}

/// Start (or restart) one modem's actor, its event forwarder and, for `device: sim`,
/// its simulator (and demo feeder).
pub(crate) fn start_modem(state: &Arc<State>, m: &crate::config::ModemSection) {
    let cfg = modem_config(m);
    let persist = Arc::new(persist::StorePersist::new(state.store.clone()));
    let mut tasks = Vec::new();
    let (connector, sim) = connector_for(m);
    if let (Some(h), Device::Sim(opts)) = (&sim, &m.device) {
        if opts.demo {
            let from = state
                .loaded()
                .config
                .allow_senders
                .first()
                .cloned()
                .unwrap_or_else(|| "+4917612345678".to_owned());
            tasks.push(tokio::spawn(demo::feed(h.clone(), from)));
        }
    }
    let handle = ModemHandle::spawn(cfg, connector, persist);
    let host = Arc::new(host::ModemHost::new(
        handle.clone(),
        state.policy.clone(),
        state.store.clone(),
        state.bus.clone(),
    ));
    // Forward the modem's events onto the daemon's bus.
    let mut rx = handle.events();
    let bus = state.bus.clone();
    let name = m.name.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    let _ = bus.send(e);
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::error!(modem = %name, missed = n, "event forwarder lagged; events lost");
                }
                Err(_) => break,
            }
        }
    }));
    let entry = Arc::new(ModemEntry {
        handle,
        sim,
        host,
        tasks,
    });
    state
        .modems
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(m.name.clone(), entry);
}

/// Give the scheduler the rules' and scripts' jobs.
pub(crate) fn reschedule(state: &State) {
    let loaded = state.loaded();
    let mut jobs = state.runner.jobs();
    jobs.extend(loaded.script_jobs.iter().cloned());
    state.scheduler.set_jobs(jobs);
}

/// The dispatcher: every event goes to the journal, the rules and the script hooks.
async fn dispatch(state: Arc<State>, mut rx: broadcast::Receiver<Event>) {
    loop {
        let event = match rx.recv().await {
            Ok(e) => e,
            Err(broadcast::error::RecvError::Lagged(n)) => {
                tracing::error!(missed = n, "dispatcher lagged; events were not handled");
                continue;
            }
            Err(_) => break,
        };
        let store = state.store.clone();
        let journal = event.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = store.journal_append(&journal) {
                tracing::warn!(error = %e, "journal write failed");
            }
        });
        log_event(&event);
        if let Event::Schedule(s) = &event {
            if let Some((file, func)) = script_job(&s.job) {
                run_script_job(&state, file, func);
                continue;
            }
        }
        {
            let state = state.clone();
            let event = event.clone();
            tokio::spawn(async move {
                state.runner.dispatch(&event).await;
            });
        }
        run_hooks(&state, &event);
        let dispatched_id = match &event {
            Event::Sms(s) => Some(s.id),
            Event::SmsUndecodable(u) => Some(u.id),
            _ => None,
        };
        if let Some(id) = dispatched_id {
            let store = state.store.clone();
            tokio::task::spawn_blocking(move || store.mark_dispatched(id));
        }
    }
}

/// `script:<stem>:<fn>` → (`<stem>`, `<fn>`).
fn script_job(job: &str) -> Option<(String, String)> {
    let rest = job.strip_prefix("script:")?;
    let (file, func) = rest.rsplit_once(':')?;
    Some((file.to_owned(), func.to_owned()))
}

fn default_host(state: &State) -> Option<Arc<dyn Host>> {
    let name = state.loaded().config.default_modem()?.name.clone();
    state.host_for(&name)
}

fn run_script_job(state: &Arc<State>, file: String, func: String) {
    let scripts = state.loaded().scripts.clone();
    let Some(host) = default_host(state) else {
        return;
    };
    tokio::spawn(async move {
        let stem = file.clone();
        let target = scripts
            .files()
            .into_iter()
            .find(|p| p.file_stem().is_some_and(|s| s.to_string_lossy() == stem))
            .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()));
        match scripts
            .call(target.as_deref(), &func, Vec::new(), host)
            .await
        {
            Ok(_) => tracing::info!(script = %file, function = %func, "scheduled script job ran"),
            Err(e) => {
                tracing::error!(script = %file, function = %func, error = %e, "scheduled script job failed")
            }
        }
    });
}

fn run_hooks(state: &Arc<State>, event: &Event) {
    if crate::script::hook_for(event).is_none() {
        return;
    }
    // Senders can be spoofed and SMS cost money: hooks see SMS and calls from allowed
    // senders only. A rule with `allow_any_sender: true` can still call a script
    // function for everyone else (e.g. to forward every SMS).
    let sender = match event {
        Event::Sms(s) => Some(s.from.as_str()),
        Event::Call(c) => Some(c.from.as_deref().unwrap_or("")),
        _ => None,
    };
    if let Some(from) = sender {
        let allow = &state.loaded().config.allow_senders;
        if !crate::rules::matcher::sender_allowed(from, allow) {
            tracing::debug!(%from, "sender not in allow_senders; script hooks not called");
            return;
        }
    }
    let scripts = state.loaded().scripts.clone();
    let host = match event.modem() {
        Some(m) => state.host_for(m),
        None => default_host(state),
    };
    let Some(host) = host else {
        return;
    };
    let event = event.clone();
    tokio::spawn(async move {
        for outcome in scripts.run_hooks(&event, host).await {
            match outcome.result {
                Ok(_) => {
                    tracing::debug!(script = %outcome.file.display(), hook = outcome.hook, "hook ran")
                }
                Err(e) => {
                    tracing::error!(script = %outcome.file.display(), hook = outcome.hook, error = %e, "script hook failed")
                }
            }
        }
    });
}

fn log_event(e: &Event) {
    match e {
        Event::Sms(s) => {
            tracing::info!(modem = %s.modem, from = %s.from, text = %s.text, parts = s.parts, "sms received")
        }
        Event::SmsSent(s) => {
            tracing::info!(modem = %s.modem, to = %s.to, text = %s.text, state = %s.state, parts = s.parts, "sms sent")
        }
        Event::Ussd(u) => {
            tracing::info!(modem = %u.modem, text = %u.text, status = u.status, "ussd")
        }
        Event::Link(l) => {
            tracing::info!(modem = %l.modem, state = ?l.state, device = ?l.device, reason = ?l.reason, "link")
        }
        Event::Network(n) => {
            tracing::info!(modem = %n.modem, state = ?n.state, operator = ?n.operator, "network")
        }
        Event::Schedule(s) => tracing::debug!(job = %s.job, "schedule due"),
        other => tracing::debug!(kind = other.kind(), "event"),
    }
}

fn log_banner(state: &State) {
    let loaded = state.loaded();
    let modems: Vec<String> = loaded
        .config
        .modems
        .iter()
        .map(|m| format!("{} ({})", m.name, m.device))
        .collect();
    tracing::info!(
        config = %loaded.config.path.display(),
        modems = %modems.join(", "),
        rules = loaded.rules.len(),
        scripts = loaded.scripts.files().len(),
        store = %loaded.config.store.display(),
        socket = %loaded.config.control_socket.display(),
        "atmate running"
    );
    for (job, at) in state.scheduler.next_runs() {
        tracing::info!(%job, next = %at, "scheduled");
    }
}

/// `atmate run`: load, start, run until SIGINT/SIGTERM.
pub async fn run_daemon(config: Option<&Path>) -> Result<(), FatalError> {
    let loaded = load::load_all(config).map_err(FatalError::Invalid)?;
    for w in &loaded.warnings.0 {
        tracing::warn!("{}", w);
    }
    let rt = Runtime::start(loaded).await?;
    rt.run_until(shutdown_signal()).await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
