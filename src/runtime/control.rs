//! The control socket server: JSON lines (see `crate::control`), owner-only
//! permissions, one task per connection.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use super::State;
use crate::control::{Request, Response};

/// Bind the socket (refusing to steal one a live daemon still serves) and return the
/// accept loop to spawn.
pub(crate) async fn serve(
    state: Arc<State>,
) -> Result<impl std::future::Future<Output = ()>, String> {
    let path = state.loaded().config.control_socket.clone();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    if path == state.loaded().config.store {
        return Err(format!(
            "control_socket and store are the same file ({})",
            path.display()
        ));
    }
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            return Err(format!(
                "{} exists and is not a socket; refusing to replace it (check control_socket:)",
                path.display()
            ));
        }
        if UnixStream::connect(&path).await.is_ok() {
            return Err(format!(
                "another atmate daemon already serves {} (stop it first; two daemons must not share a modem)",
                path.display()
            ));
        }
        // A stale socket from a crash.
        let _ = std::fs::remove_file(&path);
    }
    let listener =
        UnixListener::bind(&path).map_err(|e| format!("cannot bind {}: {e}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", path.display()))?;
    Ok(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(connection(state.clone(), stream));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "control socket accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        }
    })
}

async fn connection(state: Arc<State>, stream: UnixStream) {
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.trim().is_empty() {
            continue;
        }
        let req: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                if write(&mut w, &Response::err(format!("bad request: {e}")))
                    .await
                    .is_err()
                {
                    return;
                }
                continue;
            }
        };
        if let Request::Subscribe = req {
            let mut rx = state.bus.subscribe();
            if write(&mut w, &Response::ok(serde_json::json!("subscribed")))
                .await
                .is_err()
            {
                return;
            }
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        let mut s = e.to_json().to_string();
                        s.push('\n');
                        if w.write_all(s.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(_) => return,
                }
            }
        }
        let resp = handle(&state, req).await;
        if write(&mut w, &resp).await.is_err() {
            return;
        }
    }
}

async fn write(w: &mut tokio::net::unix::OwnedWriteHalf, r: &Response) -> std::io::Result<()> {
    let mut s = serde_json::to_string(r).unwrap_or_else(|_| "{\"ok\":false}".into());
    s.push('\n');
    w.write_all(s.as_bytes()).await
}

fn to_json<T: serde::Serialize>(v: T) -> Response {
    match serde_json::to_value(v) {
        Ok(v) => Response::ok(v),
        Err(e) => Response::err(e),
    }
}

async fn handle(state: &Arc<State>, req: Request) -> Response {
    use crate::host::Host;
    match req {
        Request::Send { to, text, modem } => match state.modem(modem.as_deref()) {
            // Through the Host, so send budgets apply to the CLI as well.
            Ok(m) => match m.host.send_sms(&to, &text).await {
                Ok(id) => to_json(serde_json::json!({ "id": id })),
                Err(e) => Response::err(e),
            },
            Err(e) => Response::err(e),
        },
        Request::Ussd { code, modem } => match state.modem(modem.as_deref()) {
            Ok(m) => match m.handle.ussd(&code).await {
                Ok(r) => to_json(r),
                Err(e) => Response::err(e),
            },
            Err(e) => Response::err(e),
        },
        Request::UssdReply { text, modem } => match state.modem(modem.as_deref()) {
            Ok(m) => match m.handle.ussd_reply(&text).await {
                Ok(r) => to_json(r),
                Err(e) => Response::err(e),
            },
            Err(e) => Response::err(e),
        },
        Request::UssdCancel { modem } => match state.modem(modem.as_deref()) {
            Ok(m) => match m.handle.ussd_cancel().await {
                Ok(()) => Response::ok(serde_json::Value::Null),
                Err(e) => Response::err(e),
            },
            Err(e) => Response::err(e),
        },
        Request::At { command, modem } => match state.modem(modem.as_deref()) {
            Ok(m) => match m.handle.at(&command).await {
                Ok(r) => to_json(r),
                Err(e) => Response::err(e),
            },
            Err(e) => Response::err(e),
        },
        Request::Status => status(state),
        Request::Inbox { from, since, limit } => {
            let mut q = crate::store::InboxQuery::newest(limit.unwrap_or(20));
            q.from = from;
            if let Some(s) = since {
                match chrono::DateTime::parse_from_rfc3339(&s) {
                    Ok(t) => q.since = Some(t.with_timezone(&chrono::Utc)),
                    Err(e) => return Response::err(format!("--since: {e}")),
                }
            }
            let store = state.store.clone();
            match tokio::task::spawn_blocking(move || store.inbox(&q)).await {
                Ok(Ok(msgs)) => to_json(msgs),
                Ok(Err(e)) => Response::err(e),
                Err(e) => Response::err(e),
            }
        }
        Request::Outbox { limit } => {
            let q = crate::store::OutboxQuery {
                limit: limit.unwrap_or(20),
                ..Default::default()
            };
            let store = state.store.clone();
            match tokio::task::spawn_blocking(move || store.outbox(&q)).await {
                Ok(Ok(msgs)) => to_json(msgs),
                Ok(Err(e)) => Response::err(e),
                Err(e) => Response::err(e),
            }
        }
        Request::Reload => match super::reload::reload(state).await {
            Ok(s) => Response::ok(serde_json::json!(s)),
            Err(e) => Response::err(e),
        },
        Request::Subscribe => Response::err("subscribe is handled by the connection"),
    }
}

fn status(state: &Arc<State>) -> Response {
    let modems: Vec<serde_json::Value> = state
        .modems
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .values()
        .map(|m| serde_json::to_value(m.handle.status()).unwrap_or_default())
        .collect();
    let rules = serde_json::to_value(state.runner.status()).unwrap_or_default();
    let schedules: Vec<serde_json::Value> = state
        .scheduler
        .next_runs()
        .into_iter()
        .map(|(job, at)| serde_json::json!({ "job": job, "next": at.to_rfc3339() }))
        .collect();
    Response::ok(serde_json::json!({
        "started": state.started.to_rfc3339(),
        "config": state.loaded().config.path.display().to_string(),
        "modems": modems,
        "rules": rules,
        "schedules": schedules,
    }))
}
