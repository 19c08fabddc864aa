//! `atmate pdu decode|encode` through the real binary: the worked examples of MF667.md §4,
//! the error contract (one line on stderr, exit 1), and multipart encode → decode.

use assert_cmd::Command;
use serde_json::Value;

const E1: &str =
    "0791947101670000040C9194711032547600004230514103508011C8309BFD0E816A9B3268C37BAF373E";
const E2: &str = "07919471016700000404D04F190008422110905000290C041F04400438043204350442";
const E3: &str =
    "0791947101670000440B811007214365F70000423051410350400F0500032A0201A061391DF4769701";
const E4: &str =
    "0791947101670000440C9194711032547600084230514103900013060804123402020045006E0064006500202713";
const E5: &str = "0031000C919471103254760000AA05C8329BFD06";
const E6: &str = "079144775810065006FD0C91449771624701117013908522401170139085624000";

fn atmate() -> Command {
    Command::cargo_bin("atmate").expect("the atmate binary is built")
}

/// Run `atmate pdu decode <hex>`, expect success and exactly one line of JSON.
fn decode(hex: &str) -> Value {
    let out = atmate()
        .args(["pdu", "decode", hex])
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "decode {hex} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("utf-8");
    assert_eq!(stdout.lines().count(), 1, "one line of JSON: {stdout}");
    serde_json::from_str(&stdout).expect("valid JSON")
}

/// Run `atmate pdu decode <hex>`, expect exit 1 and one line on stderr; return that line.
fn decode_fails(hex: &str) -> String {
    let out = atmate()
        .args(["pdu", "decode", hex])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1), "exit code for {hex}");
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let stderr = String::from_utf8(out.stderr).expect("utf-8");
    assert_eq!(stderr.lines().count(), 1, "one line on stderr: {stderr:?}");
    stderr.trim_end().to_string()
}

fn encode(args: &[&str]) -> Vec<Value> {
    let out = atmate()
        .args(["pdu", "encode"])
        .args(args)
        .output()
        .expect("runs");
    assert!(
        out.status.success(),
        "encode {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    v.as_array().expect("a JSON array").clone()
}

#[test]
fn it_decodes_e1_gsm7_deliver_with_escapes() {
    let v = decode(E1);
    assert_eq!(v["type"], "deliver");
    assert_eq!(v["smsc"], "+491710760000");
    assert_eq!(v["first_octet"], 0x04);
    assert_eq!(v["flags"]["more_messages"], false);
    assert_eq!(v["number"], "+491701234567");
    assert_eq!(v["toa"], 0x91);
    assert_eq!(v["pid"], 0);
    assert_eq!(v["dcs"], 0);
    assert_eq!(v["timestamp"], "2024-03-15T14:30:05+02:00");
    assert_eq!(v["udl"], 17);
    assert_eq!(v["udh"], Value::Null);
    assert_eq!(v["concat"], Value::Null);
    assert_eq!(v["encoding"], "gsm7");
    assert_eq!(v["class"], Value::Null);
    assert_eq!(v["status"], Value::Null);
    assert_eq!(v["tpdu_length"], 34);
    assert_eq!(v["text"], "Hallo! 5€ [ok]");
}

#[test]
fn it_decodes_e2_ucs2_from_an_alphanumeric_sender() {
    let v = decode(E2);
    assert_eq!(v["type"], "deliver");
    assert_eq!(v["smsc"], "+491710760000");
    assert_eq!(v["first_octet"], 0x04);
    assert_eq!(v["number"], "O2");
    assert_eq!(v["toa"], 0xD0);
    assert_eq!(v["pid"], 0);
    assert_eq!(v["dcs"], 0x08);
    assert_eq!(v["encoding"], "ucs2");
    assert_eq!(v["timestamp"], "2024-12-01T09:05:00-03:00");
    assert_eq!(v["udl"], 12);
    assert_eq!(v["udh"], Value::Null);
    assert_eq!(v["tpdu_length"], 27);
    assert_eq!(v["text"], "Привет");
}

#[test]
fn it_decodes_e3_part_one_with_fill_bit() {
    let v = decode(E3);
    assert_eq!(v["type"], "deliver");
    assert_eq!(v["smsc"], "+491710760000");
    assert_eq!(v["first_octet"], 0x44);
    assert_eq!(v["number"], "01701234567");
    assert_eq!(v["toa"], 0x81);
    assert_eq!(v["pid"], 0);
    assert_eq!(v["dcs"], 0);
    assert_eq!(v["encoding"], "gsm7");
    assert_eq!(v["timestamp"], "2024-03-15T14:30:05+01:00");
    assert_eq!(v["udl"], 15);
    assert_eq!(v["udh"], "0500032A0201");
    assert_eq!(v["concat"]["ref"], 42);
    assert_eq!(v["concat"]["total"], 2);
    assert_eq!(v["concat"]["seq"], 1);
    assert_eq!(v["tpdu_length"], 33);
    assert_eq!(v["text"], "Part one");
}

#[test]
fn it_decodes_e4_part_two_with_16bit_reference() {
    let v = decode(E4);
    assert_eq!(v["type"], "deliver");
    assert_eq!(v["first_octet"], 0x44);
    assert_eq!(v["number"], "+491701234567");
    assert_eq!(v["toa"], 0x91);
    assert_eq!(v["dcs"], 0x08);
    assert_eq!(v["encoding"], "ucs2");
    assert_eq!(v["timestamp"], "2024-03-15T14:30:09+00:00");
    assert_eq!(v["udl"], 19);
    assert_eq!(v["udh"], "06080412340202");
    assert_eq!(v["concat"]["ref"], 0x1234);
    assert_eq!(v["concat"]["total"], 2);
    assert_eq!(v["concat"]["seq"], 2);
    assert_eq!(v["tpdu_length"], 38);
    assert_eq!(v["text"], "Ende ✓");
}

#[test]
fn it_decodes_e5_submit() {
    let v = decode(E5);
    assert_eq!(v["type"], "submit");
    assert_eq!(v["smsc"], Value::Null);
    assert_eq!(v["first_octet"], 0x31);
    assert_eq!(v["flags"]["status_report_request"], true);
    assert_eq!(v["mr"], 0);
    assert_eq!(v["number"], "+491701234567");
    assert_eq!(v["toa"], 0x91);
    assert_eq!(v["pid"], 0);
    assert_eq!(v["dcs"], 0);
    assert_eq!(v["validity"]["code"], 0xAA);
    assert_eq!(v["validity"]["minutes"], 4 * 24 * 60);
    assert_eq!(v["timestamp"], Value::Null);
    assert_eq!(v["udl"], 5);
    assert_eq!(v["tpdu_length"], 19);
    assert_eq!(v["text"], "Hello");
}

#[test]
fn it_decodes_e6_status_report() {
    let v = decode(E6);
    assert_eq!(v["type"], "status-report");
    assert_eq!(v["smsc"], "+447785016005");
    assert_eq!(v["first_octet"], 0x06);
    assert_eq!(v["mr"], 253);
    assert_eq!(v["number"], "+447917267410");
    assert_eq!(v["toa"], 0x91);
    assert_eq!(v["timestamp"], "2011-07-31T09:58:22+01:00");
    assert_eq!(v["discharge_time"], "2011-07-31T09:58:26+01:00");
    assert_eq!(v["status"]["code"], 0);
    assert_eq!(v["status"]["meaning"], "delivered");
    assert_eq!(v["text"], Value::Null);
    assert_eq!(v["tpdu_length"], 25);
}

#[test]
fn bad_hex_exits_1_with_the_position() {
    assert_eq!(
        decode_fails("0031G0"),
        "atmate: cannot decode PDU: invalid hex at position 4: 'G' is not a hex digit"
    );
}

#[test]
fn a_truncated_pdu_exits_1_naming_field_and_octet() {
    // E2 cut inside the SCTS.
    assert_eq!(
        decode_fails(&E2[..40]),
        "atmate: cannot decode PDU: truncated at octet 15: expected 7 SCTS octets, 5 left"
    );
    // E1 cut inside the user data.
    let msg = decode_fails(&E1[..E1.len() - 2]);
    assert!(msg.contains("truncated at octet 27"), "{msg}");
    assert!(msg.contains("user data"), "{msg}");
}

#[test]
fn it_encodes_e5_byte_identically() {
    let parts = encode(&[
        "--to",
        "+491701234567",
        "--text",
        "Hello",
        "--report",
        "--validity",
        "4d",
    ]);
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0]["pdu"], E5);
    assert_eq!(parts[0]["tpdu_length"], 19);
}

