//! Dependencies point downwards: the pure leaves (`at`, `sms`, `ussd`, `event`, `diag`)
//! use neither tokio nor a higher module, and `sim` never uses `modem`.

use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if root.is_file() {
        out.push(root.to_path_buf());
        return out;
    }
    let Ok(rd) = fs::read_dir(root) else {
        return out;
    };
    for entry in rd.flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(rust_files(&p));
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
    out
}

fn violations(paths: &[&str], forbidden: &[&str]) -> Vec<String> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = Vec::new();
    let mut files = 0;
    for p in paths {
        for file in rust_files(&src.join(p)) {
            files += 1;
            let text = fs::read_to_string(&file).expect("read source");
            for (n, line) in text.lines().enumerate() {
                // Unit tests at the end of a file may reach further (fixtures, config).
                if line.trim() == "#[cfg(test)]" {
                    break;
                }
                let code = line.split("//").next().unwrap_or("");
                for f in forbidden {
                    if code.contains(f) {
                        found.push(format!("{}:{}: uses `{f}`", file.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(files > 0, "no source files found under {paths:?}");
    found
}

#[test]
fn pure_leaves_use_no_tokio_and_no_higher_module() {
    let forbidden = [
        "tokio",
        "crate::modem",
        "crate::runtime",
        "crate::rules",
        "crate::script",
        "crate::store",
        "crate::sim",
        "crate::cli",
        "crate::schedule",
        "crate::config",
        "crate::host",
        "std::fs",
        "std::net",
    ];
    let v = violations(
        &[
            "at",
            "sms",
            "ussd",
            "event.rs",
            "diag.rs",
            "yaml.rs",
            "secret.rs",
        ],
        &forbidden,
    );
    assert!(v.is_empty(), "layering violations:\n{}", v.join("\n"));
}

#[test]
fn simulator_never_uses_the_modem_engine() {
    let v = violations(
        &["sim"],
        &[
            "crate::modem",
            "crate::runtime",
            "crate::rules",
            "crate::script",
            "crate::store",
        ],
    );
    assert!(v.is_empty(), "layering violations:\n{}", v.join("\n"));
}

#[test]
fn rules_and_scripts_never_touch_the_port_or_the_store() {
    let v = violations(
        &["rules", "script"],
        &[
            "crate::modem",
            "crate::runtime",
            "crate::store",
            "crate::config",
            "crate::sim",
        ],
    );
    assert!(v.is_empty(), "layering violations:\n{}", v.join("\n"));
}

#[test]
fn modem_never_uses_rules_scripts_runtime_or_store() {
    let v = violations(
        &["modem"],
        &[
            "crate::rules",
            "crate::script",
            "crate::runtime",
            "crate::store",
            "crate::config",
        ],
    );
    assert!(v.is_empty(), "layering violations:\n{}", v.join("\n"));
}
