//! Loading a folder of `*.rhai` files into a [`ScriptSet`]: compile every file, report
//! all failures as `path:line:col` diagnostics, find the hooks, run each top level
//! once to collect `schedule()` jobs.
//!
//! # Life of a script
//! - **Load** (every start and every reload): the file is compiled and its top level
//!   runs once, in the sandbox, without a host (see [`super::api`]). That is where
//!   `schedule()` is called; `const` and `let` at the top level live only for that run.
//! - **Calls** (hooks, rule `script:` actions, scheduled jobs): the named function is
//!   called with a fresh, empty scope; the top level does *not* run again. Rhai
//!   functions never see top-level variables anyway, so nothing a call does survives
//!   it: state that must last from one event to the next (or across a reload, which
//!   recompiles everything) goes through `store_get`/`store_set`.
//! - Only public functions count: a `private fn` is a helper of its file and is never
//!   called as a hook, by a rule or by a schedule.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{Engine, Scope, AST};

use crate::diag::{Diagnostic, Diagnostics};

use super::api::{self, collect_schedules, EnvAccess};
use super::bridge;
use super::engine::{enter_call, new_engine, Limits};
use super::error::ScriptError;
use super::hooks::HOOKS;

/// A job a script asked for with `schedule(cron, fn_name)` at its top level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptSchedule {
    /// The script file.
    pub file: PathBuf,
    /// The crontab expression as written (trimmed); the runtime parses it.
    pub cron: String,
    /// The function to call (defined in `file`, no parameters).
    pub fn_name: String,
    /// 1-based line of the `schedule()` call, for diagnostics.
    pub line: usize,
    /// 1-based column of the `schedule()` call.
    pub col: usize,
}

impl ScriptSchedule {
    /// The job name used by the scheduler and in `schedule` events:
    /// `script:<file stem>:<fn>`, e.g. `script:balance:report`.
    pub fn job_name(&self) -> String {
        format!("script:{}:{}", stem_of(&self.file), self.fn_name)
    }

    /// The file name (`balance.rhai`), as [`ScriptSet::call`] takes it.
    pub fn file_name(&self) -> String {
        file_name_of(&self.file)
    }

    /// A diagnostic at the `schedule()` call (e.g. when the crontab does not parse).
    pub fn diagnostic(&self, message: impl Into<String>) -> Diagnostic {
        let d = Diagnostic::error(&self.file, self.line, self.col, message);
        match std::fs::read_to_string(&self.file) {
            Ok(text) => d.with_source(&text),
            Err(_) => d,
        }
    }
}

/// One compiled script file.
pub(crate) struct Script {
    pub(crate) path: PathBuf,
    pub(crate) file_name: String,
    pub(crate) stem: String,
    pub(crate) ast: AST,
    /// Public functions: name → parameter counts.
    pub(crate) fns: HashMap<String, Vec<usize>>,
    /// Where each function is defined (first definition of the name), 1-based.
    fn_places: HashMap<String, (usize, usize)>,
}

impl Script {
    pub(crate) fn has_fn(&self, name: &str, arity: usize) -> bool {
        self.fns.get(name).is_some_and(|a| a.contains(&arity))
    }

    /// Where function `name` is defined, `(0, 0)` when unknown.
    pub(crate) fn fn_place(&self, name: &str) -> (usize, usize) {
        self.fn_places.get(name).copied().unwrap_or((0, 0))
    }

    fn matches_file(&self, file: &str) -> bool {
        let file = Path::new(file)
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or(file);
        self.file_name == file || self.stem == file
    }
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) limits: Limits,
    pub(crate) scripts: Vec<Script>,
    schedules: Vec<ScriptSchedule>,
    warnings: Diagnostics,
}

/// All loaded scripts, sharing one sandboxed engine. Cheap to clone; swap the whole
/// set on reload.
#[derive(Clone)]
pub struct ScriptSet {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for ScriptSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptSet")
            .field("files", &self.files())
            .field("limits", &self.inner.limits)
            .finish_non_exhaustive()
    }
}

