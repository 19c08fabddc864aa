//! Loading config, scripts and rules together, the same way for `atmate run`,
//! hot reload and `atmate check`: every problem of every file is collected.

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::diag::{Diagnostic, Diagnostics};
use crate::rules::RuleSet;
use crate::schedule::{CronSpec, Job, Spec};
use crate::script::ScriptSet;

/// A validated configuration with its compiled rules and scripts.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// `atmate.yaml`.
    pub config: Arc<Config>,
    /// Compiled rules.
    pub rules: Arc<RuleSet>,
    /// Compiled scripts.
    pub scripts: ScriptSet,
    /// Jobs the scripts asked for with `schedule(cron, fn)`.
    pub script_jobs: Vec<Job>,
    /// Warnings (valid, but worth knowing).
    pub warnings: Diagnostics,
}

/// The configured time zone, as the scheduler names it.
pub fn zone(cfg: &Config) -> crate::schedule::cron::Zone {
    match cfg.timezone {
        crate::config::Zone::Local => crate::schedule::cron::Zone::Local,
        crate::config::Zone::Named(tz) => crate::schedule::cron::Zone::Named(tz),
    }
}

fn script_limits(cfg: &Config) -> crate::script::Limits {
    crate::script::Limits {
        max_operations: cfg.limits.script.max_operations,
        wall_clock: cfg.limits.script.wall_clock,
        ..crate::script::Limits::default()
    }
}

/// Find the config (see `config::locate`), then load everything.
pub fn load_all(explicit: Option<&Path>) -> Result<Loaded, Diagnostics> {
    let path = crate::config::locate(explicit).map_err(|e| {
        Diagnostics(vec![Diagnostic::error(
            explicit.unwrap_or(Path::new("atmate.yaml")),
            0,
            0,
            e.to_string(),
        )])
    })?;
    tracing::info!(config = %path.display(), "configuration");
    load_from(&path)
}

/// Load and validate `path`, its scripts and its rules.
pub fn load_from(path: &Path) -> Result<Loaded, Diagnostics> {
    let config = crate::config::load(path)?;
    let mut errors = Diagnostics::default();
    let mut warnings = config.warnings.clone();
    let limits = script_limits(&config);
    let scripts = if config.scripts.is_dir() {
        match ScriptSet::load_dir(&config.scripts, &limits) {
            Ok(s) => Some(s),
            Err(d) => {
                errors.extend(d);
                None
            }
        }
    } else {
        Some(ScriptSet::empty(&limits))
    };
    let mut script_jobs = Vec::new();
    if let Some(s) = &scripts {
        warnings.extend(s.warnings().clone());
        for sched in s.schedules() {
            match CronSpec::parse(&sched.cron, zone(&config)) {
                Ok(c) => script_jobs.push(Job {
                    name: sched.job_name(),
                    spec: Spec::Cron(c),
                }),
                Err(e) => errors.push(sched.diagnostic(e.to_string())),
            }
        }
    }
    let ctx = crate::rules::ValidationContext {
        modems: config.modem_names(),
        default_modem: config.default_modem().map(|m| m.name.clone()),
        timezone: Some(zone(&config)),
        scripts: scripts.as_ref(),
        allow_senders: config.allow_senders.clone(),
    };
    let rules = match crate::rules::load(&config.rules, &ctx) {
        Ok((r, w)) => {
            warnings.extend(w);
            Some(r)
        }
        Err(d) => {
            errors.extend(d);
            None
        }
    };
    match (scripts, rules) {
        (Some(scripts), Some(rules)) if !errors.has_errors() => Ok(Loaded {
            config: Arc::new(config),
            rules: Arc::new(rules),
            scripts,
            script_jobs,
            warnings,
        }),
        _ => Err(errors),
    }
}

/// `atmate check`: (exit code, report). 0 valid, 1 invalid, 2 could not run.
pub fn check(explicit: Option<&Path>) -> (i32, String) {
    let path = match crate::config::locate(explicit) {
        Ok(p) => p,
        Err(e) => return (2, format!("atmate check: {e}")),
    };
    match load_from(&path) {
        Ok(l) => {
            let mut out = String::new();
            for w in &l.warnings.0 {
                out.push_str(&w.render());
                out.push_str("\n\n");
            }
            out.push_str(&format!(
                "{}: ok ({} modem{}, {} rule{}, {} script{})",
                path.display(),
                l.config.modems.len(),
                if l.config.modems.len() == 1 { "" } else { "s" },
                l.rules.len(),
                if l.rules.len() == 1 { "" } else { "s" },
                l.scripts.files().len(),
                if l.scripts.files().len() == 1 {
                    ""
                } else {
                    "s"
                },
            ));
            (0, out)
        }
        Err(d) => {
            let n = d.0.iter().filter(|x| x.is_error()).count();
            (
                1,
                format!(
                    "{}\n\n{}: {n} error{}",
                    d.render(),
                    path.display(),
                    if n == 1 { "" } else { "s" }
                ),
            )
        }
    }
}
