//! Config tests: sections, defaults, every error at once, and the fixture folders
//! (`tests/fixtures/config/{valid,invalid}`; each invalid file has a sibling `.expected`
//! with the exact rendered diagnostics; `ATMATE_BLESS=1` rewrites them).

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::*;

fn env(name: &str) -> Option<String> {
    match name {
        "ATMATE_PIN" => Some("1234".into()),
        "HOME" => Some("/home/u".into()),
        "XDG_RUNTIME_DIR" => Some("/run/user/1000".into()),
        _ => None,
    }
}

fn load_text(text: &str) -> Result<Config, crate::diag::Diagnostics> {
    from_str(Path::new("/etc/atmate/atmate.yaml"), text, &env)
}

fn messages(text: &str) -> Vec<String> {
    load_text(text)
        .expect_err("invalid")
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

fn fixtures(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/config")
        .join(kind)
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("fixture folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

#[test]
fn minimal_config_gets_the_documented_defaults() {
    let cfg = load_text("modems:\n  - name: main\n    device: sim\n").expect("valid");
    assert_eq!(cfg.dir, Path::new("/etc/atmate"));
    assert_eq!(cfg.store, Path::new("/etc/atmate/atmate.db"));
    assert_eq!(cfg.scripts, Path::new("/etc/atmate/scripts"));
    assert_eq!(cfg.timezone, Zone::Local);
    assert_eq!(cfg.limits, Limits::default());
    assert_eq!(cfg.log, "info");
    assert!(cfg.allow_senders.is_empty());
    assert!(cfg.warnings.0.is_empty());
    let m = &cfg.modems[0];
    assert_eq!(m.name, "main");
    assert_eq!(m.device, Device::Sim(SimOptions::default()));
    assert_eq!(m.vendor, Vendor::Zte);
    assert_eq!(m.baud, 115_200);
    assert_eq!(m.pin, None);
    assert_eq!(m.storage, Storage::Sm);
    assert_eq!(m.ussd_timeout, Duration::from_secs(30));
    assert_eq!(m.health.probe_interval, Duration::from_secs(30));
    assert_eq!(m.health.storage_check, Duration::from_secs(60));
    assert_eq!(m.recovery, Recovery::default_for(Vendor::Zte));
    assert_eq!(m.multipart_timeout, Duration::from_secs(600));
    assert_eq!(cfg.default_modem().map(|m| m.name.as_str()), Some("main"));
    assert_eq!(
        cfg.control_socket,
        default_control_socket(
            Path::new("/etc/atmate/atmate.yaml"),
            Path::new("/etc/atmate/atmate.db"),
            Some(Path::new("/run/user/1000"))
        )
    );
}

#[test]
fn the_default_rules_folder_counts_only_when_it_exists() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("atmate.yaml");
    std::fs::write(&path, "modems: [{ name: m, device: sim }]\n").expect("write");
    let cfg = load_with_env(&path, &env).expect("valid");
    assert!(cfg.rules.is_empty());
    std::fs::create_dir(dir.path().join("rules")).expect("mkdir");
    let cfg = load_with_env(&path, &env).expect("valid");
    let canonical = std::fs::canonicalize(dir.path()).expect("canonical");
    assert_eq!(cfg.rules, [canonical.join("rules")]);
    assert_eq!(cfg.store, canonical.join("atmate.db"));
}

#[test]
fn full_fixture_reads_every_setting() {
    let path = fixtures("valid").join("full.yaml");
    let cfg = load_with_env(&path, &env).expect("valid");
    let dir = std::fs::canonicalize(fixtures("valid")).expect("dir");
    assert_eq!(cfg.modems.len(), 3);
    let main = cfg.modem("main").expect("main");
    assert!(main.default);
    assert_eq!(main.baud, 460_800);
    assert_eq!(main.pin.as_ref().map(Secret::expose), Some("1234"));
    assert_eq!(main.init, ["AT+ZCDRUN=8", "AT^CURC=0"]);
    assert_eq!(main.storage, Storage::Me);
    assert_eq!(main.ussd_timeout, Duration::from_secs(20));
    assert_eq!(main.health.storage_check, Duration::from_secs(120));
    assert_eq!(
        main.recovery.command.as_deref(),
        Some(&["/usr/sbin/uhubctl", "-a", "cycle", "-l", "1-1"].map(String::from)[..])
    );
    assert_eq!(main.recovery.max_attempts, 3);
    assert_eq!(main.reconnect.min, Duration::from_millis(500));
    let Device::Auto(d) = &main.device else {
        panic!("auto expected: {:?}", main.device)
    };
    assert_eq!(d.vendor_id, 0x19d2);
    // `1268` is hex here even though YAML reads it as a decimal number.
    assert_eq!(d.product_ids, [0x0016, 0x1268, 0x1270]);
    assert_eq!(d.serial.as_deref(), Some("MF6670ZTED010000"));
    assert_eq!(main.data_interface.as_deref(), Some("ppp0"));
    assert_eq!(main.multipart_timeout, Duration::from_secs(900));

    let backup = cfg.modem("backup").expect("backup");
    assert_eq!(
        backup.device,
        Device::Tcp {
            host: "192.168.1.20".into(),
            port: 4001
        }
    );
    assert_eq!(backup.vendor, Vendor::Generic);
    assert!(backup.recovery.enabled);
    assert_eq!(backup.recovery.steps, ["AT+CFUN=1"]);

    let Device::Sim(sim) = &cfg.modem("lab").expect("lab").device else {
        panic!("sim expected")
    };
    assert!(sim.demo);
    assert_eq!(sim.pin.as_ref().map(Secret::expose), Some("0000"));
    assert_eq!(
        sim.capacity,
        SimCapacity {
            sm: 5,
            me: 50,
            sr: 10
        }
    );
    assert_eq!(sim.csq, 9);

    assert_eq!(cfg.store, Path::new("/var/lib/atmate/atmate.db"));
    assert_eq!(
        cfg.rules,
        [dir.join("rules"), PathBuf::from("/etc/atmate/extra.yaml")]
    );
    assert_eq!(cfg.scripts, dir.join("../scripts"));
    assert_eq!(cfg.timezone, Zone::Named(chrono_tz::Europe::Berlin));
    assert_eq!(cfg.limits.sms_per_recipient_per_hour, 3);
    assert_eq!(cfg.limits.script.wall_clock, Duration::from_secs(5));
    assert_eq!(cfg.limits.script.max_operations, 100_000);
    assert_eq!(cfg.limits.rule_queue, 4);
    assert_eq!(
        cfg.allow_senders,
        ["+4917612345678", "+49301234567", "Vodafone"]
    );
    assert_eq!(cfg.log, "atmate=debug,info");
    assert_eq!(cfg.control_socket, Path::new("/run/atmate/control.sock"));
    assert_eq!(cfg.default_modem().map(|m| m.name.as_str()), Some("main"));
    assert!(cfg.warnings.0.is_empty(), "{}", cfg.warnings);
}

#[test]
fn the_pin_is_never_printed() {
    let cfg = load_text("modems:\n  - name: m\n    device: sim\n    pin: ${ATMATE_PIN}\n")
        .expect("valid");
    let shown = format!("{cfg:?}");
    assert!(!shown.contains("1234"), "{shown}");
    assert!(shown.contains("Secret(****)"));

    // A bad PIN written into the file is reported without quoting the line.
    let err =
        load_text("modems:\n  - name: m\n    device: sim\n    pin: 12ab\n").expect_err("bad pin");
    assert_eq!(
        err.render(),
        "/etc/atmate/atmate.yaml:4:10: error: `pin` must hold a PIN of 4 to 8 digits"
    );
}

#[test]
fn pin_file_is_read_relative_to_the_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("pin"), "4321\n").expect("write");
    let path = dir.path().join("atmate.yaml");
    std::fs::write(
        &path,
        "modems:\n  - name: m\n    device: sim\n    pin_file: pin\n",
    )
    .expect("write");
    let cfg = load_with_env(&path, &env).expect("valid");
    assert_eq!(cfg.modems[0].pin.as_ref().map(Secret::expose), Some("4321"));

    std::fs::write(
        &path,
        "modems:\n  - name: m\n    device: sim\n    pin_file: nope\n",
    )
    .expect("write");
    let err = load_with_env(&path, &env).expect_err("missing pin file");
    assert!(
        err.0[0].message.starts_with("cannot read `pin_file` "),
        "{err}"
    );
}

