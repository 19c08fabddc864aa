//! The worked examples of MF667.md §4 (E1–E6) field by field, encoders, errors, and
//! property tests.

use super::*;
use crate::sms::split::{build_deliver, build_submit, submit_parts, DeliverOptions, SubmitOptions};
use proptest::prelude::*;

const E1: &str =
    "0791947101670000040C9194711032547600004230514103508011C8309BFD0E816A9B3268C37BAF373E";
const E2: &str = "07919471016700000404D04F190008422110905000290C041F04400438043204350442";
const E3: &str =
    "0791947101670000440B811007214365F70000423051410350400F0500032A0201A061391DF4769701";
const E4: &str =
    "0791947101670000440C9194711032547600084230514103900013060804123402020045006E0064006500202713";
const E5: &str = "0031000C919471103254760000AA05C8329BFD06";
const E6: &str = "079144775810065006FD0C91449771624701117013908522401170139085624000";
/// The second status report of MF667.md §4 (from [pgm]).
const E6B: &str = "07917248014000F506B70AA18092020000317071518590803170715185418000";

fn at(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).expect("rfc3339")
}

fn deliver(hex: &str) -> Deliver {
    match decode_hex(hex).expect("decodes") {
        Pdu::Deliver(d) => d,
        other => panic!("expected a DELIVER, got {other:?}"),
    }
}

fn tpdu_len(hex: &str) -> usize {
    let bytes = from_hex(hex).expect("hex");
    bytes.len() - smsc_prefix_len(&bytes).expect("non-empty")
}

fn smsc() -> Option<Address> {
    Some(Address {
        number: "+491710760000".into(),
        toa: 0x91,
    })
}

#[test]
fn e1_deliver_gsm7_with_escapes_international_sender() {
    let d = deliver(E1);
    assert_eq!(d.smsc, smsc());
    assert_eq!(d.first_octet(), 0x04);
    assert!(!d.more_messages && !d.status_report_indication && !d.reply_path);
    assert_eq!(d.originator.number, "+491701234567");
    assert_eq!(d.originator.toa, 0x91);
    assert_eq!((d.pid, d.dcs.raw), (0x00, 0x00));
    assert_eq!(d.dcs.class, None);
    assert_eq!(d.timestamp, at("2024-03-15T14:30:05+02:00"));
    assert_eq!(d.timestamp.offset().local_minus_utc(), 2 * 3600);
    assert_eq!(d.user_data.udl(), 0x11);
    assert_eq!(d.user_data.encoding, Encoding::Gsm7);
    assert_eq!(d.user_data.udh, None);
    assert_eq!(d.user_data.concat, None);
    assert_eq!(d.user_data.text, "Hallo! 5€ [ok]");
    assert_eq!(tpdu_len(E1), 34);
}

#[test]
fn e2_deliver_ucs2_alphanumeric_sender_negative_offset() {
    let d = deliver(E2);
    assert_eq!(d.smsc, smsc());
    assert_eq!(d.first_octet(), 0x04);
    assert_eq!(d.originator.number, "O2");
    assert_eq!(d.originator.toa, 0xD0);
    assert!(d.originator.is_alphanumeric());
    assert_eq!((d.pid, d.dcs.raw), (0x00, 0x08));
    assert_eq!(d.user_data.encoding, Encoding::Ucs2);
    assert_eq!(d.timestamp, at("2024-12-01T09:05:00-03:00"));
    assert_eq!(d.timestamp.offset().local_minus_utc(), -3 * 3600);
    assert_eq!(d.user_data.udl(), 12);
    assert_eq!(d.user_data.udh, None);
    assert_eq!(d.user_data.text, "Привет");
    assert_eq!(tpdu_len(E2), 27);
}

