//! Send budgets: global SMS limits (per hour, per day, per recipient per hour) that stop
//! loops of auto-replies before they cost real money. SMS cost money and senders can be
//! spoofed; two rules that answer each other would otherwise send forever.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// The limits; `0` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budgets {
    /// All recipients, sliding hour.
    pub per_hour: u32,
    /// All recipients, sliding day.
    pub per_day: u32,
    /// One recipient, sliding hour.
    pub per_recipient_hour: u32,
}

impl Default for Budgets {
    fn default() -> Self {
        Budgets {
            per_hour: 30,
            per_day: 100,
            per_recipient_hour: 10,
        }
    }
}

/// Which limit refused a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exceeded {
    /// `per_hour`.
    PerHour,
    /// `per_day`.
    PerDay,
    /// `per_recipient`.
    PerRecipient,
}

impl Exceeded {
    /// The word used in events and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Exceeded::PerHour => "per_hour",
            Exceeded::PerDay => "per_day",
            Exceeded::PerRecipient => "per_recipient",
        }
    }
}

const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(86_400);

/// Sliding-window counters; one per daemon (all modems share the budget).
#[derive(Debug)]
pub struct SendPolicy {
    budgets: Mutex<Budgets>,
    sent: Mutex<VecDeque<(Instant, String)>>,
}

/// Compare numbers by their last 9 digits, so `+4917…`, `004917…` and `017…` count as
/// the same recipient.
fn recipient_key(to: &str) -> String {
    let digits: String = to.chars().filter(char::is_ascii_digit).collect();
    if digits.is_empty() {
        return to.to_ascii_lowercase();
    }
    let start = digits.len().saturating_sub(9);
    digits[start..].to_owned()
}

impl SendPolicy {
    /// A policy with these budgets.
    pub fn new(budgets: Budgets) -> SendPolicy {
        SendPolicy {
            budgets: Mutex::new(budgets),
            sent: Mutex::new(VecDeque::new()),
        }
    }

    /// The budgets in force.
    pub fn budgets(&self) -> Budgets {
        *self.budgets.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// New limits (a reload); what was sent so far still counts.
    pub fn set_budgets(&self, b: Budgets) {
        *self.budgets.lock().unwrap_or_else(|e| e.into_inner()) = b;
    }

    /// Count sends that happened `ago` before now (from the outbox at start), so a
    /// restart — or a crash loop under `Restart=on-failure` — does not reset the
    /// budget.
    pub fn record_past(&self, to: &str, ago: Duration) {
        let now = Instant::now();
        let at = now.checked_sub(ago).unwrap_or(now);
        if ago >= DAY {
            return;
        }
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let pos = sent.iter().position(|(t, _)| *t > at).unwrap_or(sent.len());
        sent.insert(pos, (at, recipient_key(to)));
    }

    /// Take one send from the budget for `to`, or say which limit is hit.
    pub fn try_acquire(&self, to: &str) -> Result<(), Exceeded> {
        let now = Instant::now();
        let mut sent = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        while sent
            .front()
            .is_some_and(|(t, _)| now.saturating_duration_since(*t) >= DAY)
        {
            sent.pop_front();
        }
        let b = self.budgets();
        if b.per_day > 0 && sent.len() as u32 >= b.per_day {
            return Err(Exceeded::PerDay);
        }
        let in_hour = |t: &Instant| now.saturating_duration_since(*t) < HOUR;
        if b.per_hour > 0 && sent.iter().filter(|(t, _)| in_hour(t)).count() as u32 >= b.per_hour {
            return Err(Exceeded::PerHour);
        }
        let key = recipient_key(to);
        if b.per_recipient_hour > 0
            && sent.iter().filter(|(t, r)| in_hour(t) && *r == key).count() as u32
                >= b.per_recipient_hour
        {
            return Err(Exceeded::PerRecipient);
        }
        sent.push_back((now, key));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn per_recipient_then_per_hour_then_window_slides() {
        let p = SendPolicy::new(Budgets {
            per_hour: 3,
            per_day: 5,
            per_recipient_hour: 2,
        });
        assert!(p.try_acquire("+4917612345678").is_ok());
        // Same number in another format counts against the same recipient.
        assert!(p.try_acquire("004917612345678").is_ok());
        assert_eq!(p.try_acquire("017612345678"), Err(Exceeded::PerRecipient));
        assert!(p.try_acquire("+491511111111").is_ok());
        assert_eq!(p.try_acquire("+491522222222"), Err(Exceeded::PerHour));
        tokio::time::advance(HOUR).await;
        assert!(p.try_acquire("+491522222222").is_ok());
        assert!(p.try_acquire("+491533333333").is_ok());
        assert_eq!(p.try_acquire("+491544444444"), Err(Exceeded::PerDay));
        tokio::time::advance(DAY).await;
        assert!(p.try_acquire("+491544444444").is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn past_sends_count_and_limits_change_on_reload() {
        tokio::time::advance(DAY * 2).await;
        let p = SendPolicy::new(Budgets {
            per_hour: 2,
            per_day: 10,
            per_recipient_hour: 10,
        });
        p.record_past("+491", Duration::from_secs(600));
        p.record_past("+492", Duration::from_secs(1200));
        p.record_past("+493", DAY * 2); // too old to count
        assert_eq!(p.try_acquire("+494"), Err(Exceeded::PerHour));
        p.set_budgets(Budgets {
            per_hour: 3,
            per_day: 10,
            per_recipient_hour: 10,
        });
        assert!(p.try_acquire("+494").is_ok());
    }

    #[test]
    fn zero_means_unlimited() {
        let p = SendPolicy::new(Budgets {
            per_hour: 0,
            per_day: 0,
            per_recipient_hour: 0,
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            for _ in 0..500 {
                assert!(p.try_acquire("+4917612345678").is_ok());
            }
        });
    }
}