#[test]
fn a_200_character_text_becomes_two_parts_that_decode_back() {
    let text: String = "The quick brown fox jumps over the lazy dog; {braces} €5. "
        .chars()
        .cycle()
        .take(200)
        .collect();
    let parts = encode(&[
        "--to",
        "+491701234567",
        "--text",
        &text,
        "--reference",
        "77",
    ]);
    assert_eq!(parts.len(), 2);
    let mut joined = String::new();
    for (i, p) in parts.iter().enumerate() {
        let hex = p["pdu"].as_str().expect("pdu is a string");
        let len = p["tpdu_length"].as_u64().expect("tpdu_length is a number");
        assert_eq!(
            hex.len() / 2 - 1,
            len as usize,
            "length excludes the 00 prefix"
        );
        let v = decode(hex);
        assert_eq!(v["type"], "submit");
        assert_eq!(v["number"], "+491701234567");
        assert_eq!(v["encoding"], "gsm7");
        assert_eq!(v["concat"]["ref"], 77);
        assert_eq!(v["concat"]["total"], 2);
        assert_eq!(v["concat"]["seq"], i + 1);
        joined.push_str(v["text"].as_str().expect("text"));
    }
    assert_eq!(joined, text);
}

#[test]
fn non_gsm_text_is_sent_as_ucs2() {
    let parts = encode(&["--to", "01701234567", "--text", "Привет 😀"]);
    assert_eq!(parts.len(), 1);
    let v = decode(parts[0]["pdu"].as_str().expect("pdu"));
    assert_eq!(v["encoding"], "ucs2");
    assert_eq!(v["number"], "01701234567");
    assert_eq!(v["text"], "Привет 😀");
}

#[test]
fn an_invalid_recipient_exits_1() {
    let out = atmate()
        .args(["pdu", "encode", "--to", "nobody", "--text", "hi"])
        .output()
        .expect("runs");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("invalid address \"nobody\""), "{stderr}");
}