#[test]
fn e3_deliver_part_one_8bit_ref_gsm7_with_one_fill_bit() {
    let d = deliver(E3);
    assert_eq!(d.smsc, smsc());
    assert_eq!(d.first_octet(), 0x44);
    assert!(!d.more_messages);
    assert_eq!(d.originator.number, "01701234567");
    assert_eq!(d.originator.toa, 0x81);
    assert_eq!((d.pid, d.dcs.raw), (0x00, 0x00));
    assert_eq!(d.timestamp, at("2024-03-15T14:30:05+01:00"));
    assert_eq!(d.user_data.udl(), 0x0F);
    assert_eq!(
        d.user_data.udh.as_deref(),
        Some(&[0x05, 0x00, 0x03, 0x2A, 0x02, 0x01][..])
    );
    assert_eq!(
        d.user_data.concat,
        Some(Concat {
            reference: 42,
            total: 2,
            seq: 1,
            sixteen_bit: false
        })
    );
    assert_eq!(
        d.user_data.data.len(),
        8,
        "8 text septets after 7 header septets"
    );
    assert_eq!(d.user_data.text, "Part one");
    assert_eq!(tpdu_len(E3), 33);
}

#[test]
fn e4_deliver_part_two_16bit_ref_ucs2_utc() {
    let d = deliver(E4);
    assert_eq!(d.smsc, smsc());
    assert_eq!(d.first_octet(), 0x44);
    assert_eq!(d.originator.number, "+491701234567");
    assert_eq!(d.originator.toa, 0x91);
    assert_eq!((d.pid, d.dcs.raw), (0x00, 0x08));
    assert_eq!(d.timestamp, at("2024-03-15T14:30:09+00:00"));
    assert_eq!(d.user_data.udl(), 0x13);
    assert_eq!(
        d.user_data.udh.as_deref(),
        Some(&[0x06, 0x08, 0x04, 0x12, 0x34, 0x02, 0x02][..])
    );
    assert_eq!(
        d.user_data.concat,
        Some(Concat {
            reference: 0x1234,
            total: 2,
            seq: 2,
            sixteen_bit: true
        })
    );
    assert_eq!(d.user_data.text, "Ende ✓");
    assert_eq!(tpdu_len(E4), 38);
}

#[test]
fn e5_submit_decodes_field_by_field() {
    let Pdu::Submit(s) = decode_hex(E5).expect("decodes") else {
        panic!("not a SUBMIT");
    };
    assert_eq!(s.smsc, None);
    assert_eq!(s.first_octet(), 0x31);
    assert!(s.status_report_request && !s.reject_duplicates && !s.reply_path);
    assert_eq!(s.message_reference, 0);
    assert_eq!(s.destination.number, "+491701234567");
    assert_eq!(s.destination.toa, 0x91);
    assert_eq!((s.pid, s.dcs.raw), (0x00, 0x00));
    assert_eq!(s.validity, Some(ValidityPeriod::Relative(0xAA)));
    assert_eq!(
        s.validity.and_then(|v| v.relative_minutes()),
        Some(4 * 24 * 60)
    );
    assert_eq!(s.user_data.udl(), 5);
    assert_eq!(s.user_data.text, "Hello");
    assert_eq!(tpdu_len(E5), 19);
}

#[test]
fn e5_encodes_byte_identically_via_build_submit() {
    let opts = SubmitOptions {
        status_report: true,
        validity: Some(ValidityPeriod::Relative(0xAA)),
        ..SubmitOptions::default()
    };
    let parts = build_submit("+491701234567", "Hello", &opts).expect("encodes");
    assert_eq!(
        parts,
        vec![EncodedPdu {
            tpdu_len: 19,
            hex: E5.to_string()
        }]
    );
}

#[test]
fn e6_status_report_delivered() {
    let Pdu::StatusReport(r) = decode_hex(E6).expect("decodes") else {
        panic!("not a STATUS-REPORT");
    };
    assert_eq!(
        r.smsc,
        Some(Address {
            number: "+447785016005".into(),
            toa: 0x91
        })
    );
    assert_eq!(r.first_octet(), 0x06);
    assert!(!r.more_messages && !r.qualifier_command && !r.loop_prevention);
    assert_eq!(r.message_reference, 253);
    assert_eq!(r.recipient.number, "+447917267410");
    assert_eq!(r.recipient.toa, 0x91);
    assert_eq!(r.timestamp, at("2011-07-31T09:58:22+01:00"));
    assert_eq!(r.discharge, at("2011-07-31T09:58:26+01:00"));
    assert_eq!(r.status, 0x00);
    assert_eq!(r.delivery(), DeliveryStatus::Delivered);
    assert_eq!((r.pid, r.dcs, r.user_data), (None, None, None));
    assert_eq!(tpdu_len(E6), 25);
}

