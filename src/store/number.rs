//! Comparing phone numbers written differently.
//!
//! The same recipient shows up as `+4917612345678` (what the user typed), `004917…`
//! (international prefix), `017612345678` (national, trunk prefix 0) or
//! `4917612345678` (TOA 0x91 printed without the plus by some tools), and a
//! status report carries whatever the SMSC chose. Without knowing the home country
//! we cannot turn a national number into an international one, so two numbers match
//! when they are equal after normalisation, or when one is international and ends
//! with the other's national significant number (the part after the trunk 0),
//! leaving a 1–3 digit country code. Short numbers (under 6 significant digits,
//! i.e. short codes) and alphanumeric senders only match exactly.

/// A number reduced to what identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Number {
    /// `+CC…` or `00CC…`: the digits after the prefix.
    International(String),
    /// `0…`: the national significant number (after the trunk 0).
    National(String),
    /// Digits without a prefix: could be either (or a short code).
    Digits(String),
    /// Anything else (alphanumeric sender): lower-cased, spaces removed.
    Other(String),
}

/// Shortest national significant number we suffix-match; anything shorter is a
/// short code and must match exactly.
const MIN_SIGNIFICANT: usize = 6;

fn parse(raw: &str) -> Number {
    let s: String = raw
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '(' | ')' | '.' | '/'))
        .collect();
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = s.strip_prefix('+') {
        if all_digits(rest) {
            return Number::International(rest.to_owned());
        }
    } else if let Some(rest) = s.strip_prefix("00") {
        if all_digits(rest) {
            return Number::International(rest.to_owned());
        }
    } else if let Some(rest) = s.strip_prefix('0') {
        if all_digits(rest) {
            return Number::National(rest.to_owned());
        }
    } else if all_digits(&s) {
        return Number::Digits(s);
    }
    Number::Other(s.to_lowercase())
}

/// `intl` (country code + national significant number) ends with `national`,
/// leaving a plausible country code.
fn ends_with_national(intl: &str, national: &str) -> bool {
    national.len() >= MIN_SIGNIFICANT
        && intl.len() > national.len()
        && intl.len() - national.len() <= 3
        && intl.ends_with(national)
}

/// True when `a` and `b` are the same phone number written differently
/// (see the module docs for the rules).
pub fn numbers_match(a: &str, b: &str) -> bool {
    use Number::*;
    match (parse(a), parse(b)) {
        (International(x), International(y)) => x == y,
        (National(x), National(y)) => x == y,
        (Digits(x), Digits(y)) => x == y,
        (Other(x), Other(y)) => x == y,
        (International(i), National(n)) | (National(n), International(i)) => {
            ends_with_national(&i, &n)
        }
        // Bare digits: an international number without its plus, or a national
        // significant number without its trunk 0.
        (International(i), Digits(d)) | (Digits(d), International(i)) => {
            i == d || ends_with_national(&i, &d)
        }
        (National(n), Digits(d)) | (Digits(d), National(n)) => {
            n == d || (d.len() > n.len() && ends_with_national(&d, &n))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_number_in_different_formats_matches() {
        let forms = [
            "+4917612345678",
            "004917612345678",
            "017612345678",
            "4917612345678",
            "+49 176 1234-5678",
            "(0176) 12345678",
        ];
        for a in forms {
            for b in forms {
                assert!(numbers_match(a, b), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn different_numbers_do_not_match() {
        let pairs = [
            ("+4917612345678", "+4917612345679"),
            ("+4917612345678", "+4317612345678"),
            // Same national number in another country is a different number…
            ("+4917612345678", "+12317612345678"),
            // …and a country code longer than 3 digits is not a country code.
            ("+99991761234567", "01761234567"),
            ("017612345678", "017612345679"),
            ("+4917612345678", "Vodafone"),
            ("+4917612345678", ""),
        ];
        for (a, b) in pairs {
            assert!(!numbers_match(a, b), "{a} vs {b}");
            assert!(!numbers_match(b, a), "{b} vs {a}");
        }
    }

    #[test]
    fn short_codes_only_match_exactly() {
        assert!(numbers_match("22222", "22222"));
        // A short code must not match the tail of a long number.
        assert!(!numbers_match("+4912322222", "022222"));
        assert!(!numbers_match("+4912322222", "22222"));
    }

    #[test]
    fn alphanumeric_senders_match_case_insensitively() {
        assert!(numbers_match("Vodafone", "VODAFONE"));
        assert!(numbers_match("O2 Info", "o2info"));
        assert!(!numbers_match("Vodafone", "Telekom"));
    }

    #[test]
    fn e6_status_report_recipient_matches_the_number_we_sent_to() {
        // MF667.md E6: RA +447917267410 (TOA 91); users type it either way.
        assert!(numbers_match("+447917267410", "07917267410"));
        assert!(numbers_match("447917267410", "+447917267410"));
        // Second example: RA 0829200000 with TOA A1 (national).
        assert!(numbers_match("0829200000", "+27829200000"));
    }
}
