//! `Secret`: a value (the SIM PIN) that `Debug` and `Display` never show. A leaf,
//! shared by `config` (where the PIN is read) and `modem` (where it is sent).

use std::fmt;

/// A secret (the SIM PIN): `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself; use only to hand it to the modem.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// Whether an environment variable holds a secret that scripts and child programs
/// must not see: the PIN (`ATMATE_PIN`, where the README tells users to put it) and
/// anything named like a credential.
pub fn is_secret_env(name: &str) -> bool {
    let up = name.to_ascii_uppercase();
    up == "ATMATE_PIN"
        || up == "ATMATE_PUK"
        || [
            "_PIN", "_PUK", "PASSWORD", "PASSWD", "_TOKEN", "_SECRET", "_KEY",
        ]
        .iter()
        .any(|s| up.ends_with(s))
}

/// The names of the secret variables in this process's environment (to remove from
/// the environment of child processes).
pub fn secret_env_names() -> Vec<String> {
    std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter(|k| is_secret_env(k))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_printed() {
        let s = Secret::new("1234");
        assert_eq!(format!("{s:?} {s}"), "Secret(****) ****");
        assert_eq!(s.expose(), "1234");
    }

    #[test]
    fn secret_variables() {
        assert!(is_secret_env("ATMATE_PIN"));
        assert!(is_secret_env("MQTT_PASSWORD"));
        assert!(is_secret_env("atmate_sim_pin"));
        assert!(!is_secret_env("ATMATE_REPORT_CRON"));
        assert!(!is_secret_env("PINENTRY"));
    }
}