#[test]
fn e6b_status_report_national_recipient() {
    let Pdu::StatusReport(r) = decode_hex(E6B).expect("decodes") else {
        panic!("not a STATUS-REPORT");
    };
    assert_eq!(
        r.smsc.as_ref().map(|a| a.number.as_str()),
        Some("+27841004005")
    );
    assert_eq!(r.message_reference, 183);
    assert_eq!(r.recipient.number, "0829200000");
    assert_eq!(r.recipient.toa, 0xA1);
    assert_eq!(r.timestamp, at("2013-07-17T15:58:09+02:00"));
    assert_eq!(r.discharge, at("2013-07-17T15:58:14+02:00"));
    assert_eq!(r.delivery(), DeliveryStatus::Delivered);
}

#[test]
fn every_worked_example_re_encodes_byte_identically() {
    for hex in [E1, E2, E3, E4, E5, E6, E6B] {
        let pdu = decode_hex(hex).expect("decodes");
        let enc = pdu.encode().expect("encodes");
        assert_eq!(enc.hex, hex);
        assert_eq!(enc.tpdu_len, tpdu_len(hex));
    }
}

#[test]
fn build_deliver_reproduces_e1_and_e2() {
    let opts = DeliverOptions {
        smsc: Some("+491710760000".into()),
        ..DeliverOptions::default()
    };
    let e1 = build_deliver(
        "+491701234567",
        "Hallo! 5€ [ok]",
        at("2024-03-15T14:30:05+02:00"),
        &opts,
    )
    .expect("encodes");
    assert_eq!(
        e1,
        vec![EncodedPdu {
            tpdu_len: 34,
            hex: E1.into()
        }]
    );
    let e2 =
        build_deliver("O2", "Привет", at("2024-12-01T09:05:00-03:00"), &opts).expect("encodes");
    assert_eq!(e2[0].hex, E2);
}

#[test]
fn e3_and_e4_parts_encode_from_their_fields() {
    let e3 = Deliver {
        smsc: smsc(),
        more_messages: false,
        loop_prevention: false,
        status_report_indication: false,
        reply_path: false,
        originator: Address::parse("01701234567").expect("number"),
        pid: 0,
        dcs: Dcs::from_byte(0x00),
        timestamp: at("2024-03-15T14:30:05+01:00"),
        user_data: UserData::from_text(
            "Part one",
            Encoding::Gsm7,
            Some(Concat {
                reference: 42,
                total: 2,
                seq: 1,
                sixteen_bit: false,
            }),
        )
        .expect("gsm7"),
    };
    assert_eq!(Pdu::Deliver(e3).encode().expect("encodes").hex, E3);
    let e4 = Deliver {
        originator: Address::parse("+491701234567").expect("number"),
        dcs: Dcs::from_byte(0x08),
        timestamp: at("2024-03-15T14:30:09+00:00"),
        user_data: UserData::from_text(
            "Ende ✓",
            Encoding::Ucs2,
            Some(Concat {
                reference: 0x1234,
                total: 2,
                seq: 2,
                sixteen_bit: true,
            }),
        )
        .expect("ucs2"),
        ..deliver(E3)
    };
    assert_eq!(Pdu::Deliver(e4).encode().expect("encodes").hex, E4);
}

