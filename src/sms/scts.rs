//! Time stamps (TP-SCTS, TP-DT, absolute TP-VP; 23.040 §9.2.3.11) and the validity period
//! (TP-VP, §9.2.3.12).
//!
//! Seven octets `YY MM DD hh mm ss TZ`, each nibble-swapped BCD. TZ counts quarter hours; bit 3
//! of the octet as sent (0x08, the high bit of the tens digit once swapped) is the sign:
//! +2 h = 8 quarters → `80`, −3 h = 12 quarters → `21` | sign → `29`.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Offset, TimeZone, Timelike};

/// One swapped BCD octet → its value, `None` if a nibble is not a decimal digit.
fn bcd(o: u8) -> Option<u32> {
    let (lo, hi) = (o & 0x0F, o >> 4);
    (lo <= 9 && hi <= 9).then(|| u32::from(lo) * 10 + u32::from(hi))
}

fn to_bcd(v: u32) -> u8 {
    (((v % 10) << 4) | ((v / 10) % 10)) as u8
}

/// Seven SCTS octets → date-time with the sender's offset. `Err` says which part is wrong.
///
/// The year has two digits and 23.040 names no century; we read 00–99 as 2000–2099 as every
/// phone does.
pub fn decode(o: &[u8; 7]) -> Result<DateTime<FixedOffset>, String> {
    let names = ["year", "month", "day", "hour", "minute", "second"];
    let mut v = [0u32; 6];
    for (i, name) in names.iter().enumerate() {
        v[i] = bcd(o[i]).ok_or_else(|| format!("{name} octet {:02X} is not BCD", o[i]))?;
    }
    let tz = o[6];
    let quarters = bcd(tz & 0xF7).ok_or_else(|| format!("time-zone octet {tz:02X} is not BCD"))?;
    let seconds = quarters as i32 * 15 * 60;
    let offset = if tz & 0x08 != 0 {
        FixedOffset::west_opt(seconds)
    } else {
        FixedOffset::east_opt(seconds)
    }
    .ok_or_else(|| format!("time zone of {quarters} quarter hours is out of range"))?;
    let date = NaiveDate::from_ymd_opt(2000 + v[0] as i32, v[1], v[2])
        .ok_or_else(|| format!("no such date 20{:02}-{:02}-{:02}", v[0], v[1], v[2]))?;
    let time = date
        .and_hms_opt(v[3], v[4], v[5])
        .ok_or_else(|| format!("no such time {:02}:{:02}:{:02}", v[3], v[4], v[5]))?;
    offset
        .from_local_datetime(&time)
        .single()
        .ok_or_else(|| "ambiguous local time".to_string())
}

/// Date-time → seven SCTS octets. `Err` if it cannot be represented (year outside 2000–2099,
/// an offset that is not a whole number of quarter hours or beyond ±79 quarters).
pub fn encode(t: &DateTime<FixedOffset>) -> Result<[u8; 7], String> {
    let year = t.year();
    if !(2000..=2099).contains(&year) {
        return Err(format!("year {year} is outside 2000–2099"));
    }
    let off = t.offset().fix().local_minus_utc();
    if off % (15 * 60) != 0 {
        return Err(format!(
            "offset of {off} s is not a whole number of quarter hours"
        ));
    }
    let quarters = (off / (15 * 60)).unsigned_abs();
    if quarters > 79 {
        return Err(format!("offset of {quarters} quarter hours does not fit"));
    }
    let mut tz = to_bcd(quarters);
    if off < 0 {
        tz |= 0x08;
    }
    Ok([
        to_bcd((year - 2000) as u32),
        to_bcd(t.month()),
        to_bcd(t.day()),
        to_bcd(t.hour()),
        to_bcd(t.minute()),
        to_bcd(t.second()),
        tz,
    ])
}

/// TP-VP of an SMS-SUBMIT: how long the SMSC keeps trying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValidityPeriod {
    /// Relative format (TP-VPF 10): one octet, see [`ValidityPeriod::relative_minutes`].
    Relative(u8),
    /// Absolute format (TP-VPF 11): an SCTS-style time stamp.
    Absolute(DateTime<FixedOffset>),
    /// Enhanced format (TP-VPF 01): seven octets, kept raw.
    Enhanced([u8; 7]),
}

impl ValidityPeriod {
    /// The relative code for at least `minutes` (rounded up to the next step the format can
    /// express, 23.040 §9.2.3.12.1): 5-minute steps up to 12 h, 30-minute steps up to 24 h,
    /// days up to 30 d, weeks up to 63 weeks. `None` above 63 weeks or for 0.
    ///
    /// `24h` → `A7`, `4d` → `AA`.
    pub fn relative_from_minutes(minutes: u64) -> Option<ValidityPeriod> {
        const DAY: u64 = 24 * 60;
        let code = match minutes {
            0 => return None,
            1..=720 => minutes.div_ceil(5) - 1,
            721..=1440 => 143 + (minutes - 720).div_ceil(30),
            1441..=43_200 => 166 + minutes.div_ceil(DAY),
            _ => {
                let weeks = minutes.div_ceil(7 * DAY).max(5);
                if weeks > 63 {
                    return None;
                }
                192 + weeks
            }
        };
        Some(ValidityPeriod::Relative(code as u8))
    }

