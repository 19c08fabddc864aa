//! The `Host` rules and scripts get: one modem's handle, the send policy and the store.

use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::broadcast;

use super::policy::SendPolicy;
use crate::event::{Event, SendLimitEvent, Signal, UssdReply};
use crate::host::{Host, HostError, InboxEntry};
use crate::modem::{ModemError, ModemHandle};
use crate::store::Store;

/// A `Host` scoped to one modem.
pub struct ModemHost {
    modem: ModemHandle,
    policy: Arc<SendPolicy>,
    store: Store,
    /// Where `send_limit` events go (the runtime's event bus).
    events: broadcast::Sender<Event>,
}

impl ModemHost {
    /// Wrap a modem handle with the daemon's policy and store.
    pub fn new(
        modem: ModemHandle,
        policy: Arc<SendPolicy>,
        store: Store,
        events: broadcast::Sender<Event>,
    ) -> ModemHost {
        ModemHost {
            modem,
            policy,
            store,
            events,
        }
    }
}

fn modem_err(e: ModemError) -> HostError {
    match e {
        ModemError::Timeout { .. } => HostError::Timeout(e.to_string()),
        other => HostError::Modem(other.to_string()),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, HostError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| HostError::Other(e.to_string()))?
        .map_err(|e| HostError::Other(e.to_string()))
}

#[async_trait]
impl Host for ModemHost {
    async fn send_sms(&self, to: &str, text: &str) -> Result<i64, HostError> {
        if let Err(limit) = self.policy.try_acquire(to) {
            tracing::warn!(modem = %self.modem.name(), %to, limit = limit.as_str(), "send budget exhausted; SMS not sent");
            let _ = self.events.send(Event::SendLimit(SendLimitEvent {
                modem: self.modem.name().to_owned(),
                to: to.to_owned(),
                limit: limit.as_str().to_owned(),
            }));
            return Err(HostError::Policy(format!(
                "send budget `{}` exhausted (limits: {:?})",
                limit.as_str(),
                self.policy.budgets()
            )));
        }
        self.modem
            .send_sms(to, text)
            .await
            .map(|r| r.id)
            .map_err(modem_err)
    }

    async fn ussd(&self, code: &str) -> Result<UssdReply, HostError> {
        self.modem.ussd(code).await.map_err(modem_err)
    }

    async fn ussd_reply(&self, text: &str) -> Result<UssdReply, HostError> {
        self.modem.ussd_reply(text).await.map_err(modem_err)
    }

    async fn ussd_cancel(&self) -> Result<(), HostError> {
        self.modem.ussd_cancel().await.map_err(modem_err)
    }

    async fn at(&self, command: &str) -> Result<String, HostError> {
        self.modem
            .at(command)
            .await
            .map(|r| r.text())
            .map_err(modem_err)
    }

    async fn signal(&self) -> Result<Signal, HostError> {
        // The probe keeps a fresh reading; ask the port only when there is none.
        if let Some(s) = self.modem.status().signal {
            return Ok(s);
        }
        self.modem.signal().await.map_err(modem_err)
    }

    async fn modem_info(&self) -> Result<serde_json::Value, HostError> {
        let s = self.modem.status();
        let mut v = serde_json::to_value(&s).map_err(|e| HostError::Other(e.to_string()))?;
        if let Some(obj) = v.as_object_mut() {
            // Flatten identity for templates: `modem.model`, `modem.imei`.
            if let Some(info) = obj.remove("info").and_then(|i| i.as_object().cloned()) {
                obj.extend(info);
            }
        }
        Ok(v)
    }

    async fn inbox(&self, n: usize) -> Result<Vec<InboxEntry>, HostError> {
        let store = self.store.clone();
        let modem = self.modem.name().to_owned();
        let msgs = blocking(move || {
            let mut q = crate::store::InboxQuery::newest(n);
            q.modem = Some(modem);
            store.inbox(&q)
        })
        .await?;
        Ok(msgs
            .into_iter()
            .map(|m| InboxEntry {
                id: m.id,
                from: m.number.clone().unwrap_or_default(),
                text: m.text.clone().unwrap_or_default(),
                timestamp: m
                    .scts
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_else(|| m.received_at.to_rfc3339()),
                incomplete: m.incomplete,
            })
            .collect())
    }

    async fn store_get(&self, key: &str) -> Result<Option<serde_json::Value>, HostError> {
        let store = self.store.clone();
        let key = key.to_owned();
        blocking(move || store.kv_get(&key)).await
    }

    async fn store_set(&self, key: &str, value: serde_json::Value) -> Result<(), HostError> {
        let store = self.store.clone();
        let key = key.to_owned();
        blocking(move || store.kv_set(&key, &value)).await
    }

    async fn set_recovery(&self, enabled: bool) -> Result<(), HostError> {
        self.modem.set_recovery(enabled).await;
        tracing::info!(modem = %self.modem.name(), enabled, "automatic network recovery switched");
        Ok(())
    }
}