#[test]
fn all_errors_are_reported_at_once() {
    let msgs = messages(
        "modems:\n  - name: m\n    device: sim\n    baud: slow\n    ussd_timeout: 5\nlimits: { rule_queue: 0 }\nfoo: 1\n",
    );
    assert_eq!(
        msgs,
        [
            "/etc/atmate/atmate.yaml:4:11: error: `baud` must be a whole number, found `slow`",
            "/etc/atmate/atmate.yaml:5:19: error: `ussd_timeout`: `5` has no unit; write e.g. `5s` or `5m`",
            "/etc/atmate/atmate.yaml:6:23: error: `rule_queue` must be between 1 and 10000, found 0",
            "/etc/atmate/atmate.yaml:7:1: error: unknown key `foo` in the config file (expected one of: modems, store, rules, scripts, timezone, limits, allow_senders, log, control_socket)",
        ]
    );
}

#[test]
fn warnings_do_not_make_a_config_invalid() {
    let cfg = load_text(
        "modems:\n  - name: m\n    device: /dev/ttyUSB1\n    sim: { demo: true }\nallow_senders: [\"01761234567\"]\n",
    )
    .expect("valid with warnings");
    let w: Vec<String> = cfg.warnings.0.iter().map(|d| d.message.clone()).collect();
    assert_eq!(
        w,
        [
            "/dev/ttyUSB1 may be renamed when the stick re-enumerates (ttyUSB2 → ttyUSB3); prefer a /dev/serial/by-id/… path or `device: auto`",
            "`sim` settings are ignored unless `device: sim`",
            "`01761234567` is in national format; senders usually arrive in international format (+49…), so write it that way",
        ]
    );
}