    /// Minutes a relative code stands for: 0–143 → (v+1)·5 min, 144–167 → 12 h + (v−143)·30 min,
    /// 168–196 → (v−166) days, 197–255 → (v−192) weeks. `None` for the other formats.
    pub fn relative_minutes(&self) -> Option<u64> {
        let ValidityPeriod::Relative(v) = *self else {
            return None;
        };
        let v = u64::from(v);
        Some(match v {
            0..=143 => (v + 1) * 5,
            144..=167 => 720 + (v - 143) * 30,
            168..=196 => (v - 166) * 24 * 60,
            _ => (v - 192) * 7 * 24 * 60,
        })
    }

    /// The TP-VPF bits (4–3 of the first octet) for this format.
    pub(crate) fn vpf_bits(&self) -> u8 {
        match self {
            ValidityPeriod::Relative(_) => 0x10,
            ValidityPeriod::Enhanced(_) => 0x08,
            ValidityPeriod::Absolute(_) => 0x18,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<FixedOffset> {
        DateTime::parse_from_rfc3339(s).expect("rfc3339")
    }

    #[test]
    fn it_decodes_positive_and_negative_offsets() {
        // MF667.md §4 E1: 2024-03-15 14:30:05 +02:00.
        let t = decode(&[0x42, 0x30, 0x51, 0x41, 0x03, 0x50, 0x80]).expect("valid");
        assert_eq!(t, at("2024-03-15T14:30:05+02:00"));
        assert_eq!(t.offset().local_minus_utc(), 7200);
        // E2: 2024-12-01 09:05:00 −03:00 (`29` = 12 quarters with the sign).
        let t = decode(&[0x42, 0x21, 0x10, 0x90, 0x50, 0x00, 0x29]).expect("valid");
        assert_eq!(t.to_rfc3339(), "2024-12-01T09:05:00-03:00");
        // +1 h → 40.
        let t = decode(&[0x11, 0x70, 0x13, 0x90, 0x85, 0x22, 0x40]).expect("valid");
        assert_eq!(t.to_rfc3339(), "2011-07-31T09:58:22+01:00");
    }

    #[test]
    fn it_encodes_what_it_decodes() {
        for s in [
            "2024-03-15T14:30:05+02:00",
            "2024-12-01T09:05:00-03:00",
            "2099-12-31T23:59:59+05:45",
            "2000-01-01T00:00:00+00:00",
            "2024-06-30T12:00:00-09:30",
        ] {
            let o = encode(&at(s)).expect("encodable");
            assert_eq!(decode(&o).expect("decodes"), at(s), "{s}");
        }
        assert_eq!(
            encode(&at("2024-12-01T09:05:00-03:00")).expect("enc"),
            [0x42, 0x21, 0x10, 0x90, 0x50, 0x00, 0x29]
        );
    }

    #[test]
    fn it_rejects_impossible_stamps() {
        assert!(decode(&[0x42, 0x31, 0x51, 0x41, 0x03, 0x50, 0x80])
            .expect_err("month 13")
            .contains("no such date"));
        assert!(decode(&[0x4A, 0x30, 0x51, 0x41, 0x03, 0x50, 0x80])
            .expect_err("nibble A")
            .contains("year octet 4A"));
        assert!(decode(&[0x42, 0x30, 0x51, 0x41, 0x03, 0x50, 0xF0]).is_err());
        assert!(encode(&at("1999-12-31T00:00:00+00:00")).is_err());
        assert!(encode(&at("2024-01-01T00:00:00+00:10")).is_err());
    }

    #[test]
    fn it_maps_relative_validity_both_ways() {
        let table: [(u64, u8, u64); 9] = [
            (1, 0x00, 5),
            (5, 0x00, 5),
            (6, 0x01, 10),
            (720, 143, 720),
            (721, 144, 750),
            (24 * 60, 0xA7, 1440),
            (4 * 24 * 60, 0xAA, 5760),
            (31 * 24 * 60, 197, 5 * 7 * 24 * 60),
            (63 * 7 * 24 * 60, 255, 63 * 7 * 24 * 60),
        ];
        for (minutes, code, back) in table {
            let vp = ValidityPeriod::relative_from_minutes(minutes).expect("fits");
            assert_eq!(vp, ValidityPeriod::Relative(code), "{minutes} min");
            assert_eq!(vp.relative_minutes(), Some(back), "{minutes} min");
        }
        assert_eq!(ValidityPeriod::relative_from_minutes(0), None);
        assert_eq!(
            ValidityPeriod::relative_from_minutes(64 * 7 * 24 * 60),
            None
        );
    }

    #[test]
    fn relative_codes_never_round_down() {
        for code in 0..=255u8 {
            let m = ValidityPeriod::Relative(code)
                .relative_minutes()
                .expect("relative");
            assert_eq!(
                ValidityPeriod::relative_from_minutes(m),
                Some(ValidityPeriod::Relative(code)),
                "code {code}"
            );
        }
    }
}
