//! Finding `atmate.yaml`.
//!
//! Order: `--config`, then `$ATMATE_CONFIG`, then `./config/atmate.yaml`, then
//! `$XDG_CONFIG_HOME/atmate/atmate.yaml` (`~/.config/atmate/atmate.yaml` when the
//! variable is unset), then `/etc/atmate/atmate.yaml`. A path the user named (flag or
//! variable) must exist: we never fall back silently from a file the user asked for.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// How the config file was found (for the start-up log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// `--config <path>`.
    Flag,
    /// `$ATMATE_CONFIG`.
    Env,
    /// `./config/atmate.yaml` in the working directory.
    WorkingDir,
    /// `$XDG_CONFIG_HOME/atmate/atmate.yaml`.
    UserConfig,
    /// `/etc/atmate/atmate.yaml`.
    System,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::Flag => "--config",
            Origin::Env => "ATMATE_CONFIG",
            Origin::WorkingDir => "the working directory",
            Origin::UserConfig => "XDG_CONFIG_HOME",
            Origin::System => "/etc/atmate",
        })
    }
}

/// A config file and how it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The file.
    pub path: PathBuf,
    /// How it was found.
    pub origin: Origin,
}

impl fmt::Display for Located {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (from {})", self.path.display(), self.origin)
    }
}

/// Why no config file could be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file named by `--config` or `$ATMATE_CONFIG` does not exist.
    #[error("config file {} (from {origin}) does not exist", path.display())]
    Missing {
        /// The path given.
        path: PathBuf,
        /// Where it was given.
        origin: Origin,
    },
    /// No file in any of the usual places.
    #[error(
        "no atmate.yaml found (tried {}); pass --config <path> or set ATMATE_CONFIG",
        tried.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    NotFound {
        /// Every place looked at, in order.
        tried: Vec<PathBuf>,
    },
}

/// The config file to use. See [`find`] for how it was found.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    find(explicit).map(|l| l.path)
}

/// The config file to use and how it was found, from the process environment.
pub fn find(explicit: Option<&Path>) -> Result<Located, ConfigError> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    find_with(explicit, &|k| std::env::var_os(k), &cwd, &|p| p.is_file())
}

/// [`find`] with the environment, working directory and file test passed in (tests).
pub fn find_with(
    explicit: Option<&Path>,
    env: &dyn Fn(&str) -> Option<OsString>,
    cwd: &Path,
    exists: &dyn Fn(&Path) -> bool,
) -> Result<Located, ConfigError> {
    let named = explicit
        .map(|p| (p.to_path_buf(), Origin::Flag))
        .or_else(|| {
            env("ATMATE_CONFIG")
                .filter(|v| !v.is_empty())
                .map(|v| (PathBuf::from(v), Origin::Env))
        });
    if let Some((path, origin)) = named {
        return if exists(&path) {
            Ok(Located { path, origin })
        } else {
            Err(ConfigError::Missing { path, origin })
        };
    }
    let mut candidates = vec![(cwd.join("config").join("atmate.yaml"), Origin::WorkingDir)];
    let xdg = env("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            env("HOME")
                .filter(|h| !h.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        });
    if let Some(x) = xdg {
        candidates.push((x.join("atmate").join("atmate.yaml"), Origin::UserConfig));
    }
    candidates.push((PathBuf::from("/etc/atmate/atmate.yaml"), Origin::System));
    for (path, origin) in &candidates {
        if exists(path) {
            return Ok(Located {
                path: path.clone(),
                origin: *origin,
            });
        }
    }
    Err(ConfigError::NotFound {
        tried: candidates.into_iter().map(|(p, _)| p).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn flag_wins_and_must_exist() {
        let env = env_of(&[("ATMATE_CONFIG", "/env/a.yaml")]);
        let got = find_with(
            Some(Path::new("/flag/a.yaml")),
            &env,
            Path::new("/w"),
            &|_| true,
        );
        assert_eq!(
            got,
            Ok(Located {
                path: "/flag/a.yaml".into(),
                origin: Origin::Flag
            })
        );
        let got = find_with(
            Some(Path::new("/flag/a.yaml")),
            &env,
            Path::new("/w"),
            &|_| false,
        );
        assert_eq!(
            got.expect_err("missing").to_string(),
            "config file /flag/a.yaml (from --config) does not exist"
        );
    }

    #[test]
    fn env_var_then_the_usual_places_in_order() {
        let env = env_of(&[("ATMATE_CONFIG", "/env/a.yaml")]);
        let got = find_with(None, &env, Path::new("/w"), &|p| {
            p == Path::new("/env/a.yaml")
        });
        assert_eq!(got.map(|l| l.origin), Ok(Origin::Env));

        let env = env_of(&[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")]);
        let got = find_with(None, &env, Path::new("/w"), &|p| {
            p == Path::new("/x/atmate/atmate.yaml") || p == Path::new("/etc/atmate/atmate.yaml")
        });
        assert_eq!(got.map(|l| l.origin), Ok(Origin::UserConfig));

        let got = find_with(None, &env, Path::new("/w"), &|_| true);
        assert_eq!(
            got.map(|l| l.path),
            Ok(PathBuf::from("/w/config/atmate.yaml"))
        );
    }

    #[test]
    fn home_config_when_xdg_is_unset_and_a_list_when_nothing_is_found() {
        let env = env_of(&[("HOME", "/h")]);
        let err = find_with(None, &env, Path::new("/w"), &|_| false).expect_err("none");
        assert_eq!(
            err,
            ConfigError::NotFound {
                tried: vec![
                    "/w/config/atmate.yaml".into(),
                    "/h/.config/atmate/atmate.yaml".into(),
                    "/etc/atmate/atmate.yaml".into()
                ]
            }
        );
        assert!(err
            .to_string()
            .starts_with("no atmate.yaml found (tried /w/config/atmate.yaml, "));
        let ok = find_with(None, &env, Path::new("/w"), &|p| {
            p == Path::new("/h/.config/atmate/atmate.yaml")
        });
        assert_eq!(
            ok.map(|l| l.to_string()).as_deref(),
            Ok("/h/.config/atmate/atmate.yaml (from XDG_CONFIG_HOME)")
        );
    }
}