#[test]
fn several_modems_need_a_default_for_rules_to_pick() {
    let cfg = load_text("modems:\n  - { name: a, device: sim }\n  - { name: b, device: sim }\n")
        .expect("valid");
    assert!(cfg.default_modem().is_none());
    assert_eq!(cfg.modem_names(), ["a", "b"]);
    let cfg = load_text(
        "modems:\n  - { name: a, device: sim }\n  - { name: b, device: sim, default: true }\n",
    )
    .expect("valid");
    assert_eq!(cfg.default_modem().map(|m| m.name.as_str()), Some("b"));
}

#[test]
fn diff_reopens_only_changed_modems() {
    let base = "modems:\n  - { name: a, device: sim }\n  - { name: b, device: sim }\n";
    let old = load_text(base).expect("valid");
    let rules_only = load_text(&format!("{base}rules: [other]\n")).expect("valid");
    let d = old.diff(&rules_only);
    assert!(d.rules);
    assert!(
        d.modems_changed.is_empty() && d.modems_added.is_empty() && d.modems_removed.is_empty()
    );
    assert!(old.diff(&old.clone()).is_empty());

    let changed = load_text(
        "modems:\n  - { name: a, device: sim, baud: 9600 }\n  - { name: c, device: sim }\n",
    )
    .expect("valid");
    let d = old.diff(&changed);
    assert_eq!(d.modems_changed, ["a"]);
    assert_eq!(d.modems_added, ["c"]);
    assert_eq!(d.modems_removed, ["b"]);
    assert!(!d.rules);
}

#[test]
fn sender_numbers_are_normalised() {
    assert_eq!(
        normalize_number("+49 176 1234-5678").as_deref(),
        Ok("+4917612345678")
    );
    assert_eq!(
        normalize_number("0049 (30) 123.4567").as_deref(),
        Ok("+49301234567")
    );
    assert_eq!(normalize_number("80888").as_deref(), Ok("80888"));
    assert_eq!(normalize_number(" Vodafone ").as_deref(), Ok("Vodafone"));
    assert!(normalize_number("+49 176 #123").is_err());
    assert!(normalize_number("+1234567890123456").is_err());
    assert!(normalize_number("").is_err());
}

#[test]
fn control_socket_default_is_stable_and_per_config() {
    let a = default_control_socket(
        Path::new("/etc/atmate/atmate.yaml"),
        Path::new("/x/a.db"),
        Some(Path::new("/run/user/1000")),
    );
    let b = default_control_socket(
        Path::new("/home/u/atmate.yaml"),
        Path::new("/x/a.db"),
        Some(Path::new("/run/user/1000")),
    );
    assert_ne!(a, b);
    // FNV-1a never changes between Rust releases: the CLI and an older daemon agree.
    assert_eq!(fnv_of("/etc/atmate/atmate.yaml"), a);
    let beside = default_control_socket(
        Path::new("/etc/atmate/atmate.yaml"),
        Path::new("/var/lib/atmate/atmate.db"),
        None,
    );
    assert_eq!(beside, Path::new("/var/lib/atmate/atmate.db.sock"));
}

fn fnv_of(s: &str) -> PathBuf {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    PathBuf::from(format!("/run/user/1000/atmate-{h:016x}.sock"))
}

#[test]
fn valid_fixtures_load_without_errors() {
    let files = yaml_files(&fixtures("valid"));
    assert!(!files.is_empty(), "no valid config fixtures found");
    for f in files {
        if let Err(d) = load_with_env(&f, &env) {
            panic!("{} should be valid:\n{}", f.display(), d.render());
        }
    }
}

#[test]
fn invalid_fixtures_give_exactly_the_expected_diagnostics() {
    let dir = fixtures("invalid");
    let files = yaml_files(&dir);
    assert!(!files.is_empty(), "no invalid config fixtures found");
    let bless = std::env::var_os("ATMATE_BLESS").is_some();
    let prefix = format!("{}/", dir.display());
    let mut failures = Vec::new();
    for f in files {
        let got = match load_with_env(&f, &env) {
            Ok(_) => "(no errors)".to_owned(),
            Err(d) => d.render().replace(&prefix, ""),
        };
        let expected_path = f.with_extension("expected");
        if bless {
            std::fs::write(&expected_path, format!("{got}\n")).expect("bless");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} has no .expected file", f.display()));
        if expected.trim_end() != got {
            failures.push(format!(
                "{}:\n--- expected\n{}\n--- got\n{got}",
                f.display(),
                expected.trim_end()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn shipped_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/atmate.yaml");
    let cfg = load_with_env(&path, &env).unwrap_or_else(|d| panic!("{}", d.render()));
    assert!(cfg.warnings.0.is_empty(), "{}", cfg.warnings.render());
    assert!(matches!(cfg.modems[0].device, Device::Sim(_)));
}
