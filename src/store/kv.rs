//! Key-value storage for scripts (`store_get` / `store_set`): `kv` holds JSON text,
//! so any value a script can build round-trips, and `sqlite3` shows it readably.

use chrono::Utc;
use rusqlite::{params, OptionalExtension};
use serde_json::Value;

use super::error::Fail;
use super::{fmt_utc, Store, StoreError};

fn parse(key: &str, text: &str) -> Result<Value, Fail> {
    serde_json::from_str(text)
        .map_err(|e| Fail::Corrupt(format!("kv value of {key:?} is not JSON: {e}")))
}

fn check_key(key: &str) -> Result<(), Fail> {
    if key.is_empty() {
        return Err(Fail::Invalid("empty key".into()));
    }
    Ok(())
}

impl Store {
    /// The value stored under `key`, if any.
    pub fn kv_get(&self, key: &str) -> Result<Option<Value>, StoreError> {
        self.read("kv_get", |c| {
            let text: Option<String> = c
                .prepare_cached("SELECT value FROM kv WHERE key = ?1")?
                .query_row([key], |r| r.get(0))
                .optional()?;
            text.map(|t| parse(key, &t)).transpose()
        })
    }

    /// Stores `value` under `key`, replacing what was there.
    pub fn kv_set(&self, key: &str, value: &Value) -> Result<(), StoreError> {
        self.write("kv_set", |tx| {
            check_key(key)?;
            let text = serde_json::to_string(value)
                .map_err(|e| Fail::Invalid(format!("value for {key:?}: {e}")))?;
            tx.prepare_cached(
                "INSERT INTO kv (key, value, updated_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value,
                                                 updated_at = excluded.updated_at",
            )?
            .execute(params![key, text, fmt_utc(Utc::now())])?;
            Ok(())
        })
    }

    /// Removes `key`; true if it existed.
    pub fn kv_delete(&self, key: &str) -> Result<bool, StoreError> {
        self.write("kv_delete", |tx| {
            Ok(tx
                .prepare_cached("DELETE FROM kv WHERE key = ?1")?
                .execute([key])?
                > 0)
        })
    }

    /// Every key starting with `prefix` (all keys for `""`), in key order.
    pub fn kv_list(&self, prefix: &str) -> Result<Vec<(String, Value)>, StoreError> {
        self.read("kv_list", |c| {
            // substr/length count characters on both sides, so this is an exact
            // prefix test with no LIKE wildcards to escape.
            let mut st = c.prepare_cached(
                "SELECT key, value FROM kv WHERE substr(key, 1, length(?1)) = ?1 ORDER BY key",
            )?;
            let rows = st.query_map([prefix], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (k, v) = row?;
                let v = parse(&k, &v)?;
                out.push((k, v));
            }
            Ok(out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_round_trip() {
        let s = Store::open_in_memory().unwrap();
        assert_eq!(s.kv_get("balance").unwrap(), None);
        let values = [
            json!("12,34 €"),
            json!(42),
            json!(-0.5),
            json!(true),
            json!(null),
            json!([1, "two", {"three": 3}]),
            json!({"text": "Guthaben: 5,00 EUR", "status": 0, "dcs": 15}),
        ];
        for v in &values {
            s.kv_set("balance", v).unwrap();
            assert_eq!(s.kv_get("balance").unwrap().as_ref(), Some(v));
        }
        // A stored null is a value, not an absence.
        s.kv_set("nothing", &json!(null)).unwrap();
        assert_eq!(s.kv_get("nothing").unwrap(), Some(json!(null)));
        assert!(s.kv_delete("balance").unwrap());
        assert!(!s.kv_delete("balance").unwrap());
        assert_eq!(s.kv_get("balance").unwrap(), None);
        assert!(s.kv_set("", &json!(1)).is_err());
    }

    #[test]
    fn list_by_prefix_in_key_order() {
        let s = Store::open_in_memory().unwrap();
        for (k, v) in [
            ("sim.balance", json!(5)),
            ("sim.aaa", json!(1)),
            ("sims", json!(2)),
            ("sim_x", json!(3)),
            ("other", json!(4)),
            ("sim%", json!(6)),
        ] {
            s.kv_set(k, &v).unwrap();
        }
        let keys = |p: &str| -> Vec<String> {
            s.kv_list(p).unwrap().into_iter().map(|(k, _)| k).collect()
        };
        assert_eq!(keys("sim."), ["sim.aaa", "sim.balance"]);
        // `_` and `%` are plain characters, not LIKE wildcards.
        assert_eq!(keys("sim_"), ["sim_x"]);
        assert_eq!(keys("sim%"), ["sim%"]);
        assert_eq!(keys("").len(), 6);
        assert_eq!(
            s.kv_list("sim.balance").unwrap(),
            [("sim.balance".to_string(), json!(5))]
        );
        assert!(keys("zzz").is_empty());
    }

    #[test]
    fn values_survive_a_reopen_and_bad_json_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("atmate.db");
        Store::open(&path)
            .unwrap()
            .kv_set("counter", &json!(7))
            .unwrap();
        let s = Store::open(&path).unwrap();
        assert_eq!(s.kv_get("counter").unwrap(), Some(json!(7)));
        s.write("test", |tx| {
            tx.execute("UPDATE kv SET value = '{oops' WHERE key = 'counter'", [])?;
            Ok(())
        })
        .unwrap();
        let err = s.kv_get("counter").unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { op: "kv_get", .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("counter"), "{err}");
    }
}
