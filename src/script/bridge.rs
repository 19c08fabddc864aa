//! The bridge from a script (running on a blocking-pool thread) to the async [`Host`].
//!
//! A script call runs in [`tokio::task::spawn_blocking`]. When it calls a host
//! function (`at`, `ussd`, `store_get`, …) the blocking thread sends a
//! [`HostRequest`] on an unbounded channel and waits on a oneshot for the answer. The
//! async side ([`run_blocking`]) is the future that spawned the call: it serves those
//! requests by awaiting the `Host` (on the runtime, where the modem handle lives) until
//! the blocking job ends.
//!
//! Why not `block_in_place` + `Handle::block_on`: it panics on the current-thread
//! runtime that `#[tokio::test]` (and a small daemon) uses. Why serve the requests in
//! the calling future rather than a spawned task: host calls then live exactly as long
//! as the call, and dropping the call (a rule in `restart` mode) drops the pending
//! host future and sets the cancel flag, which stops the script.
//!
//! Each host call has its own timeout, the call's remaining wall-clock budget, because
//! `on_progress` cannot interrupt a thread that is blocked waiting for the modem.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::host::{Host, HostError};

use super::engine;
use super::error::{ScriptError, ScriptErrorKind};

/// One host operation a script asked for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum HostOp {
    /// `send_sms(to, text)`
    SendSms(String, String),
    /// `ussd(code)`
    Ussd(String),
    /// `ussd_reply(text)`
    UssdReply(String),
    /// `ussd_cancel()`
    UssdCancel,
    /// `at(command)`
    At(String),
    /// `signal()`
    Signal,
    /// `modem_info()`
    ModemInfo,
    /// `inbox(n)`
    Inbox(usize),
    /// `store_get(key)`
    StoreGet(String),
    /// `store_set(key, value)`
    StoreSet(String, serde_json::Value),
}

/// A request from the script thread to the async side.
pub(crate) struct HostRequest {
    op: HostOp,
    /// The time the script has left; the host call is abandoned after it.
    timeout: Duration,
    reply: oneshot::Sender<Result<serde_json::Value, HostError>>,
}

thread_local! {
    static BRIDGE: RefCell<Option<mpsc::UnboundedSender<HostRequest>>> = const { RefCell::new(None) };
}

/// Restores the previous bridge of this thread when dropped.
pub(crate) struct BridgeGuard {
    previous: Option<mpsc::UnboundedSender<HostRequest>>,
}

impl Drop for BridgeGuard {
    fn drop(&mut self) {
        let prev = self.previous.take();
        BRIDGE.with(|b| *b.borrow_mut() = prev);
    }
}

/// Make `tx` the bridge for host calls made on this thread (`None`: host calls are
/// refused, as while a script's top level runs at load).
pub(crate) fn install(tx: Option<mpsc::UnboundedSender<HostRequest>>) -> BridgeGuard {
    let previous = BRIDGE.with(|b| std::mem::replace(&mut *b.borrow_mut(), tx));
    BridgeGuard { previous }
}

/// Used when a host call happens outside any call context (never in practice: every
/// call path enters one). Matches the default per-call budget.
const FALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a host call from a script failed.
#[derive(Debug)]
pub(crate) enum BridgeError {
    /// No bridge on this thread (the script's top level at load time).
    Unavailable,
    /// The call must stop: wall clock ran out or the caller cancelled. Carries the
    /// Rhai error to return so the script ends as `on_progress` would end it.
    Stop(Box<rhai::EvalAltResult>),
    /// The host answered with an error (the script may catch it).
    Host(HostError),
}

/// Run `op` on the host from the script thread, blocking until the answer, the
/// timeout, or cancellation.
pub(crate) fn host_call(op: HostOp) -> Result<serde_json::Value, BridgeError> {
    if let Some(stop) = engine::stop_error() {
        return Err(BridgeError::Stop(stop));
    }
    let tx = BRIDGE
        .with(|b| b.borrow().clone())
        .ok_or(BridgeError::Unavailable)?;
    let timeout = engine::remaining().unwrap_or(FALLBACK_TIMEOUT);
    let (reply, rx) = oneshot::channel();
    if tx.send(HostRequest { op, timeout, reply }).is_err() {
        // The async side is gone: the call was dropped.
        return Err(BridgeError::Stop(cancelled()));
    }
    match rx.blocking_recv() {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(HostError::Timeout(what))) => {
            // When it was our budget that ran out, end the script as a wall-clock stop
            // rather than a catchable error.
            match engine::stop_error() {
                Some(stop) => Err(BridgeError::Stop(stop)),
                None => Err(BridgeError::Host(HostError::Timeout(what))),
            }
        }
        Ok(Err(e)) => Err(BridgeError::Host(e)),
        Err(_) => Err(BridgeError::Stop(cancelled())),
    }
}