fn file_name_of(p: &Path) -> String {
    p.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn stem_of(p: &Path) -> String {
    p.file_stem()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl ScriptSet {
    /// A set with no scripts (no scripts folder configured).
    pub fn empty(limits: &Limits) -> ScriptSet {
        ScriptSet {
            inner: Arc::new(Inner {
                engine: new_engine(limits),
                limits: limits.clone(),
                scripts: Vec::new(),
                schedules: Vec::new(),
                warnings: Diagnostics::default(),
            }),
        }
    }

    /// Load every `*.rhai` file directly in `dir` (not in sub-folders; names starting
    /// with `.`, such as editor swap files, are skipped), with the default
    /// [`EnvAccess`]. All problems of all files are collected.
    ///
    /// This reads files and runs each script's top level (bounded by `limits`), so
    /// call it from a blocking context (`spawn_blocking`) in async code.
    pub fn load_dir(dir: &Path, limits: &Limits) -> Result<ScriptSet, Diagnostics> {
        ScriptSet::load_dir_with(dir, limits, &EnvAccess::default())
    }

    /// [`ScriptSet::load_dir`] with an explicit `env()` policy.
    pub fn load_dir_with(
        dir: &Path,
        limits: &Limits,
        env: &EnvAccess,
    ) -> Result<ScriptSet, Diagnostics> {
        let entries = std::fs::read_dir(dir).map_err(|e| {
            Diagnostics(vec![Diagnostic::error(
                dir,
                0,
                0,
                format!("cannot read the scripts folder: {e}"),
            )])
        })?;
        let mut paths = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let name = file_name_of(&path);
            if name.starts_with('.') || path.extension().is_none_or(|e| e != "rhai") {
                continue;
            }
            if path.is_file() {
                paths.push(path);
            }
        }
        ScriptSet::load_files_with(&paths, limits, env)
    }

    /// Load the given files (in name order), with the default [`EnvAccess`].
    pub fn load_files(paths: &[PathBuf], limits: &Limits) -> Result<ScriptSet, Diagnostics> {
        ScriptSet::load_files_with(paths, limits, &EnvAccess::default())
    }

    /// [`ScriptSet::load_files`] with an explicit `env()` policy.
    pub fn load_files_with(
        paths: &[PathBuf],
        limits: &Limits,
        env: &EnvAccess,
    ) -> Result<ScriptSet, Diagnostics> {
        let mut engine = new_engine(limits);
        api::register(&mut engine, env);

        let mut paths = paths.to_vec();
        paths.sort();
        paths.dedup();

        let mut diags = Diagnostics::default();
        let mut scripts = Vec::new();
        let mut schedules = Vec::new();
        let mut seen: HashMap<String, PathBuf> = HashMap::new();
        for path in paths {
            let stem = stem_of(&path);
            if let Some(first) = seen.insert(stem.clone(), path.clone()) {
                diags.push(Diagnostic::error(
                    &path,
                    0,
                    0,
                    format!(
                        "another script has the same name `{stem}` ({}); rules and schedules \
                         name scripts by file name, so names must be unique",
                        first.display()
                    ),
                ));
                continue;
            }
            if let Some((script, jobs)) = load_one(&engine, limits, &path, &mut diags) {
                scripts.push(script);
                schedules.extend(jobs);
            }
        }
        if diags.has_errors() {
            return Err(diags);
        }
        Ok(ScriptSet {
            inner: Arc::new(Inner {
                engine,
                limits: limits.clone(),
                scripts,
                schedules,
                warnings: diags,
            }),
        })
    }

    /// The loaded files, in name order.
    pub fn files(&self) -> Vec<&Path> {
        self.inner
            .scripts
            .iter()
            .map(|s| s.path.as_path())
            .collect()
    }

    /// Warnings found while loading (e.g. a hook with the wrong number of parameters).
    pub fn warnings(&self) -> &Diagnostics {
        &self.inner.warnings
    }

    /// The limits the set was loaded with.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// True if a public function `name` taking `arity` parameters exists in `file`
    /// (matched by file name `x.rhai` or stem `x`), or in any script when `file` is
    /// `None`. For validating rules' `script: { file, fn }`.
    pub fn has_fn(&self, file: Option<&str>, name: &str, arity: usize) -> bool {
        self.inner
            .scripts
            .iter()
            .filter(|s| file.is_none_or(|f| s.matches_file(f)))
            .any(|s| s.has_fn(name, arity))
    }

    /// The jobs the scripts registered with `schedule(cron, fn_name)`.
    pub fn schedules(&self) -> Vec<ScriptSchedule> {
        self.inner.schedules.clone()
    }

    /// Find the script to call: by file, or the only one defining `name/arity`.
    pub(crate) fn find(
        &self,
        file: Option<&str>,
        name: &str,
        arity: usize,
    ) -> Result<usize, ScriptError> {
        use super::error::ScriptErrorKind::NotFound;
        let scripts = &self.inner.scripts;
        match file {
            Some(f) => {
                let i = scripts
                    .iter()
                    .position(|s| s.matches_file(f))
                    .ok_or_else(|| ScriptError::new(NotFound, format!("no script named `{f}`")))?;
                if scripts[i].has_fn(name, arity) {
                    Ok(i)
                } else {
                    Err(ScriptError::new(
                        NotFound,
                        format!(
                            "{} has no function `{name}` taking {arity} parameter(s)",
                            scripts[i].file_name
                        ),
                    )
                    .with_path(&scripts[i].path))
                }
            }
            None => {
                let found: Vec<usize> = scripts
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.has_fn(name, arity))
                    .map(|(i, _)| i)
                    .collect();
                match found.as_slice() {
                    [i] => Ok(*i),
                    [] => Err(ScriptError::new(
                        NotFound,
                        format!(
                            "no script defines a function `{name}` taking {arity} parameter(s)"
                        ),
                    )),
                    many => Err(ScriptError::new(
                        NotFound,
                        format!(
                            "function `{name}` is defined in several scripts ({}); name the file",
                            many.iter()
                                .map(|i| scripts[*i].file_name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    )),
                }
            }
        }
    }
}

/// Where each `fn name(` starts in `text` (line and column of `fn`, 1-based).
///
/// Rhai reports sandbox stops (operation limit, wall clock, data size) at the call
/// site of the outermost function, which for a call from Rust is no place at all; the
/// definition of the function that was called is the best place we can give then.
/// A textual scan is enough: the file compiled, so `fn` followed by a name and `(` at
/// the start of a statement is a definition (a match inside a string or comment only
/// matters if it precedes the real one, and then the line is merely approximate).
fn fn_places(text: &str) -> HashMap<String, (usize, usize)> {
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let mut out = HashMap::new();
    let Some(re) = RE
        .get_or_init(|| {
            regex::Regex::new(r"^(\s*)(?:private\s+)?fn\s+([A-Za-z_][A-Za-z0-9_]*)\s*\(").ok()
        })
        .as_ref()
    else {
        return out;
    };
    for (i, line) in text.lines().enumerate() {
        if let Some(c) = re.captures(line) {
            let col = c.get(1).map_or(0, |m| m.as_str().chars().count()) + 1;
            if let Some(name) = c.get(2) {
                out.entry(name.as_str().to_owned()).or_insert((i + 1, col));
            }
        }
    }
    out
}

/// Compile one file, check its hooks and run its top level. Problems go to `diags`.
fn load_one(
    engine: &Engine,
    limits: &Limits,
    path: &Path,
    diags: &mut Diagnostics,
) -> Option<(Script, Vec<ScriptSchedule>)> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            diags.push(Diagnostic::error(
                path,
                0,
                0,
                format!("cannot read the script: {e}"),
            ));
            return None;
        }
    };
    let mut ast = match engine.compile(&text) {
        Ok(ast) => ast,
        Err(e) => {
            let err = ScriptError::from_parse(&e).with_path(path);
            diags.push(err.to_diagnostic(Some(&text)));
            return None;
        }
    };
    ast.set_source(path.display().to_string());

    let mut fns: HashMap<String, Vec<usize>> = HashMap::new();
    for f in ast.iter_functions() {
        if f.access == rhai::FnAccess::Private {
            continue;
        }
        fns.entry(f.name.to_owned())
            .or_default()
            .push(f.params.len());
    }
    for (hook, arity, params) in HOOKS.iter().map(|h| (h.name, h.arity, h.params)) {
        if let Some(arities) = fns.get(hook) {
            if !arities.contains(&arity) {
                diags.push(Diagnostic::warning(
                    path,
                    0,
                    0,
                    format!(
                        "`{hook}` must take {arity} parameter(s) ({params}); this one takes {}, so it is never called",
                        arities.iter().map(usize::to_string).collect::<Vec<_>>().join(" or ")
                    ),
                ));
            }
        }
    }

    // Run the top level once, without a host, to collect schedule() calls.
    let (ran, registered) = collect_schedules(|| {
        let _call = enter_call(limits.wall_clock, Some(path), None);
        let _bridge = bridge::install(None);
        engine.run_ast_with_scope(&mut Scope::new(), &ast)
    });
    if let Err(e) = ran {
        let err = ScriptError::from_eval(&e).with_path(path);
        let mut d = err.to_diagnostic(Some(&text));
        d.message = format!("the top level failed while loading: {}", d.message);
        diags.push(d);
        return None;
    }

    let mut jobs = Vec::new();
    for r in registered {
        let place = |msg: String| Diagnostic::error(path, r.line, r.col, msg).with_source(&text);
        if r.cron.is_empty() {
            diags.push(place(format!(
                "schedule(\"\", {:?}): the crontab is empty",
                r.fn_name
            )));
            continue;
        }
        let has = fns.get(&r.fn_name).is_some_and(|a| a.contains(&0));
        if !has {
            diags.push(place(format!(
                "schedule({:?}, {:?}): this script defines no public function `{}` without parameters",
                r.cron, r.fn_name, r.fn_name
            )));
            continue;
        }
        jobs.push(ScriptSchedule {
            file: path.to_path_buf(),
            cron: r.cron,
            fn_name: r.fn_name,
            line: r.line,
            col: r.col,
        });
    }

    Some((
        Script {
            path: path.to_path_buf(),
            file_name: file_name_of(path),
            stem: stem_of(path),
            ast,
            fns,
            fn_places: fn_places(&text),
        },
        jobs,
    ))
}

