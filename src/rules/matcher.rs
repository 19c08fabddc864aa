//! Does an event start a rule? Trigger matching, regex captures, sender numbers.

use regex::Regex;
use serde_json::{Map, Value};

use super::model::{Rule, SenderMatch, SignalUnit, StorageState, Threshold, Trigger};
use crate::event::{Event, SignalEvent};

/// A sender number in one canonical form, so `+49 176 1234-5678`, `0049176…` and
/// `+49176…` compare equal: separators (space, `-`, `.`, `/`, parentheses) go and a
/// leading `00` becomes `+`. Alphanumeric senders (`Vodafone`) are only trimmed.
///
/// National numbers (`0176…`) stay national: which country they belong to is unknown.
pub fn normalize_sender(s: &str) -> String {
    let t = s.trim();
    if t.chars().any(char::is_alphabetic) {
        return t.to_owned();
    }
    let compact: String = t
        .chars()
        .filter(|c| !matches!(c, ' ' | '-' | '.' | '/' | '(' | ')'))
        .collect();
    match compact.strip_prefix("00") {
        Some(rest) => format!("+{rest}"),
        None => compact,
    }
}

/// True when `sender` is on the allowlist (both sides normalised).
pub fn sender_allowed(sender: &str, allow: &[String]) -> bool {
    let s = normalize_sender(sender);
    !s.is_empty() && allow.iter().any(|a| normalize_sender(a) == s)
}

/// Why an event matched: the regex captures for `match`, if the trigger had a regex.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Matched {
    /// `{g0, g1, …, "0", "1", …, <names>}`; `None` when the trigger had no text regex.
    pub captures: Option<Value>,
}

/// Does `event` start `rule`? `prev_signal` is the modem's previous signal event (for
/// threshold crossings).
pub fn match_event(
    rule: &Rule,
    event: &Event,
    prev_signal: Option<&SignalEvent>,
) -> Option<Matched> {
    if let (Some(m), false) = (event.modem(), rule.modem.is_empty()) {
        if m != rule.modem {
            return None;
        }
    }
    let yes = Some(Matched::default());
    match (&rule.trigger, event) {
        (Trigger::Schedule(_) | Trigger::Every(_), Event::Schedule(s)) => {
            (s.job == rule.name).then_some(Matched::default())
        }
        (Trigger::Sms { from, text }, Event::Sms(sms)) => {
            if !sender_matches(from.as_ref(), Some(&sms.from)) {
                return None;
            }
            text_matches(text.as_ref(), &sms.text)
        }
        (
            Trigger::Ussd {
                network_initiated,
                text,
            },
            Event::Ussd(u),
        ) => {
            if network_initiated.is_some_and(|ni| ni != u.network_initiated) {
                return None;
            }
            text_matches(text.as_ref(), &u.text)
        }
        (Trigger::Link { state, via }, Event::Link(l)) => (state.is_none_or(|s| s == l.state)
            && via.is_none_or(|k| k == l.via))
        .then_some(Matched::default()),
        (Trigger::Network(states), Event::Network(n)) => {
            states.contains(&n.state).then_some(Matched::default())
        }
        (Trigger::Signal(t), Event::Signal(s)) => {
            let now = in_range(t, s);
            let before = prev_signal.is_some_and(|p| in_range(t, p));
            (now && !before).then_some(Matched::default())
        }
        (Trigger::Startup, Event::Startup(_)) => yes,
        (Trigger::Storage(want), Event::Storage(s)) => {
            let state = match want {
                StorageState::Full => "full",
                StorageState::Ok => "ok",
            };
            (s.state == state).then_some(Matched::default())
        }
        (Trigger::Call { from }, Event::Call(c)) => {
            sender_matches(from.as_ref(), c.from.as_deref()).then_some(Matched::default())
        }
        (Trigger::SmsStatus(states), Event::SmsStatus(s)) => {
            states.contains(&s.status).then_some(Matched::default())
        }
        _ => None,
    }
}

fn sender_matches(filter: Option<&SenderMatch>, sender: Option<&str>) -> bool {
    match (filter, sender) {
        (None, _) => true,
        (Some(_), None) => false,
        (Some(SenderMatch::Exact(list)), Some(s)) => list.contains(&normalize_sender(s)),
        (Some(SenderMatch::Regex(re)), Some(s)) => re.is_match(s),
    }
}

fn text_matches(re: Option<&Regex>, text: &str) -> Option<Matched> {
    let Some(re) = re else {
        return Some(Matched::default());
    };
    let caps = re.captures(text)?;
    let mut m = Map::new();
    for (i, g) in caps.iter().enumerate() {
        let v = g.map_or(Value::Null, |g| Value::String(g.as_str().to_owned()));
        m.insert(format!("g{i}"), v.clone());
        m.insert(i.to_string(), v);
    }
    for name in re.capture_names().flatten() {
        let v = caps
            .name(name)
            .map_or(Value::Null, |g| Value::String(g.as_str().to_owned()));
        m.insert(name.to_owned(), v);
    }
    Some(Matched {
        captures: Some(Value::Object(m)),
    })
}