fn cancelled() -> Box<rhai::EvalAltResult> {
    Box::new(rhai::EvalAltResult::ErrorTerminated(
        rhai::Dynamic::from(engine::CANCELLED_MESSAGE.to_owned()),
        rhai::Position::NONE,
    ))
}

/// Answer one request on the async side.
async fn serve(host: &dyn Host, req: HostRequest) {
    let HostRequest { op, timeout, reply } = req;
    let what = op_name(&op);
    let result = match tokio::time::timeout(timeout, perform(host, op)).await {
        Ok(r) => r,
        Err(_) => Err(HostError::Timeout(format!(
            "{what} took longer than the script's remaining {}",
            humantime::format_duration(round_ms(timeout))
        ))),
    };
    // The script thread may have given up (cancelled); nothing to do then.
    let _ = reply.send(result);
}

fn round_ms(d: Duration) -> Duration {
    Duration::from_millis(d.as_millis().min(u128::from(u64::MAX)) as u64)
}

fn op_name(op: &HostOp) -> &'static str {
    match op {
        HostOp::SendSms(..) => "send_sms",
        HostOp::Ussd(_) => "ussd",
        HostOp::UssdReply(_) => "ussd_reply",
        HostOp::UssdCancel => "ussd_cancel",
        HostOp::At(_) => "at",
        HostOp::Signal => "signal",
        HostOp::ModemInfo => "modem_info",
        HostOp::Inbox(_) => "inbox",
        HostOp::StoreGet(_) => "store_get",
        HostOp::StoreSet(..) => "store_set",
    }
}

fn to_json<T: serde::Serialize>(v: T) -> Result<serde_json::Value, HostError> {
    serde_json::to_value(v).map_err(|e| HostError::Other(format!("cannot encode the answer: {e}")))
}

async fn perform(host: &dyn Host, op: HostOp) -> Result<serde_json::Value, HostError> {
    match op {
        HostOp::SendSms(to, text) => host.send_sms(&to, &text).await.map(serde_json::Value::from),
        HostOp::Ussd(code) => to_json(host.ussd(&code).await?),
        HostOp::UssdReply(text) => to_json(host.ussd_reply(&text).await?),
        HostOp::UssdCancel => host.ussd_cancel().await.map(|()| serde_json::Value::Null),
        HostOp::At(cmd) => host.at(&cmd).await.map(serde_json::Value::String),
        HostOp::Signal => to_json(host.signal().await?),
        HostOp::ModemInfo => host.modem_info().await,
        HostOp::Inbox(n) => to_json(host.inbox(n).await?),
        HostOp::StoreGet(key) => Ok(host
            .store_get(&key)
            .await?
            .unwrap_or(serde_json::Value::Null)),
        HostOp::StoreSet(key, value) => host
            .store_set(&key, value)
            .await
            .map(|()| serde_json::Value::Null),
    }
}