/// Helpers for the script tests: write files into a temp dir and load them; a host
/// with knobs the shared `RecordingHost` does not have.
#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use crate::event::{Signal, UssdReply};
    use crate::host::testing::RecordingHost;
    use crate::host::{Host, HostError, InboxEntry};

    /// A [`RecordingHost`] with an inbox, an `at` that never answers (when
    /// `stuck_at`), and a `send_sms` that fails (when `send_error` is set).
    #[derive(Default)]
    pub(crate) struct TestHost {
        pub(crate) inner: RecordingHost,
        pub(crate) inbox: Vec<InboxEntry>,
        pub(crate) stuck_at: bool,
        pub(crate) send_error: Option<HostError>,
    }

    #[async_trait::async_trait]
    impl Host for TestHost {
        async fn send_sms(&self, to: &str, text: &str) -> Result<i64, HostError> {
            match &self.send_error {
                Some(e) => Err(e.clone()),
                None => self.inner.send_sms(to, text).await,
            }
        }
        async fn ussd(&self, code: &str) -> Result<UssdReply, HostError> {
            self.inner.ussd(code).await
        }
        async fn ussd_reply(&self, text: &str) -> Result<UssdReply, HostError> {
            self.inner.ussd_reply(text).await
        }
        async fn ussd_cancel(&self) -> Result<(), HostError> {
            self.inner.ussd_cancel().await
        }
        async fn at(&self, command: &str) -> Result<String, HostError> {
            if self.stuck_at {
                std::future::pending::<()>().await;
            }
            self.inner.at(command).await
        }
        async fn signal(&self) -> Result<Signal, HostError> {
            self.inner.signal().await
        }
        async fn modem_info(&self) -> Result<serde_json::Value, HostError> {
            self.inner.modem_info().await
        }
        async fn inbox(&self, n: usize) -> Result<Vec<InboxEntry>, HostError> {
            Ok(self.inbox.iter().take(n).cloned().collect())
        }
        async fn store_get(&self, key: &str) -> Result<Option<serde_json::Value>, HostError> {
            self.inner.store_get(key).await
        }
        async fn store_set(&self, key: &str, value: serde_json::Value) -> Result<(), HostError> {
            self.inner.store_set(key, value).await
        }
        async fn set_recovery(&self, enabled: bool) -> Result<(), HostError> {
            self.inner.set_recovery(enabled).await
        }
    }

    /// Write `files` (name, source) into a fresh temp dir and load it.
    pub(crate) fn load_with(
        files: &[(&str, &str)],
        limits: &Limits,
    ) -> (tempfile::TempDir, Result<ScriptSet, Diagnostics>) {
        let dir = tempfile::tempdir().expect("temp dir");
        for (name, src) in files {
            std::fs::write(dir.path().join(name), src).expect("write script");
        }
        let set = ScriptSet::load_dir(dir.path(), limits);
        (dir, set)
    }

    /// Like [`load_with`] with default limits, expecting success.
    pub(crate) fn load(files: &[(&str, &str)]) -> (tempfile::TempDir, ScriptSet) {
        let (dir, set) = load_with(files, &Limits::default());
        let set = set.unwrap_or_else(|d| panic!("load failed:\n{}", d.render()));
        (dir, set)
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{load, load_with};
    use super::*;
    use crate::diag::Severity;

    #[test]
    fn loads_only_rhai_files_in_name_order() {
        let (dir, set) = load(&[
            ("b.rhai", "fn b() { 2 }"),
            ("a.rhai", "fn a() { 1 }"),
            ("notes.txt", "not a script {"),
            (".a.rhai.swp", "garbage {"),
        ]);
        let names: Vec<_> = set.files().iter().map(|p| file_name_of(p)).collect();
        assert_eq!(names, ["a.rhai", "b.rhai"]);
        assert!(set.files()[0].starts_with(dir.path()));
    }

    #[test]
    fn compile_errors_of_all_files_are_collected_with_place_and_source() {
        let (dir, set) = load_with(
            &[
                ("good.rhai", "fn ok() { 1 }"),
                ("one.rhai", "fn on_sms(sms) {\n    let x = ;\n}\n"),
                ("two.rhai", "// fine\nfn f() {\n  if true { 1 \n}\n"),
            ],
            &Limits::default(),
        );
        let diags = set.expect_err("two broken files");
        assert_eq!(diags.0.len(), 2, "{}", diags.render());
        let one = &diags.0[0];
        assert_eq!(one.path, dir.path().join("one.rhai"));
        assert_eq!((one.line, one.col), (2, 13), "{}", one.render());
        assert_eq!(one.source_line.as_deref(), Some("    let x = ;"));
        assert!(one.render().starts_with(&format!(
            "{}:2:13: error: ",
            dir.path().join("one.rhai").display()
        )));
        let two = &diags.0[1];
        assert_eq!(two.path, dir.path().join("two.rhai"));
        assert!(two.line >= 4, "{}", two.render());
    }

    #[test]
    fn eval_is_a_compile_error_and_import_fails_at_load() {
        let (_dir, set) = load_with(
            &[("e.rhai", "fn f() {\n  eval(\"1\")\n}")],
            &Limits::default(),
        );
        let d = set.expect_err("eval refused");
        assert_eq!((d.0[0].line, d.0[0].col), (2, 3), "{}", d.render());

        let (_dir, set) = load_with(
            &[("i.rhai", "import \"x\" as x;\nfn f() { 1 }")],
            &Limits::default(),
        );
        let d = set.expect_err("import refused");
        assert_eq!(d.0[0].line, 1, "{}", d.render());
        assert!(
            d.0[0].message.contains("module `x` not found"),
            "{}",
            d.render()
        );
    }

    #[test]
    fn has_fn_by_file_name_or_stem_and_public_only() {
        let (_dir, set) = load(&[
            (
                "tools.rhai",
                "fn report() {} fn add(a, b) { a + b } private fn helper() {}",
            ),
            ("other.rhai", "fn report() {}"),
        ]);
        assert!(set.has_fn(Some("tools.rhai"), "add", 2));
        assert!(set.has_fn(Some("tools"), "add", 2));
        assert!(set.has_fn(Some("scripts/tools.rhai"), "add", 2));
        assert!(!set.has_fn(Some("tools"), "add", 1));
        assert!(!set.has_fn(Some("other"), "add", 2));
        assert!(!set.has_fn(Some("tools"), "helper", 0));
        assert!(set.has_fn(None, "add", 2));
        assert!(!set.has_fn(Some("nope"), "report", 0));
        // Ambiguous without a file.
        let err = set.find(None, "report", 0).expect_err("ambiguous");
        assert!(err.message.contains("other.rhai, tools.rhai"), "{err}");
        assert!(set.find(Some("tools"), "report", 0).is_ok());
    }

    #[test]
    fn hook_with_wrong_arity_is_a_warning() {
        let (_dir, set) = load(&[("h.rhai", "fn on_sms() { }")]);
        let w = &set.warnings().0;
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].severity, Severity::Warning);
        assert!(
            w[0].message.contains("`on_sms` must take 1 parameter"),
            "{}",
            w[0]
        );
    }

    #[test]
    fn schedule_at_top_level_registers_a_job() {
        let (dir, set) = load(&[(
            "balance.rhai",
            "// daily balance\nschedule(\"0 8 * * *\", \"job\");\nfn job() { ussd(\"*100#\") }\n",
        )]);
        let jobs = set.schedules();
        assert_eq!(
            jobs,
            vec![ScriptSchedule {
                file: dir.path().join("balance.rhai"),
                cron: "0 8 * * *".into(),
                fn_name: "job".into(),
                line: 2,
                col: 1,
            }]
        );
        assert_eq!(jobs[0].job_name(), "script:balance:job");
        assert_eq!(jobs[0].file_name(), "balance.rhai");
        assert_eq!(
            jobs[0].diagnostic("bad").source_line.as_deref(),
            Some("schedule(\"0 8 * * *\", \"job\");")
        );
    }

    #[test]
    fn schedule_of_a_missing_function_is_an_error() {
        let (_dir, set) = load_with(
            &[("s.rhai", "schedule(\"0 8 * * *\", \"nope\");\nfn job(x) {}")],
            &Limits::default(),
        );
        let d = set.expect_err("no such fn");
        assert_eq!((d.0[0].line, d.0[0].col), (1, 1));
        assert!(
            d.0[0].message.contains("no public function `nope`"),
            "{}",
            d.render()
        );
    }

    #[test]
    fn top_level_host_calls_are_refused_at_load() {
        let (_dir, set) = load_with(
            &[("t.rhai", "let x = 1;\nat(\"AT\");\n")],
            &Limits::default(),
        );
        let d = set.expect_err("refused");
        assert_eq!(d.0[0].line, 2, "{}", d.render());
        assert!(
            d.0[0]
                .message
                .contains("at() is not available while the script loads"),
            "{}",
            d.render()
        );
    }

    #[test]
    fn top_level_endless_loop_is_stopped_at_load() {
        let limits = Limits {
            max_operations: 50_000,
            ..Limits::default()
        };
        let (_dir, set) = load_with(&[("l.rhai", "loop { }")], &limits);
        let d = set.expect_err("stopped");
        assert!(d.0[0].message.contains("operation limit"), "{}", d.render());
    }

    #[test]
    fn missing_folder_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let d =
            ScriptSet::load_dir(&dir.path().join("nope"), &Limits::default()).expect_err("missing");
        assert!(d.0[0].message.contains("cannot read the scripts folder"));
        let empty = ScriptSet::load_dir(dir.path(), &Limits::default()).expect("empty ok");
        assert!(empty.files().is_empty());
    }
}