fn in_range(t: &Threshold, s: &SignalEvent) -> bool {
    let value = match t.unit {
        SignalUnit::Dbm => s.dbm,
        // 99 is "not known or not detectable" (27.007 +CSQ), not a strong signal.
        SignalUnit::Csq => (s.csq <= 31).then_some(i32::from(s.csq)),
    };
    match value {
        Some(v) if t.below => v < t.value,
        Some(v) => v > t.value,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::*;
    use crate::rules::load::{load_sources, ValidationContext};
    use std::path::Path;

    fn rule(when: &str) -> Rule {
        let text = format!("- name: r\n  when: {when}\n  do: [stop]\n");
        let ctx = ValidationContext {
            modems: vec!["main".into(), "other".into()],
            default_modem: Some("main".into()),
            allow_senders: vec!["+4917612345678".into()],
            ..ValidationContext::default()
        };
        let (set, _) = load_sources(&[(Path::new("t.yaml"), &text)], &ctx)
            .unwrap_or_else(|d| panic!("{}", d.render()));
        (*set.rules()[0]).clone()
    }

    fn sms(from: &str, text: &str) -> Event {
        crate::event::test_sms(from, text)
    }

    fn signal(csq: u8) -> SignalEvent {
        let s = Signal::from_csq(csq);
        SignalEvent {
            modem: "main".into(),
            csq,
            dbm: s.dbm,
            bars: s.bars,
        }
    }

    fn hits(r: &Rule, e: &Event) -> bool {
        match_event(r, e, None).is_some()
    }

    #[test]
    fn sms_from_exact_list_and_regex() {
        let r = rule("{ sms: { from: \"+49 176 12345678\" } }");
        assert!(hits(&r, &sms("+4917612345678", "x")));
        assert!(hits(&r, &sms("004917612345678", "x")));
        assert!(!hits(&r, &sms("+4917600000000", "x")));
        let r = rule("{ sms: { from: [\"+4917612345678\", \"+4930111\"] } }");
        assert!(hits(&r, &sms("+4930111", "x")));
        let r = rule("{ sms: { from: { regex: \"^\\\\+49176\" } } }");
        assert!(hits(&r, &sms("+4917699999999", "x")));
        assert!(!hits(&r, &sms("+4930111", "x")));
    }

    #[test]
    fn sms_text_regex_with_captures() {
        let r = rule("{ sms: { text: \"(?i)^status (?P<what>\\\\w+)$\" } }");
        assert!(!hits(&r, &sms("+49", "hello")));
        let m = match_event(&r, &sms("+49", "STATUS balance"), None).expect("match");
        let caps = m.captures.expect("captures");
        assert_eq!(caps["what"], "balance");
        assert_eq!(caps["g1"], "balance");
        assert_eq!(caps["g0"], "STATUS balance");
        assert_eq!(caps["1"], "balance");
    }

    #[test]
    fn events_of_another_modem_do_not_match() {
        let r = rule("{ sms: {} }");
        let mut e = sms("+49", "x");
        if let Event::Sms(s) = &mut e {
            s.modem = "other".into();
        }
        assert!(!hits(&r, &e));
        assert!(!hits(
            &r,
            &Event::Startup(StartupEvent {
                modem: "main".into()
            })
        ));
    }

    #[test]
    fn ussd_network_initiated_or_any() {
        let ev = |ni: bool, text: &str| {
            Event::Ussd(UssdEvent {
                modem: "main".into(),
                text: text.into(),
                status: 0,
                dcs: 15,
                network_initiated: ni,
            })
        };
        let any = rule("ussd");
        assert!(hits(&any, &ev(true, "x")) && hits(&any, &ev(false, "x")));
        let ni = rule("{ ussd: { network_initiated: true, text: \"Guthaben\" } }");
        assert!(hits(&ni, &ev(true, "Ihr Guthaben: 5 EUR")));
        assert!(!hits(&ni, &ev(false, "Ihr Guthaben: 5 EUR")));
        assert!(!hits(&ni, &ev(true, "Hallo")));
    }

    #[test]
    fn link_and_network_states() {
        let link = |state, via| {
            Event::Link(LinkEvent {
                modem: "main".into(),
                state,
                via,
                device: None,
                reason: None,
                downtime_ms: None,
            })
        };
        let down = rule("{ link: down }");
        assert!(hits(&down, &link(LinkState::Down, LinkKind::Serial)));
        assert!(hits(&down, &link(LinkState::Down, LinkKind::Data)));
        assert!(!hits(&down, &link(LinkState::Up, LinkKind::Serial)));
        let data_up = rule("{ link: { state: up, via: data } }");
        assert!(hits(&data_up, &link(LinkState::Up, LinkKind::Data)));
        assert!(!hits(&data_up, &link(LinkState::Up, LinkKind::Serial)));

        let net = |state| {
            Event::Network(NetworkEvent {
                modem: "main".into(),
                state,
                operator: None,
                tech: None,
                lac: None,
                ci: None,
            })
        };
        let lost = rule("{ network: lost }");
        assert!(hits(&lost, &net(NetworkState::Lost)));
        assert!(!hits(&lost, &net(NetworkState::Registered)));
        let either = rule("{ network: [roaming, denied] }");
        assert!(hits(&either, &net(NetworkState::Denied)));
        assert!(hits(&either, &net(NetworkState::Roaming)));
        assert!(!hits(&either, &net(NetworkState::Searching)));
    }

    #[test]
    fn signal_fires_when_it_crosses_the_threshold() {
        // csq 5 = -103 dBm, csq 10 = -93 dBm.
        let r = rule("{ signal: { below: -100 } }");
        let weak = Event::Signal(signal(5));
        assert!(
            match_event(&r, &weak, None).is_some(),
            "first reading below"
        );
        assert!(
            match_event(&r, &weak, Some(&signal(10))).is_some(),
            "crossed"
        );
        assert!(
            match_event(&r, &weak, Some(&signal(4))).is_none(),
            "was already below"
        );
        assert!(match_event(&r, &Event::Signal(signal(10)), None).is_none());
        assert!(
            match_event(&r, &Event::Signal(signal(99)), None).is_none(),
            "unknown"
        );

        let r = rule("{ signal: { below_csq: 5 } }");
        assert!(match_event(&r, &Event::Signal(signal(4)), Some(&signal(6))).is_some());
        assert!(match_event(&r, &Event::Signal(signal(5)), None).is_none());
        let r = rule("{ signal: { above: -80 } }");
        assert!(match_event(&r, &Event::Signal(signal(20)), Some(&signal(10))).is_some());
        let r = rule("{ signal: { above_csq: 20 } }");
        assert!(match_event(&r, &Event::Signal(signal(21)), None).is_some());
        assert!(match_event(&r, &Event::Signal(signal(99)), None).is_none());
    }

    #[test]
    fn schedule_and_every_match_their_job_by_rule_name() {
        let job = |name: &str| Event::Schedule(ScheduleEvent { job: name.into() });
        let r = rule("{ schedule: \"0 8 * * *\" }");
        assert!(hits(&r, &job("r")));
        assert!(!hits(&r, &job("other")));
        let r = rule("{ every: 15m }");
        assert!(hits(&r, &job("r")));
    }

    #[test]
    fn startup_storage_call_and_status() {
        assert!(hits(
            &rule("startup"),
            &Event::Startup(StartupEvent {
                modem: "main".into()
            })
        ));
        let storage = |state: &str| {
            Event::Storage(StorageEvent {
                modem: "main".into(),
                state: state.into(),
                memory: "SM".into(),
                used: 20,
                total: 20,
            })
        };
        assert!(hits(&rule("{ storage: full }"), &storage("full")));
        assert!(!hits(&rule("{ storage: full }"), &storage("ok")));
        assert!(hits(&rule("{ storage: { state: ok } }"), &storage("ok")));

        let call = |from: Option<&str>| {
            Event::Call(CallEvent {
                modem: "main".into(),
                from: from.map(String::from),
                call_type: None,
            })
        };
        assert!(hits(&rule("call"), &call(None)));
        assert!(hits(&rule("{ call: incoming }"), &call(Some("+49"))));
        let from = rule("{ call: { from: \"+4917612345678\" } }");
        assert!(hits(&from, &call(Some("+4917612345678"))));
        assert!(
            !hits(&from, &call(None)),
            "a hidden number matches no filter"
        );

        let status = |s: &str| {
            Event::SmsStatus(SmsStatus {
                modem: "main".into(),
                reference: 1,
                to: "+49".into(),
                status: s.into(),
                st: 0,
                message_id: Some(1),
                discharge: None,
            })
        };
        assert!(hits(&rule("{ sms_status: failed }"), &status("failed")));
        assert!(!hits(&rule("{ sms_status: failed }"), &status("delivered")));
        assert!(hits(&rule("sms_status"), &status("delivered")));
        assert!(hits(
            &rule("{ sms_status: [delivered, failed] }"),
            &status("delivered")
        ));
    }

    #[test]
    fn triggers_ignore_other_event_kinds() {
        assert!(!hits(
            &rule("{ sms: {} }"),
            &Event::Startup(StartupEvent {
                modem: "main".into()
            })
        ));
        assert!(!hits(&rule("startup"), &sms("+49", "x")));
    }

    #[test]
    fn senders_are_compared_normalised() {
        let allow = vec!["+49 176 1234 5678".to_owned()];
        assert!(sender_allowed("004917612345678", &allow));
        assert!(sender_allowed("+4917612345678", &allow));
        assert!(!sender_allowed("+4917600000000", &allow));
        assert!(!sender_allowed("", &allow));
        assert_eq!(normalize_sender(" Vodafone "), "Vodafone");
    }
}
