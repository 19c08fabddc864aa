//! Reading `atmate.yaml`: the located tree → [`Config`], reporting every problem.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::env::expand;
use super::model::*;
use super::yaml::{
    self, boolean, duration, integer, located_strings, non_empty_string, string, Map, Node, Sink,
    Value,
};
use crate::diag::{Diagnostic, Diagnostics};

const TOP_KEYS: &[&str] = &[
    "modems",
    "store",
    "rules",
    "scripts",
    "timezone",
    "limits",
    "allow_senders",
    "log",
    "control_socket",
];

const MODEM_KEYS: &[&str] = &[
    "name",
    "default",
    "device",
    "vendor",
    "baud",
    "pin",
    "pin_file",
    "init",
    "storage",
    "ussd_timeout",
    "health",
    "recovery",
    "reconnect",
    "discovery",
    "data_interface",
    "sim",
    "multipart_timeout",
];

/// Longest path a Unix socket can have (`sun_path` is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Read and validate the config file at `path`, expanding `${VAR}` from the process
/// environment. All problems are reported together.
pub fn load(path: &Path) -> Result<Config, Diagnostics> {
    load_with_env(path, &|k| std::env::var(k).ok())
}

/// [`load`] with the environment passed in (tests, `atmate check --env …`).
pub fn load_with_env(
    path: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Diagnostics> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Diagnostics(vec![Diagnostic::error(
            path,
            0,
            0,
            format!("cannot read the config file: {e}"),
        )])
    })?;
    from_str(path, &text, env)
}

/// Validate config text that was read from `path` (which anchors relative paths).
pub fn from_str(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Diagnostics> {
    let mut root = yaml::parse(path, text).map_err(|d| Diagnostics(vec![d]))?;
    let mut sink = Sink::new(path, text);
    let original = root.clone();
    let mut unexpanded = Vec::new();
    expand_tree(&mut root, &original, text, env, &mut sink, &mut unexpanded);
    let expansion_diags = sink.diags.0.len();
    let dir = config_dir(path);
    let cfg = Reader {
        sink: &mut sink,
        dir: &dir,
        env,
    }
    .config(&root, path);
    // A value whose `${VAR}` could not be expanded was reported once; whatever the
    // readers then said about the unexpanded text is noise.
    let mut i = 0;
    sink.diags.0.retain(|d| {
        i += 1;
        i <= expansion_diags
            || !unexpanded
                .iter()
                .any(|l: &yaml::Loc| l.line == d.line && l.col == d.col)
    });
    match cfg {
        Some(mut cfg) if !sink.has_errors() => {
            cfg.warnings = sink.into_sorted();
            Ok(cfg)
        }
        _ => Err(sink.into_sorted()),
    }
}

/// The config's folder, absolute, so that relative paths in it do not depend on the
/// working directory of whoever runs atmate.
fn config_dir(path: &Path) -> PathBuf {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::canonicalize(parent).unwrap_or_else(|_| {
        std::env::current_dir()
            .map(|cwd| cwd.join(parent))
            .unwrap_or_else(|_| parent.to_path_buf())
    })
}

/// Expand `${VAR}` in every string value (never in keys).
fn expand_tree(
    node: &mut Node,
    original: &Node,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    sink: &mut Sink<'_>,
    unexpanded: &mut Vec<yaml::Loc>,
) {
    match (&mut node.value, &original.value) {
        (Value::Seq(items), Value::Seq(orig)) => {
            for (n, o) in items.iter_mut().zip(orig) {
                expand_tree(n, o, text, env, sink, unexpanded);
            }
        }
        (Value::Map(entries), Value::Map(orig)) => {
            for ((_, v), (_, o)) in entries.iter_mut().zip(orig) {
                expand_tree(v, o, text, env, sink, unexpanded);
            }
        }
        (Value::Str(s), _) if s.contains('$') => match expand(s, env) {
            Ok(v) => *s = v,
            Err(errors) => {
                unexpanded.push(node.loc);
                for e in errors {
                    let piece = &s[e.offset..e.offset + e.len];
                    let occurrence = s[..e.offset].matches(piece).count();
                    let loc = original.position_of(text, piece, occurrence, 0);
                    sink.error(loc, e.message);
                }
            }
        },
        _ => {}
    }
}

/// Normalise an allowed sender: separators (space, `-`, `.`, `/`, parentheses) go,
/// `00…` becomes `+…`; alphanumeric sender ids (`Vodafone`) stay as written.
pub fn normalize_number(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.chars().any(|c| c.is_alphabetic()) {
        // GSM 03.40 alphanumeric addresses hold at most 11 characters.
        if t.chars().count() > 11
            || !t
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-' || c == '.')
        {
            return Err(format!("`{t}` is neither a phone number nor an alphanumeric sender id (at most 11 letters and digits)"));
        }
        return Ok(t.to_owned());
    }
    let compact: String = t
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '/' | '(' | ')'))
        .collect();
    let intl = match compact.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => compact,
    };
    let digits = intl.strip_prefix('+').unwrap_or(&intl);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("`{t}` is not a phone number"));
    }
    if digits.len() > 15 {
        return Err(format!(
            "`{t}` has more than 15 digits, the most a phone number has"
        ));
    }
    Ok(intl)
}