#[test]
fn a_multipart_deliver_re_decodes_to_the_text() {
    let text = format!("{} {}", "Grüße aus Köln, {ok}! ".repeat(12), "ende");
    let opts = DeliverOptions {
        reference: 7,
        ..DeliverOptions::default()
    };
    let parts = build_deliver(
        "+491701234567",
        &text,
        at("2024-03-15T14:30:05+02:00"),
        &opts,
    )
    .expect("ok");
    assert_eq!(parts.len(), 2);
    let decoded: Vec<Deliver> = parts.iter().map(|p| deliver(&p.hex)).collect();
    for (i, d) in decoded.iter().enumerate() {
        assert_eq!(d.originator.number, "+491701234567");
        assert_eq!(d.timestamp, at("2024-03-15T14:30:05+02:00"));
        let c = d.user_data.concat.expect("concat");
        assert_eq!((c.reference, c.total, c.seq), (7, 2, i as u8 + 1));
    }
    assert_eq!(join_parts(decoded.iter().map(|d| &d.user_data)), text);
}

#[test]
fn flash_and_class_messages() {
    let opts = DeliverOptions {
        class: Some(0),
        ..DeliverOptions::default()
    };
    let p = build_deliver("+4917", "Alarm", at("2024-01-01T00:00:00+00:00"), &opts).expect("ok");
    let d = deliver(&p[0].hex);
    assert_eq!((d.dcs.raw, d.dcs.class), (0x10, Some(0)));
    // Group F, class 1, 8-bit: F5.
    let mut hex = E5.to_string();
    hex.replace_range(24..26, "F5");
    let Pdu::Submit(s) = decode_hex(&hex).expect("decodes") else {
        panic!("not a SUBMIT");
    };
    assert_eq!(s.dcs.class, Some(1));
    assert_eq!(s.user_data.encoding, Encoding::EightBit);
    assert_eq!(s.user_data.data, vec![0xC8, 0x32, 0x9B, 0xFD, 0x06]);
    assert_eq!(s.user_data.text, "È2\u{9B}ý\u{6}");
}

#[test]
fn a_status_report_with_optional_parameters_round_trips() {
    let r = StatusReport {
        smsc: None,
        more_messages: true,
        loop_prevention: false,
        qualifier_command: false,
        message_reference: 42,
        recipient: Address::parse("+491701234567").expect("number"),
        timestamp: at("2024-03-15T14:30:05+02:00"),
        discharge: at("2024-03-15T14:31:00+02:00"),
        status: 0x46,
        pid: Some(0),
        dcs: Some(Dcs::from_byte(0)),
        user_data: Some(UserData::from_text("exp", Encoding::Gsm7, None).expect("gsm7")),
    };
    let enc = Pdu::StatusReport(r.clone()).encode().expect("encodes");
    assert_eq!(decode_hex(&enc.hex), Ok(Pdu::StatusReport(r.clone())));
    assert_eq!(r.delivery(), DeliveryStatus::Failed);
    assert_eq!(status_description(0x46), "SM validity period expired");
    // A junk tail after TP-ST is dropped, the report still decodes.
    let Pdu::StatusReport(j) = decode_hex(&format!("{E6}FF")).expect("decodes") else {
        panic!("not a report");
    };
    assert_eq!((j.status, j.pid), (0, None));
}

#[test]
fn status_classification_follows_the_st_ranges() {
    let t: [(u8, DeliveryStatus); 9] = [
        (0x00, DeliveryStatus::Delivered),
        (0x02, DeliveryStatus::Delivered),
        (0x1F, DeliveryStatus::Delivered),
        (0x20, DeliveryStatus::Pending),
        (0x3F, DeliveryStatus::Pending),
        (0x40, DeliveryStatus::Failed),
        (0x5F, DeliveryStatus::Failed),
        (0x60, DeliveryStatus::Failed),
        (0xFF, DeliveryStatus::Failed),
    ];
    for (st, want) in t {
        assert_eq!(DeliveryStatus::from_st(st), want, "ST {st:02X}");
    }
}