/// Sets the flag when dropped: the future running the call went away.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Run `job` on the blocking pool and serve its host requests until it ends.
///
/// `job` receives the request sender (to [`install`] on its thread) and the cancel
/// flag (for [`engine::enter_call`]). Dropping the returned future cancels the job:
/// the flag is set and any pending host call is dropped.
pub(crate) async fn run_blocking<R, F>(host: Arc<dyn Host>, job: F) -> Result<R, ScriptError>
where
    R: Send + 'static,
    F: FnOnce(mpsc::UnboundedSender<HostRequest>, Arc<AtomicBool>) -> R + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel();
    let cancel = Arc::new(AtomicBool::new(false));
    let _cancel_on_drop = CancelOnDrop(cancel.clone());
    let handle = tokio::task::spawn_blocking(move || job(tx, cancel));
    tokio::pin!(handle);
    loop {
        tokio::select! {
            done = &mut handle => {
                return done.map_err(|e| {
                    ScriptError::new(
                        ScriptErrorKind::Runtime,
                        format!("the script thread failed: {e}"),
                    )
                });
            }
            Some(req) = rx.recv() => serve(host.as_ref(), req).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::testing::{Call, RecordingHost};
    use crate::script::loader::test_support::TestHost;

    fn job(
        ops: Vec<HostOp>,
    ) -> impl FnOnce(
        mpsc::UnboundedSender<HostRequest>,
        Arc<AtomicBool>,
    ) -> Vec<Result<serde_json::Value, String>> {
        move |tx, cancel| {
            let _call = engine::enter_call(Duration::from_secs(5), None, Some(cancel));
            let _b = install(Some(tx));
            ops.into_iter()
                .map(|op| {
                    host_call(op).map_err(|e| match e {
                        BridgeError::Host(h) => h.to_string(),
                        other => format!("{other:?}"),
                    })
                })
                .collect()
        }
    }

    async fn exercise() {
        let host = Arc::new(RecordingHost::new());
        let out = run_blocking(
            host.clone(),
            job(vec![
                HostOp::At("AT+CSQ".into()),
                HostOp::SendSms("+49".into(), "hi".into()),
                HostOp::StoreSet("k".into(), serde_json::json!([1, 2])),
                HostOp::StoreGet("k".into()),
                HostOp::StoreGet("missing".into()),
                HostOp::Signal,
            ]),
        )
        .await
        .expect("job ran");
        assert_eq!(out[0], Ok(serde_json::json!("")));
        assert_eq!(out[1], Ok(serde_json::json!(2)));
        assert_eq!(out[3], Ok(serde_json::json!([1, 2])));
        assert_eq!(out[4], Ok(serde_json::Value::Null));
        assert_eq!(
            out[5],
            Ok(serde_json::json!({"csq": 18, "dbm": -77, "bars": 3}))
        );
        assert_eq!(
            host.calls(),
            vec![
                Call::At("AT+CSQ".into()),
                Call::SendSms("+49".into(), "hi".into())
            ]
        );
    }

    #[tokio::test]
    async fn bridge_works_on_the_current_thread_runtime() {
        exercise().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bridge_works_on_the_multi_thread_runtime() {
        exercise().await;
    }

    #[test]
    fn no_bridge_means_unavailable() {
        let _b = install(None);
        assert!(matches!(
            host_call(HostOp::Signal),
            Err(BridgeError::Unavailable)
        ));
    }

    fn stuck_host() -> Arc<TestHost> {
        Arc::new(TestHost {
            stuck_at: true,
            ..TestHost::default()
        })
    }

    #[tokio::test]
    async fn a_stuck_host_call_ends_with_the_budget() {
        let host = stuck_host();
        let started = std::time::Instant::now();
        let out = run_blocking(host, |tx, cancel| {
            let _call = engine::enter_call(Duration::from_millis(200), None, Some(cancel));
            let _b = install(Some(tx));
            match host_call(HostOp::At("AT".into())) {
                Err(BridgeError::Stop(e)) => ScriptError::from_eval(&e).kind,
                other => panic!("expected a stop, got {other:?}"),
            }
        })
        .await
        .expect("job ran");
        assert_eq!(out, ScriptErrorKind::Timeout);
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn dropping_the_call_cancels_a_pending_host_call() {
        let host = stuck_host();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let fut = run_blocking(host, move |tx, cancel| {
            let _call = engine::enter_call(Duration::from_secs(30), None, Some(cancel));
            let _b = install(Some(tx));
            let r = host_call(HostOp::At("AT".into()));
            let kind = match r {
                Err(BridgeError::Stop(e)) => Some(ScriptError::from_eval(&e).kind),
                _ => None,
            };
            let _ = done_tx.send(kind);
        });
        // Give the job time to send its request, then drop the call.
        let _ = tokio::time::timeout(Duration::from_millis(100), fut).await;
        let kind =
            tokio::task::spawn_blocking(move || done_rx.recv_timeout(Duration::from_secs(5)))
                .await
                .expect("join")
                .expect("job finished after the drop");
        assert_eq!(kind, Some(ScriptErrorKind::Cancelled));
    }
}