struct Reader<'s, 't> {
    sink: &'s mut Sink<'t>,
    dir: &'s Path,
    env: &'s dyn Fn(&str) -> Option<String>,
}

impl Reader<'_, '_> {
    fn path(&self, s: &str) -> PathBuf {
        let p = Path::new(s);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.dir.join(p)
        }
    }

    fn path_value(&mut self, node: &Node, what: &str) -> Option<PathBuf> {
        non_empty_string(node, what, self.sink).map(|s| self.path(&s))
    }

    fn config(&mut self, root: &Node, path: &Path) -> Option<Config> {
        if root.is_null() {
            self.sink.error(
                yaml::Loc::default(),
                "the config file is empty; it needs at least a `modems:` list",
            );
            return None;
        }
        let mut m = Map::new(root, "the config file", self.sink)?;
        let modems = match m.require("modems", "the config file", self.sink) {
            Some(n) => self.modems(n),
            None => Vec::new(),
        };
        let store = m
            .take("store")
            .and_then(|n| self.path_value(n, "`store`"))
            .unwrap_or_else(|| self.dir.join("atmate.db"));
        let rules = match m.take("rules") {
            Some(n) => located_strings(n, "`rules`", self.sink)
                .into_iter()
                .filter_map(|(s, node)| {
                    if s.trim().is_empty() {
                        self.sink.error(node.loc, "`rules` paths must not be empty");
                        None
                    } else {
                        Some(self.path(&s))
                    }
                })
                .collect(),
            // The default folder only counts when it exists: a config without rules is
            // fine, while a rules path the user named must exist.
            None => {
                let d = self.dir.join("rules");
                if d.is_dir() {
                    vec![d]
                } else {
                    Vec::new()
                }
            }
        };
        let scripts = m
            .take("scripts")
            .and_then(|n| self.path_value(n, "`scripts`"))
            .unwrap_or_else(|| self.dir.join("scripts"));
        let timezone = m
            .take("timezone")
            .map_or(Some(Zone::Local), |n| self.zone(n));
        let limits = m
            .take("limits")
            .map_or(Some(Limits::default()), |n| self.limits(n));
        let allow_senders = m
            .take("allow_senders")
            .map(|n| self.senders(n))
            .unwrap_or_default();
        let log = match m.take("log") {
            Some(n) => self.log(n),
            None => Some("info".to_owned()),
        };
        let socket_entry = m.take("control_socket");
        let explicit_socket = socket_entry.and_then(|n| self.path_value(n, "`control_socket`"));
        m.finish("the config file", TOP_KEYS, self.sink);

        let control_socket = match explicit_socket {
            Some(p) => p,
            None => default_control_socket(
                &self.dir.join(path.file_name().unwrap_or_default()),
                &store,
                (self.env)("XDG_RUNTIME_DIR").as_deref().map(Path::new),
            ),
        };
        if control_socket.as_os_str().len() > MAX_SOCKET_PATH {
            let loc = socket_entry.map_or(root.loc, |n| n.loc);
            self.sink.error(
                loc,
                format!(
                    "the control socket path {} is longer than {MAX_SOCKET_PATH} bytes, the limit for a Unix socket; set a shorter `control_socket:`",
                    control_socket.display()
                ),
            );
        }

        Some(Config {
            path: path.to_path_buf(),
            dir: self.dir.to_path_buf(),
            modems,
            store,
            rules,
            scripts,
            timezone: timezone?,
            limits: limits?,
            allow_senders,
            log: log?,
            control_socket,
            warnings: Diagnostics::default(),
        })
    }

    fn modems(&mut self, node: &Node) -> Vec<ModemSection> {
        let Some(items) = node.as_seq() else {
            self.sink.error(
                node.loc,
                format!(
                    "`modems` must be a list of modems (`- name: …`), found {}",
                    node.kind_name()
                ),
            );
            return Vec::new();
        };
        if items.is_empty() {
            self.sink
                .error(node.loc, "`modems` is empty; configure at least one modem");
        }
        self.check_names_and_defaults(items);
        items.iter().filter_map(|item| self.modem(item)).collect()
    }

    /// Unique names and at most one default, checked on the tree so that the answer
    /// does not depend on whether the rest of each modem's section is valid.
    fn check_names_and_defaults(&mut self, items: &[Node]) {
        let mut seen: Vec<(String, usize)> = Vec::new();
        let mut default_at: Option<usize> = None;
        for item in items {
            let Some(entries) = item.as_map() else {
                continue;
            };
            let get = |key: &str| {
                entries
                    .iter()
                    .find(|(k, _)| k.scalar_text().as_deref() == Some(key))
                    .map(|(_, v)| v)
            };
            if let Some(n) = get("name") {
                if let Some(name) = n.scalar_text() {
                    match seen.iter().find(|(s, _)| *s == name) {
                        Some((_, line)) => self.sink.error(
                            n.loc,
                            format!("modem name `{name}` is used twice (first on line {line}); names must be unique"),
                        ),
                        None => seen.push((name, n.loc.line)),
                    }
                }
            }
            if let Some(d) = get("default").filter(|d| d.value == Value::Bool(true)) {
                match default_at {
                    Some(line) => self.sink.error(
                        d.loc,
                        format!("only one modem can be the default, and the modem on line {line} already is"),
                    ),
                    None => default_at = Some(item.loc.line),
                }
            }
        }
    }

    fn modem(&mut self, node: &Node) -> Option<ModemSection> {
        let mut m = Map::new(node, "a modem", self.sink)?;
        let name_node = m.require("name", "a modem", self.sink);
        let name = name_node.and_then(|n| self.modem_name(n));
        let what = match &name {
            Some(n) => format!("modem `{n}`"),
            None => "a modem".to_owned(),
        };
        let default = m
            .take("default")
            .map_or(Some(false), |n| boolean(n, "`default`", self.sink));
        let vendor = match m.take("vendor") {
            None => Some(Vendor::Zte),
            Some(n) => match string(n, "`vendor`", self.sink).as_deref() {
                Some("zte") => Some(Vendor::Zte),
                Some("generic") => Some(Vendor::Generic),
                Some(other) => {
                    self.sink.error(
                        n.loc,
                        yaml::unknown_message(
                            &format!("vendor `{other}`"),
                            other,
                            &["zte", "generic"],
                        ),
                    );
                    None
                }
                None => None,
            },
        };
        let device_node = m.require("device", &what, self.sink);
        let sim_node = m.take("sim");
        let discovery_node = m.take("discovery");
        let sim = sim_node.map_or(Some(SimOptions::default()), |n| self.sim(n));
        let discovery = discovery_node.map_or(Some(Discovery::default()), |n| self.discovery(n));
        let device = device_node.and_then(|n| self.device(n, sim.clone(), discovery.clone()));
        if let Some(d) = &device {
            if let (Some(n), false) = (sim_node, matches!(d, Device::Sim(_))) {
                self.sink
                    .warning(n.loc, "`sim` settings are ignored unless `device: sim`");
            }
            if let (Some(n), false) = (discovery_node, matches!(d, Device::Auto(_))) {
                self.sink.warning(
                    n.loc,
                    "`discovery` settings are ignored unless `device: auto`",
                );
            }
        }
        let baud = m.take("baud").map_or(Some(115_200), |n| {
            integer(n, "`baud`", 300, 4_000_000, self.sink).map(|b| b as u32)
        });
        let pin = self.pin(&mut m);
        let init = match m.take("init") {
            Some(n) => self.at_commands(n, "an `init` command"),
            None => Some(Vec::new()),
        };
        let storage = match m.take("storage") {
            None => Some(Storage::Sm),
            Some(n) => match string(n, "`storage`", self.sink)
                .map(|s| s.to_ascii_uppercase())
                .as_deref()
            {
                Some("SM") => Some(Storage::Sm),
                Some("ME") => Some(Storage::Me),
                Some("MT") => Some(Storage::Mt),
                Some(_) => {
                    self.sink.error(
                        n.loc,
                        format!(
                            "`storage` must be SM, ME or MT, found {}",
                            yaml::describe(n)
                        ),
                    );
                    None
                }
                None => None,
            },
        };
        let ussd_timeout = self.opt_duration(
            &mut m,
            "ussd_timeout",
            Duration::from_secs(30),
            Duration::from_secs(1),
        );
        let health = m
            .take("health")
            .map_or(Some(Health::default()), |n| self.health(n));
        let recovery = match (m.take("recovery"), vendor) {
            (Some(n), Some(v)) => self.recovery(n, v),
            (None, Some(v)) => Some(Recovery::default_for(v)),
            (_, None) => None,
        };
        let reconnect = m
            .take("reconnect")
            .map_or(Some(Reconnect::default()), |n| self.reconnect(n));
        let data_interface = match m.take("data_interface") {
            Some(n) => self.interface_name(n).map(Some),
            None => Some(None),
        };
        let multipart_timeout = self.opt_duration(
            &mut m,
            "multipart_timeout",
            Duration::from_secs(600),
            Duration::from_secs(1),
        );
        m.finish(&what, MODEM_KEYS, self.sink);

        if let Some(Device::Path(p)) = &device {
            let s = p.to_string_lossy();
            if s.starts_with("/dev/ttyUSB") || s.starts_with("/dev/ttyACM") {
                if let Some(n) = device_node {
                    self.sink.warning(
                        n.loc,
                        format!(
                            "{s} may be renamed when the stick re-enumerates (ttyUSB2 → ttyUSB3); prefer a /dev/serial/by-id/… path or `device: auto`"
                        ),
                    );
                }
            }
        }

        Some(ModemSection {
            name: name?,
            default: default?,
            device: device?,
            vendor: vendor?,
            baud: baud?,
            pin: pin?,
            init: init?,
            storage: storage?,
            ussd_timeout: ussd_timeout?,
            health: health?,
            recovery: recovery?,
            reconnect: reconnect?,
            data_interface: data_interface?,
            multipart_timeout: multipart_timeout?,
        })
    }

    fn modem_name(&mut self, node: &Node) -> Option<String> {
        let name = non_empty_string(node, "a modem `name`", self.sink)?;
        if name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            Some(name)
        } else {
            self.sink.error(
                node.loc,
                format!("modem name `{name}` may only contain letters, digits, `_` and `-`"),
            );
            None
        }
    }

    fn device(
        &mut self,
        node: &Node,
        sim: Option<SimOptions>,
        discovery: Option<Discovery>,
    ) -> Option<Device> {
        let s = non_empty_string(node, "`device`", self.sink)?;
        let s = s.trim();
        match s {
            "sim" => return sim.map(Device::Sim),
            "auto" => return discovery.map(Device::Auto),
            _ => {}
        }
        if let Some(rest) = s.strip_prefix("tcp://") {
            let parsed = rest.rsplit_once(':').and_then(|(host, port)| {
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let port = port.parse::<u16>().ok().filter(|p| *p > 0)?;
                (!host.is_empty() && !host.contains('/')).then(|| (host.to_owned(), port))
            });
            return match parsed {
                Some((host, port)) => Some(Device::Tcp { host, port }),
                None => {
                    self.sink.error(
                        node.loc,
                        format!("`device: {s}`: write a TCP device as `tcp://host:port`"),
                    );
                    None
                }
            };
        }
        if s.contains('/') {
            return Some(Device::Path(self.path(s)));
        }
        let hint = if s.starts_with("tty") {
            format!("; did you mean `/dev/{s}`?")
        } else if let Some(w) = yaml::suggest(s, &["sim", "auto"]) {
            format!("; did you mean `{w}`?")
        } else {
            String::new()
        };
        self.sink.error(
            node.loc,
            format!("`device: {s}` is not `sim`, `auto`, `tcp://host:port` or a device path such as /dev/serial/by-id/…{hint}"),
        );
        None
    }

    /// The PIN from `pin:` or `pin_file:`. Diagnostics here never quote the source line.
    fn pin(&mut self, m: &mut Map<'_>) -> Option<Option<Secret>> {
        let pin = m.take("pin");
        let file = m.take("pin_file");
        if let (Some(_), Some(f)) = (pin, file) {
            self.sink
                .error_masked(f.loc, "give either `pin` or `pin_file`, not both");
            return None;
        }
        let (value, loc) = if let Some(n) = pin {
            let Some(v) = n.scalar_text() else {
                self.sink.error_masked(
                    n.loc,
                    format!("`pin` must be a string, found {}", n.kind_name()),
                );
                return None;
            };
            (v, n.loc)
        } else if let Some(n) = file {
            let path = self.path_value(n, "`pin_file`")?;
            match std::fs::read_to_string(&path) {
                Ok(s) => (s.trim().to_owned(), n.loc),
                Err(e) => {
                    self.sink.error(
                        n.loc,
                        format!("cannot read `pin_file` {}: {e}", path.display()),
                    );
                    return None;
                }
            }
        } else {
            return Some(None);
        };
        if check_pin(&value) {
            Some(Some(Secret::new(value)))
        } else {
            let from = if file.is_some() {
                "the `pin_file`"
            } else {
                "`pin`"
            };
            self.sink
                .error_masked(loc, format!("{from} must hold a PIN of 4 to 8 digits"));
            None
        }
    }

    fn at_commands(&mut self, node: &Node, what: &str) -> Option<Vec<String>> {
        let mut ok = true;
        let mut out = Vec::new();
        let items: Vec<&Node> = match node.as_seq() {
            Some(items) => items.iter().collect(),
            None => vec![node],
        };
        for item in items {
            match self.at_command(item, what) {
                Some(c) => out.push(c),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn at_command(&mut self, node: &Node, what: &str) -> Option<String> {
        let c = non_empty_string(node, what, self.sink)?;
        let c = c.trim().to_owned();
        if !c.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("AT")) {
            self.sink.error(
                node.loc,
                format!("{what} must start with `AT`, found `{c}`"),
            );
            return None;
        }
        if c.contains(['\r', '\n', '\x1a']) {
            self.sink
                .error(node.loc, format!("{what} must be one line"));
            return None;
        }
        Some(c)
    }

    fn opt_duration(
        &mut self,
        m: &mut Map<'_>,
        key: &str,
        default: Duration,
        min: Duration,
    ) -> Option<Duration> {
        match m.take(key) {
            None => Some(default),
            Some(n) => self.min_duration(n, &format!("`{key}`"), min),
        }
    }

    fn min_duration(&mut self, node: &Node, what: &str, min: Duration) -> Option<Duration> {
        let d = duration(node, what, self.sink)?;
        if d < min {
            self.sink.error(
                node.loc,
                format!(
                    "{what} must be at least {}",
                    humantime::format_duration(min)
                ),
            );
            return None;
        }
        Some(d)
    }

    fn health(&mut self, node: &Node) -> Option<Health> {
        let mut m = Map::new(node, "`health`", self.sink)?;
        let d = Health::default();
        let probe = self.opt_duration(
            &mut m,
            "probe_interval",
            d.probe_interval,
            Duration::from_secs(1),
        );
        let storage = self.opt_duration(
            &mut m,
            "storage_check",
            d.storage_check,
            Duration::from_secs(1),
        );
        m.finish("`health`", &["probe_interval", "storage_check"], self.sink);
        Some(Health {
            probe_interval: probe?,
            storage_check: storage?,
        })
    }

    fn recovery(&mut self, node: &Node, vendor: Vendor) -> Option<Recovery> {
        let mut m = Map::new(node, "`recovery`", self.sink)?;
        let d = Recovery::default_for(vendor);
        let enabled = m
            .take("enabled")
            .map_or(Some(d.enabled), |n| boolean(n, "`enabled`", self.sink));
        let steps = match m.take("steps") {
            Some(n) => {
                let steps = self.at_commands(n, "a recovery step");
                if steps.as_ref().is_some_and(Vec::is_empty) {
                    self.sink.error(
                        n.loc,
                        "`steps` is empty; leave it out for the defaults or set `enabled: false`",
                    );
                    None
                } else {
                    steps
                }
            }
            None => Some(d.steps),
        };
        let command = match m.take("command") {
            Some(n) => self.argv(n, "`command`").map(Some),
            None => Some(None),
        };
        let backoff = self.opt_duration(&mut m, "backoff", d.backoff, Duration::from_secs(1));
        let max_attempts = m.take("max_attempts").map_or(Some(d.max_attempts), |n| {
            integer(n, "`max_attempts`", 1, 1000, self.sink).map(|v| v as u32)
        });
        m.finish(
            "`recovery`",
            &["enabled", "steps", "command", "backoff", "max_attempts"],
            self.sink,
        );
        Some(Recovery {
            enabled: enabled?,
            steps: steps?,
            command: command?,
            backoff: backoff?,
            max_attempts: max_attempts?,
        })
    }

    /// A program and its arguments as a list; never a shell command line.
    fn argv(&mut self, node: &Node, what: &str) -> Option<Vec<String>> {
        let argv = match node.as_seq() {
            Some(_) => yaml::string_list(node, what, self.sink)?,
            None => {
                let s = non_empty_string(node, what, self.sink)?;
                if s.trim().contains(char::is_whitespace) {
                    self.sink.error(
                        node.loc,
                        format!(
                            "{what} is a program and its arguments as a list, e.g. [\"uhubctl\", \"-a\", \"cycle\"]; it is never run through a shell"
                        ),
                    );
                    return None;
                }
                vec![s.trim().to_owned()]
            }
        };
        if argv.first().is_none_or(|p| p.trim().is_empty()) {
            self.sink
                .error(node.loc, format!("{what} needs a program to run"));
            return None;
        }
        Some(argv)
    }

    fn reconnect(&mut self, node: &Node) -> Option<Reconnect> {
        let mut m = Map::new(node, "`reconnect`", self.sink)?;
        let d = Reconnect::default();
        let min = self.opt_duration(&mut m, "min", d.min, Duration::from_millis(10));
        let max_node = m.take("max");
        let max = match max_node {
            Some(n) => self.min_duration(n, "`max`", Duration::from_millis(10)),
            None => Some(d.max),
        };
        m.finish("`reconnect`", &["min", "max"], self.sink);
        let (min, max) = (min?, max?);
        if min > max {
            self.sink.error(
                max_node.map_or(node.loc, |n| n.loc),
                "`reconnect`: `max` must not be shorter than `min`",
            );
            return None;
        }
        Some(Reconnect { min, max })
    }

    fn discovery(&mut self, node: &Node) -> Option<Discovery> {
        let mut m = Map::new(node, "`discovery`", self.sink)?;
        let d = Discovery::default();
        let vendor_id = m
            .take("vendor_id")
            .map_or(Some(d.vendor_id), |n| self.usb_id(n, "`vendor_id`"));
        let product_ids = match m.take("product_ids") {
            Some(n) => {
                let items: Vec<&Node> = n.as_seq().map_or_else(|| vec![n], |s| s.iter().collect());
                let ids: Vec<Option<u16>> = items
                    .into_iter()
                    .map(|i| self.usb_id(i, "a product id"))
                    .collect();
                ids.into_iter().collect::<Option<Vec<u16>>>()
            }
            None => Some(d.product_ids),
        };
        let interfaces = match m.take("interfaces") {
            Some(n) => {
                let items: Vec<&Node> = n.as_seq().map_or_else(|| vec![n], |s| s.iter().collect());
                if items.is_empty() {
                    self.sink
                        .error(n.loc, "`interfaces` needs at least one interface number");
                }
                let nums: Vec<Option<u8>> = items
                    .into_iter()
                    .map(|i| integer(i, "an interface number", 0, 255, self.sink).map(|v| v as u8))
                    .collect();
                nums.into_iter().collect::<Option<Vec<u8>>>()
            }
            None => Some(d.interfaces),
        };
        let serial = match m.take("serial") {
            Some(n) => non_empty_string(n, "`serial`", self.sink).map(Some),
            None => Some(None),
        };
        let sysfs_root = match m.take("sysfs_root") {
            Some(n) => self.path_value(n, "`sysfs_root`"),
            None => Some(d.sysfs_root),
        };
        let dev_root = match m.take("dev_root") {
            Some(n) => self.path_value(n, "`dev_root`"),
            None => Some(d.dev_root),
        };
        m.finish(
            "`discovery`",
            &[
                "vendor_id",
                "product_ids",
                "interfaces",
                "serial",
                "sysfs_root",
                "dev_root",
            ],
            self.sink,
        );
        Some(Discovery {
            vendor_id: vendor_id?,
            product_ids: product_ids?,
            interfaces: interfaces?,
            serial: serial?,
            sysfs_root: sysfs_root?,
            dev_root: dev_root?,
        })
    }

    /// A USB id as hex, as `lsusb` prints it: `19d2`, `0x19d2`, `1268` (hex, even when
    /// YAML read it as a number).
    fn usb_id(&mut self, node: &Node, what: &str) -> Option<u16> {
        let text = string(node, what, self.sink)?;
        let t = text.trim();
        let hex = t
            .strip_prefix("0x")
            .or_else(|| t.strip_prefix("0X"))
            .unwrap_or(t);
        match u16::from_str_radix(hex, 16) {
            Ok(v) if !hex.is_empty() && hex.len() <= 4 => Some(v),
            _ => {
                self.sink.error(
                    node.loc,
                    format!(
                        "{what} must be a USB id of up to 4 hex digits like `19d2`, found `{t}`"
                    ),
                );
                None
            }
        }
    }

    fn interface_name(&mut self, node: &Node) -> Option<String> {
        let s = non_empty_string(node, "`data_interface`", self.sink)?;
        // Linux interface names: at most 15 bytes (IFNAMSIZ 16), no `/` or whitespace.
        if s.len() > 15 || s.contains('/') || s.contains(char::is_whitespace) {
            self.sink.error(
                node.loc,
                format!(
                    "`data_interface: {s}` is not a network interface name like `ppp0` or `wwan0`"
                ),
            );
            return None;
        }
        Some(s)
    }

    fn sim(&mut self, node: &Node) -> Option<SimOptions> {
        let mut m = Map::new(node, "`sim`", self.sink)?;
        let d = SimOptions::default();
        let demo = m
            .take("demo")
            .map_or(Some(d.demo), |n| boolean(n, "`demo`", self.sink));
        let pin = match m.take("pin") {
            Some(n) => match n.scalar_text() {
                Some(p) if check_pin(&p) => Some(Some(Secret::new(p))),
                _ => {
                    self.sink
                        .error_masked(n.loc, "the simulated SIM's `pin` must be 4 to 8 digits");
                    None
                }
            },
            None => Some(None),
        };
        let capacity = match m.take("capacity") {
            Some(n) => self.sim_capacity(n),
            None => Some(d.capacity),
        };
        let csq = m.take("csq").map_or(Some(d.csq), |n| {
            let v = integer(n, "`csq`", 0, 99, self.sink)?;
            if v > 31 && v != 99 {
                self.sink.error(
                    n.loc,
                    format!("`csq` must be 0–31, or 99 for unknown, found {v}"),
                );
                return None;
            }
            Some(v as u8)
        });
        m.finish("`sim`", &["demo", "pin", "capacity", "csq"], self.sink);
        Some(SimOptions {
            demo: demo?,
            pin: pin?,
            capacity: capacity?,
            csq: csq?,
        })
    }

    fn sim_capacity(&mut self, node: &Node) -> Option<SimCapacity> {
        let mut m = Map::new(node, "`capacity`", self.sink)?;
        let d = SimCapacity::default();
        let slot = |m: &mut Map<'_>, key: &str, default: u16, sink: &mut Sink<'_>| match m.take(key)
        {
            Some(n) => integer(n, &format!("`capacity.{key}`"), 1, 255, sink).map(|v| v as u16),
            None => Some(default),
        };
        let sm = slot(&mut m, "sm", d.sm, self.sink);
        let me = slot(&mut m, "me", d.me, self.sink);
        let sr = slot(&mut m, "sr", d.sr, self.sink);
        m.finish("`capacity`", &["sm", "me", "sr"], self.sink);
        Some(SimCapacity {
            sm: sm?,
            me: me?,
            sr: sr?,
        })
    }

    fn zone(&mut self, node: &Node) -> Option<Zone> {
        let s = non_empty_string(node, "`timezone`", self.sink)?;
        let s = s.trim();
        if s.eq_ignore_ascii_case("local") {
            return Some(Zone::Local);
        }
        if let Ok(tz) = s.parse::<chrono_tz::Tz>() {
            return Some(Zone::Named(tz));
        }
        let names: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name()).collect();
        let hint = yaml::suggest(s, &names).map_or_else(
            || " (an IANA name like `Europe/Berlin`, or `local`)".to_owned(),
            |n| format!("; did you mean `{n}`?"),
        );
        self.sink
            .error(node.loc, format!("unknown time zone `{s}`{hint}"));
        None
    }

    fn limits(&mut self, node: &Node) -> Option<Limits> {
        let mut m = Map::new(node, "`limits`", self.sink)?;
        let d = Limits::default();
        let count =
            |m: &mut Map<'_>, key: &str, default: u32, sink: &mut Sink<'_>| match m.take(key) {
                Some(n) => integer(n, &format!("`{key}`"), 1, 1_000_000, sink).map(|v| v as u32),
                None => Some(default),
            };
        let per_hour = count(&mut m, "sms_per_hour", d.sms_per_hour, self.sink);
        let per_day = count(&mut m, "sms_per_day", d.sms_per_day, self.sink);
        let per_recipient = count(
            &mut m,
            "sms_per_recipient_per_hour",
            d.sms_per_recipient_per_hour,
            self.sink,
        );
        let wall_clock = self.opt_duration(
            &mut m,
            "script_wall_clock",
            d.script.wall_clock,
            Duration::from_millis(10),
        );
        let max_ops = m
            .take("script_max_operations")
            .map_or(Some(d.script.max_operations), |n| {
                integer(n, "`script_max_operations`", 1_000, i64::MAX, self.sink).map(|v| v as u64)
            });
        let queue = m.take("rule_queue").map_or(Some(d.rule_queue), |n| {
            integer(n, "`rule_queue`", 1, 10_000, self.sink).map(|v| v as usize)
        });
        m.finish(
            "`limits`",
            &[
                "sms_per_hour",
                "sms_per_day",
                "sms_per_recipient_per_hour",
                "script_wall_clock",
                "script_max_operations",
                "rule_queue",
            ],
            self.sink,
        );
        Some(Limits {
            sms_per_hour: per_hour?,
            sms_per_day: per_day?,
            sms_per_recipient_per_hour: per_recipient?,
            script: ScriptLimits {
                wall_clock: wall_clock?,
                max_operations: max_ops?,
            },
            rule_queue: queue?,
        })
    }

    fn senders(&mut self, node: &Node) -> Vec<String> {
        let Some(items) = node.as_seq() else {
            self.sink.error(
                node.loc,
                format!(
                    "`allow_senders` must be a list of phone numbers, found {}",
                    node.kind_name()
                ),
            );
            return Vec::new();
        };
        let mut out: Vec<String> = Vec::new();
        for item in items {
            let Some(s) = string(item, "an allowed sender", self.sink) else {
                continue;
            };
            match normalize_number(&s) {
                Ok(n) => {
                    if out.contains(&n) {
                        self.sink
                            .warning(item.loc, format!("`{}` is listed twice", s.trim()));
                        continue;
                    }
                    if n.starts_with('0') {
                        self.sink.warning(
                            item.loc,
                            format!(
                                "`{}` is in national format; senders usually arrive in international format (+49…), so write it that way",
                                s.trim()
                            ),
                        );
                    }
                    out.push(n);
                }
                Err(e) => self.sink.error(item.loc, format!("allowed sender {e}")),
            }
        }
        out
    }

    fn log(&mut self, node: &Node) -> Option<String> {
        let s = non_empty_string(node, "`log`", self.sink)?;
        let s = s.trim().to_owned();
        let parsed = check_log_filter(&s).and_then(|()| {
            tracing_subscriber::EnvFilter::builder()
                .parse(&s)
                .map(drop)
                .map_err(|e| e.to_string())
        });
        match parsed {
            Ok(()) => Some(s),
            Err(e) => {
                self.sink.error(
                    node.loc,
                    format!(
                        "`log: {s}` is not a log filter ({e}); use a level (error, warn, info, debug, trace) or e.g. `atmate=debug,info`"
                    ),
                );
                None
            }
        }
    }
}