#[test]
fn errors_say_what_and_where() {
    let cases: [(String, &str); 8] = [
        (
            "07919471016700000404D04F1900084221109050".into(),
            "truncated at octet 15: expected 7 SCTS octets, 5 left",
        ),
        (
            "00310".into(),
            "odd number of hex digits (5): the last octet is incomplete",
        ),
        (
            "0031x0".into(),
            "invalid hex at position 4: 'x' is not a hex digit",
        ),
        ("   ".into(), "empty PDU: no hex digits"),
        (
            "00".into(),
            "truncated at octet 1: expected 1 TP-MTI/flags octet, 0 left",
        ),
        (
            "0003".into(),
            "invalid first octet at octet 1: TP-MTI 11 (first octet 03) is reserved",
        ),
        (
            E1[..E1.len() - 4].to_string(),
            "truncated at octet 27: expected 15 user data octets, 13 left",
        ),
        (
            "00040391".into(),
            "truncated at octet 4: expected 2 address value octets, 0 left",
        ),
    ];
    for (hex, want) in cases {
        assert_eq!(
            decode_hex(&hex).expect_err(&hex).to_string(),
            want,
            "input {hex}"
        );
    }
    // An invalid date names the field and the octet.
    let bad = E1.replace("42305141035080", "42135141035080");
    assert_eq!(
        decode_hex(&bad).expect_err("month 31").to_string(),
        "invalid SCTS at octet 19: no such date 2024-31-15"
    );
}

#[test]
fn it_rejects_a_udh_longer_than_the_user_data() {
    // E3 with UDHL 0x20.
    let bad = E3.replace("0F050003", "0F200003");
    let e = decode_hex(&bad).expect_err("udhl");
    assert_eq!(
        e.to_string(),
        "invalid UDHL at octet 27: a header of 33 octets does not fit in 14 octets of user data"
    );
}

#[test]
fn join_parts_repairs_a_surrogate_pair_split_across_parts() {
    let a = UserData {
        encoding: Encoding::Ucs2,
        udh: None,
        concat: None,
        data: vec![0x00, 0x41, 0xD8, 0x3D],
        text: ucs2::decode(&[0x00, 0x41, 0xD8, 0x3D]),
    };
    let b = UserData {
        data: vec![0xDE, 0x00],
        text: ucs2::decode(&[0xDE, 0x00]),
        ..a.clone()
    };
    assert_eq!(join_parts([&a, &b]), "A😀");
}

/// Text mixing the default alphabet, the extension table, non-GSM letters and emoji.
fn any_text() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "a", "Z", " ", "0", "@", "£", "ß", "Ä", "\n", "€", "[", "]", "{", "}", "~", "^", "|", "\\",
        "\u{0C}", "ж", "✓", "😀", "🇩🇪", "中", "é", "`",
    ]);
    prop::collection::vec(atoms, 0..400).prop_map(|v| v.concat())
}

fn gsm_only_text() -> impl Strategy<Value = String> {
    let atoms = prop::sample::select(vec![
        "a", "Z", " ", "0", "@", "£", "ß", "Ä", "\n", "€", "[", "]", "{", "}", "~", "^", "|", "\\",
    ]);
    prop::collection::vec(atoms, 0..400).prop_map(|v| v.concat())
}

fn any_number() -> impl Strategy<Value = String> {
    ("[+]?", "[0-9]{1,20}").prop_map(|(p, d)| format!("{p}{d}"))
}

