//! The control socket of a real daemon: the protocol, its permissions, and the CLI
//! commands (`status`, `send`, `ussd`, `at`, `inbox`) run as separate processes
//! against it — other programs share the one modem handle instead of fighting for
//! the port.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use atmate::control::{Client, Request};

use crate::common::{builder, ALLOWED};

const T: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_serves_the_protocol_on_an_owner_only_socket() {
    let d = builder().start().await;
    let sock = d.rt.control_socket();
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o600,
        "the control socket is readable by its owner only"
    );

    let mut c = Client::connect(&sock).await.unwrap();
    let status = c.call(&Request::Status, T).await.unwrap();
    assert_eq!(status["modems"][0]["name"], "main");
    assert_eq!(status["modems"][0]["link"], "up");
    assert_eq!(status["modems"][0]["signal"]["dbm"], -77);

    let r = c
        .call(
            &Request::Send {
                to: ALLOWED.into(),
                text: "over the socket".into(),
                modem: None,
            },
            T,
        )
        .await
        .unwrap();
    assert!(r["id"].as_i64().unwrap() > 0, "{r}");
    d.expect_sent_sms(ALLOWED, |t| t == "over the socket").await;

    let u = c
        .call(
            &Request::Ussd {
                code: "*100#".into(),
                modem: None,
            },
            T,
        )
        .await
        .unwrap();
    assert!(u["text"].as_str().unwrap().contains("EUR"), "{u}");

    let at = c
        .call(
            &Request::At {
                command: "AT+CGMM".into(),
                modem: None,
            },
            T,
        )
        .await
        .unwrap();
    assert_eq!(at["lines"][0], "MF667");

    let err = c
        .call(
            &Request::At {
                command: "AT+NOSUCH".into(),
                modem: None,
            },
            T,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("ERROR"), "{err}");

    d.inject_sms(ALLOWED, "archived?").await;
    let mut found = false;
    for _ in 0..100 {
        let inbox = c
            .call(
                &Request::Inbox {
                    from: Some(ALLOWED.into()),
                    since: None,
                    limit: Some(5),
                },
                T,
            )
            .await
            .unwrap();
        if inbox
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["text"] == "archived?")
        {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(found, "the received SMS is in the inbox");

    // A second daemon on the same config must not steal the socket.
    let loaded = atmate::runtime::load::load_from(&d.path("atmate.yaml")).unwrap();
    let second = atmate::runtime::Runtime::start(loaded).await;
    assert!(second.is_err(), "a second daemon refuses to start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn it_streams_events_to_subscribers() {
    let d = builder().start().await;
    let mut c = Client::connect(&d.rt.control_socket()).await.unwrap();
    c.call(&Request::Subscribe, T).await.unwrap();
    d.inject_sms(ALLOWED, "stream me").await;
    for _ in 0..50 {
        let e = tokio::time::timeout(T, c.next_event())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if e["kind"] == "sms" {
            assert_eq!(e["text"], "stream me");
            return;
        }
    }
    panic!("no sms event on the subscription");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_talks_to_the_running_daemon() {
    let d = builder().start().await;
    let out = tokio::task::spawn_blocking({
        let path = d.path("atmate.yaml");
        move || {
            let run = |args: &[&str]| {
                std::process::Command::new(assert_cmd::cargo::cargo_bin("atmate"))
                    .args(args)
                    .arg("--config")
                    .arg(&path)
                    .output()
                    .unwrap()
            };
            (
                run(&["status", "--json"]),
                run(&["send", ALLOWED, "from the cli"]),
                run(&["ussd", "*100#"]),
                run(&["at", "AT+CSQ"]),
            )
        }
    })
    .await
    .unwrap();
    let (status, send, ussd, at) = out;
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(status.status.success(), "{}", text(&status));
    let v: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(v["modems"][0]["name"], "main");
    assert!(send.status.success(), "{}", text(&send));
    d.expect_sent_sms(ALLOWED, |t| t == "from the cli").await;
    assert!(ussd.status.success(), "{}", text(&ussd));
    assert!(text(&ussd).contains("Balance"), "{}", text(&ussd));
    assert!(at.status.success(), "{}", text(&at));
    assert!(text(&at).contains("+CSQ: 18"), "{}", text(&at));
}