/// tracing's filter syntax accepts almost anything as a target name (`very loud` would
/// silently mean "trace everything from a target called `very loud`"), so check the
/// shape first: each directive is a level, a target, or `target=level`.
fn check_log_filter(s: &str) -> Result<(), String> {
    const LEVELS: &[&str] = &["off", "error", "warn", "info", "debug", "trace"];
    let is_level = |l: &str| LEVELS.iter().any(|x| x.eq_ignore_ascii_case(l.trim()));
    let is_target = |t: &str| {
        !t.is_empty()
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':' || c == '-')
    };
    for d in s.split(',').map(str::trim) {
        let ok = match d.rsplit_once('=') {
            Some((target, level)) => is_target(target.trim()) && is_level(level),
            None => is_level(d) || is_target(d),
        };
        if !ok {
            return Err(format!("`{d}` is neither a level nor `target=level`"));
        }
    }
    Ok(())
}

fn check_pin(p: &str) -> bool {
    (4..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit())
}

/// The control socket when `control_socket:` is not set:
/// `$XDG_RUNTIME_DIR/atmate-<hash>.sock`, where the hash (FNV-1a, 64 bit, hex) is of the
/// config file's absolute path, so two daemons with different configs never share a
/// socket and the CLI finds the right one from the same config; without
/// `XDG_RUNTIME_DIR` (system services), `<store>.sock` beside the database.
pub fn default_control_socket(
    config_path: &Path,
    store: &Path,
    runtime_dir: Option<&Path>,
) -> PathBuf {
    match runtime_dir.filter(|d| d.is_absolute()) {
        Some(dir) => dir.join(format!(
            "atmate-{:016x}.sock",
            fnv1a(config_path.as_os_str().as_encoded_bytes())
        )),
        None => {
            let mut name = store.file_name().unwrap_or_default().to_os_string();
            name.push(".sock");
            store.with_file_name(name)
        }
    }
}

/// FNV-1a: tiny, and stable across Rust releases (unlike `DefaultHasher`), which matters
/// because the CLI and the daemon must derive the same socket name.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
