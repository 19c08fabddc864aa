//! Hot reload: one stream of "something changed" into one function that re-reads and
//! re-validates everything; on success the compiled rules and scripts are swapped
//! (runs in flight finish on the old version), on failure every diagnostic is logged
//! and the previous version keeps running.
//!
//! Watching is deliberately dull: the *directories* are watched (a watch on a single
//! file dies at the first vim or atomic save), events are filtered by name and
//! extension, and bursts are coalesced with a `channel(1)` + `try_send` and a short
//! quiet window (no debouncer thread: it would wake every few milliseconds forever).
//! SIGHUP and `atmate reload` trigger the same path.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::RecursiveMode;
use tokio::sync::mpsc;

use super::{reschedule, start_modem, State};

/// The debounce window: editors write in bursts (temp file, rename, chmod).
#[cfg(not(test))]
const DEBOUNCE: Duration = Duration::from_millis(150);
#[cfg(test)]
const DEBOUNCE: Duration = Duration::from_millis(20);

/// Re-read config, rules and scripts; swap what changed. Returns a summary.
pub(crate) async fn reload(state: &Arc<State>) -> Result<String, String> {
    // One reload at a time: the watcher, SIGHUP and `atmate reload` may fire together,
    // and an older load finishing last must not win.
    let _one = state.reload_lock.lock().await;
    let old = state.loaded();
    let path = old.config.path.clone();
    let loaded = match tokio::task::spawn_blocking(move || super::load::load_from(&path)).await {
        Ok(Ok(l)) => l,
        Ok(Err(d)) => {
            tracing::error!(
                "reload failed; continuing with the previous configuration:\n{}",
                d.render()
            );
            return Err(d.render());
        }
        Err(e) => return Err(e.to_string()),
    };
    let diff = old.config.diff(&loaded.config);
    let mut summary = Vec::new();
    let names = |r: &crate::rules::RuleSet| -> BTreeSet<String> {
        r.rules().iter().map(|r| r.name.clone()).collect()
    };
    let (before, after) = (names(&old.rules), names(&loaded.rules));
    let added: Vec<&String> = after.difference(&before).collect();
    let removed: Vec<&String> = before.difference(&after).collect();
    // A rule changed when anything but its place in the file differs.
    let fingerprint = |r: &crate::rules::Rule| {
        let mut r = r.clone();
        r.place.line = 0;
        r.place.col = 0;
        format!("{r:?}")
    };
    let changed: Vec<&String> = after
        .intersection(&before)
        .filter(|n| match (old.rules.get(n), loaded.rules.get(n)) {
            (Some(a), Some(b)) => fingerprint(a) != fingerprint(b),
            _ => false,
        })
        .collect();
    let list = |what: &str, v: &[&String]| {
        if v.is_empty() {
            String::new()
        } else {
            format!(
                ", {what} {}",
                v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")
            )
        }
    };
    summary.push(format!(
        "{} rule(s) loaded{}{}{}",
        after.len(),
        list("added", &added),
        list("removed", &removed),
        list("changed", &changed),
    ));
    let old_files: Vec<PathBuf> = old
        .scripts
        .files()
        .iter()
        .map(|p| p.to_path_buf())
        .collect();
    let new_files: Vec<PathBuf> = loaded
        .scripts
        .files()
        .iter()
        .map(|p| p.to_path_buf())
        .collect();
    summary.push(format!("scripts reloaded ({} file(s))", new_files.len()));
    if old_files != new_files {
        summary.push(format!("script files now {:?}", new_files));
    }
    let loaded = Arc::new(loaded);
    *state.loaded.write().unwrap_or_else(|e| e.into_inner()) = loaded.clone();
    state.runner.set_rules(loaded.rules.clone());
    let l = &loaded.config.limits;
    state.policy.set_budgets(super::policy::Budgets {
        per_hour: l.sms_per_hour,
        per_day: l.sms_per_day,
        per_recipient_hour: l.sms_per_recipient_per_hour,
    });
    state
        .runner
        .set_allow_senders(loaded.config.allow_senders.clone());
    reschedule(state);
    // A change to a modem's section reopens that modem only.
    for name in diff.modems_removed.iter().chain(diff.modems_changed.iter()) {
        let entry = state
            .modems
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
        if let Some(entry) = entry {
            // Runs in flight may still hold the old host: close the port now, so the
            // new actor can open it and no SMS lands on an actor nobody listens to.
            entry.handle.shutdown().await;
        }
        summary.push(format!("modem {name} stopped"));
    }
    for name in diff.modems_added.iter().chain(diff.modems_changed.iter()) {
        if let Some(m) = loaded.config.modem(name) {
            start_modem(state, m);
            summary.push(format!("modem {name} started"));
        }
    }
    let s = summary.join("; ");
    tracing::info!(changes = %s, "reloaded");
    Ok(s)
}

/// The directories to watch and the files that matter in them.
fn watch_set(state: &State) -> (BTreeSet<PathBuf>, Vec<PathBuf>) {
    let loaded = state.loaded();
    let cfg = &loaded.config;
    let mut dirs = BTreeSet::new();
    let mut files = vec![cfg.path.clone()];
    if let Some(d) = cfg.path.parent() {
        dirs.insert(d.to_path_buf());
    }
    for r in &cfg.rules {
        if r.is_dir() {
            dirs.insert(r.clone());
        } else if let Some(d) = r.parent() {
            dirs.insert(d.to_path_buf());
            files.push(r.clone());
        }
    }
    if cfg.scripts.is_dir() {
        dirs.insert(cfg.scripts.clone());
    }
    (dirs, files)
}

fn relevant(p: &Path, files: &[PathBuf]) -> bool {
    let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
    matches!(ext, "yaml" | "yml" | "rhai") || files.iter().any(|f| f == p)
}

/// The watcher task: directory watches + SIGHUP → reload.
pub(crate) async fn watch(state: Arc<State>) {
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let (dirs, files) = watch_set(&state);
    // A plain watcher: it only calls us when something happens. (A debouncer thread
    // would wake every few milliseconds forever, the daemon's only idle CPU.) Bursts
    // are coalesced below: channel(1) + try_send, then a short quiet window.
    let watcher = notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
        if let Ok(e) = res {
            // Reading the files (our own reload) shows up as Access events.
            let hit = !matches!(e.kind, notify::EventKind::Access(_))
                && e.paths.iter().any(|p| relevant(p, &files));
            tracing::trace!(paths = ?e.paths, kind = ?e.kind, relevant = hit, "file event");
            if hit {
                // A reload is already queued? Then this change is covered by it.
                let _ = tx.try_send(());
            }
        }
    });
    let _watcher = match watcher {
        Ok(mut w) => {
            for dir in &dirs {
                if let Err(e) = notify::Watcher::watch(&mut w, dir, RecursiveMode::NonRecursive) {
                    tracing::warn!(dir = %dir.display(), error = %e, "cannot watch; use `atmate reload` or SIGHUP");
                }
            }
            Some(w)
        }
        Err(e) => {
            tracing::warn!(error = %e, "file watching unavailable; use `atmate reload` or SIGHUP");
            None
        }
    };
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        tokio::select! {
            r = rx.recv() => {
                if r.is_none() {
                    break;
                }
                // Editors save in bursts (temp file, rename, chmod): wait until the
                // directory has been quiet for the debounce window.
                while let Ok(Some(())) = tokio::time::timeout(DEBOUNCE, rx.recv()).await {}
            }
            _ = async { match hup.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending::<()>().await } } => {
                tracing::info!("SIGHUP: reloading");
            }
        }
        let _ = reload(&state).await;
    }
}