fn round_trip(to: &str, text: &str, opts: &SubmitOptions) -> Result<(), TestCaseError> {
    let parts = build_submit(to, text, opts).expect("encodes");
    let mut got: Vec<Submit> = Vec::new();
    for p in &parts {
        let bytes = from_hex(&p.hex).expect("hex");
        prop_assert_eq!(
            bytes.len() - smsc_prefix_len(&bytes).expect("prefix"),
            p.tpdu_len
        );
        match decode_hex(&p.hex).expect("decodes") {
            Pdu::Submit(s) => got.push(s),
            other => prop_assert!(false, "not a submit: {other:?}"),
        }
    }
    for s in &got {
        prop_assert_eq!(&s.destination.number, &to.to_string());
        prop_assert!(s.user_data.udl() <= 160);
        prop_assert_eq!(s.status_report_request, opts.status_report);
        match s.user_data.encoding {
            Encoding::Gsm7 => prop_assert!(s.user_data.data.len() <= 160),
            _ => prop_assert!(s.user_data.data.len() <= 140),
        }
    }
    if got.len() > 1 {
        // Reassemble by concat sequence number, as the receive pipeline does.
        got.sort_by_key(|s| s.user_data.concat.map(|c| c.seq));
        for (i, s) in got.iter().enumerate() {
            let c = s.user_data.concat.expect("every part has concat");
            prop_assert_eq!(usize::from(c.total), parts.len());
            prop_assert_eq!(usize::from(c.seq), i + 1);
            prop_assert_eq!(c.sixteen_bit, opts.sixteen_bit_ref);
        }
    } else {
        prop_assert_eq!(got[0].user_data.concat, None);
    }
    prop_assert_eq!(
        join_parts(got.iter().map(|s| &s.user_data)),
        text.to_string()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn submit_round_trips_any_text(
        to in any_number(),
        text in any_text(),
        sixteen in any::<bool>(),
        report in any::<bool>(),
        reference in any::<u16>(),
    ) {
        let opts = SubmitOptions {
            sixteen_bit_ref: sixteen,
            status_report: report,
            reference,
            ..SubmitOptions::default()
        };
        round_trip(&to, &text, &opts)?;
    }

    #[test]
    fn submit_round_trips_arbitrary_unicode(
        to in any_number(),
        text in prop::collection::vec(any::<char>(), 0..300).prop_map(String::from_iter),
    ) {
        round_trip(&to, &text, &SubmitOptions::default())?;
    }

    #[test]
    fn gsm7_texts_stay_gsm7_and_round_trip(to in any_number(), text in gsm_only_text()) {
        let parts = submit_parts(&to, &text, &SubmitOptions::default()).expect("ok");
        prop_assert!(parts.iter().all(|p| p.user_data.encoding == Encoding::Gsm7));
        round_trip(&to, &text, &SubmitOptions::default())?;
    }

    #[test]
    fn deliver_round_trips_any_text(from in any_number(), text in any_text(), reference in any::<u8>()) {
        let opts = DeliverOptions { reference: u16::from(reference), ..DeliverOptions::default() };
        let t = at("2024-03-15T14:30:05+02:00");
        let parts = build_deliver(&from, &text, t, &opts).expect("encodes");
        let decoded: Vec<Deliver> = parts.iter().map(|p| deliver(&p.hex)).collect();
        for d in &decoded {
            prop_assert_eq!(&d.originator.number, &from);
            prop_assert_eq!(d.timestamp, t);
        }
        prop_assert_eq!(join_parts(decoded.iter().map(|d| &d.user_data)), text);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_re_encode_consistently(
        bytes in prop::collection::vec(any::<u8>(), 0..200)
    ) {
        if let Ok(pdu) = decode_bytes(&bytes) {
            // Whatever decodes and can be encoded again must decode to the same fields.
            if let Ok(enc) = pdu.encode() {
                prop_assert_eq!(decode_hex(&enc.hex), Ok(pdu));
            }
        }
    }

    #[test]
    fn mutated_examples_never_panic(
        which in 0usize..7,
        pos in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let hex = [E1, E2, E3, E4, E5, E6, E6B][which];
        let mut bytes = from_hex(hex).expect("hex");
        let i = pos.index(bytes.len());
        bytes[i] = byte;
        bytes.truncate(cut.index(bytes.len() + 1));
        if let Ok(pdu) = decode_bytes(&bytes) {
            if let Ok(enc) = pdu.encode() {
                prop_assert_eq!(decode_hex(&enc.hex), Ok(pdu));
            }
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(s in "\\PC{0,80}", h in "[0-9a-fA-F ]{0,120}") {
        let _ = decode_hex(&s);
        let _ = decode_hex(&h);
    }
}
