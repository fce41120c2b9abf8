//! Layer 3: numbers written as text. `"10,000"` → 10000, `"-1,000.50"` → -1000.50, `"$12"` → 12, `"1.5e3"` → 1500,
//! and with a decimal comma (configured per field) `"1.000,50"` / `"1 000,50"` → 1000.50. The result is an exact
//! decimal (no binary floating point): the digits are kept as written, only the separators go.

use serde_json::Number;

const CURRENCY: [char; 6] = ['$', '€', '£', '¥', '₹', '₩'];
/// Exponents beyond this are not taken for numbers (they would spell thousands of digits).
const MAX_EXPONENT: i64 = 400;

/// The exact number `text` writes; None when it is not a number in an accepted spelling.
pub fn parse_number(text: &str, decimal_comma: bool) -> Option<Number> {
    let canonical = canonical_decimal(text, decimal_comma)?;
    serde_json::from_str(&canonical).ok()
}

/// Whether sampled text is a number written as text that type inference may take for a number: separators, a
/// decimal point, a currency sign or an exponent — but no leading zero (`"007"` is a code) and not bare digits
/// (`"42"` in quotes is usually an identifier).
pub fn reads_as_number(text: &str) -> bool {
    let t = text.trim();
    let digits = t
        .trim_start_matches(['-', '+'])
        .trim_start_matches(CURRENCY);
    let leading_zero =
        digits.starts_with('0') && digits[1..].starts_with(|c: char| c.is_ascii_digit());
    let bare_digits = t.chars().all(|c| c.is_ascii_digit());
    !leading_zero && !bare_digits && !t.is_empty() && parse_number(t, false).is_some()
}

fn canonical_decimal(text: &str, decimal_comma: bool) -> Option<String> {
    let mut t = text.trim();
    let mut negative = false;
    if let Some(rest) = t.strip_prefix('-') {
        negative = true;
        t = rest.trim_start();
    } else if let Some(rest) = t.strip_prefix('+') {
        t = rest.trim_start();
    }
    t = t.trim_start_matches(CURRENCY).trim_start();
    if !negative {
        if let Some(rest) = t.strip_prefix('-') {
            negative = true;
            t = rest;
        }
    }
    t = t.trim_end_matches(CURRENCY).trim_end();
    let (mantissa, exponent) = split_exponent(t)?;
    let (point, groups): (char, &[char]) = if decimal_comma {
        (',', &['.', ' ', '\u{a0}', '\u{202f}', '\''])
    } else {
        ('.', &[','])
    };
    let (whole, fraction) = match mantissa.split_once(point) {
        Some((w, f)) => (w, Some(f)),
        None => (mantissa, None),
    };
    if whole.is_empty() && fraction.is_none() {
        return None;
    }
    let whole = ungroup(whole, groups)?;
    if let Some(f) = fraction {
        if f.is_empty() || !f.chars().all(|c| c.is_ascii_digit()) {
            return None;
        }
    }
    if exponent != 0
        && whole.len()
            != mantissa
                .split_once(point)
                .map_or(mantissa.len(), |(w, _)| w.len())
    {
        // Grouped digits with an exponent: not a way anyone writes numbers.
        return None;
    }
    Some(spell(negative, &whole, fraction.unwrap_or(""), exponent))
}

/// The mantissa and the exponent of `1.5e3`; exponent 0 when there is none.
fn split_exponent(t: &str) -> Option<(&str, i64)> {
    match t.find(['e', 'E']) {
        None => Some((t, 0)),
        Some(i) => {
            let exponent: i64 = t[i + 1..].parse().ok()?;
            if exponent.abs() > MAX_EXPONENT {
                return None;
            }
            Some((&t[..i], exponent))
        }
    }
}

/// The digits of the whole part with its group separators checked (groups of three after the first) and removed.
fn ungroup(whole: &str, separators: &[char]) -> Option<String> {
    if whole.is_empty() {
        return Some("0".into());
    }
    let parts: Vec<&str> = whole.split(|c| separators.contains(&c)).collect();
    let well_grouped = parts.len() == 1
        || (!parts[0].is_empty() && parts[0].len() <= 3 && parts[1..].iter().all(|p| p.len() == 3));
    let digits = parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()));
    (well_grouped && digits && parts.iter().any(|p| !p.is_empty())).then(|| parts.concat())
}

/// `-digits.fraction × 10^exponent` as a plain decimal, the written fraction digits kept (1,000.50 → 1000.50).
fn spell(negative: bool, whole: &str, fraction: &str, exponent: i64) -> String {
    let mut digits = format!("{whole}{fraction}");
    let mut point = whole.len() as i64 + exponent;
    if point <= 0 {
        digits = format!("{}{digits}", "0".repeat((1 - point) as usize));
        point = 1;
    }
    if point as usize > digits.len() {
        digits.push_str(&"0".repeat(point as usize - digits.len()));
    }
    let (int, frac) = digits.split_at(point as usize);
    let int = int.trim_start_matches('0');
    let int = if int.is_empty() { "0" } else { int };
    let sign = if negative && (int != "0" || frac.chars().any(|c| c != '0')) {
        "-"
    } else {
        ""
    };
    if frac.is_empty() {
        format!("{sign}{int}")
    } else {
        format!("{sign}{int}.{frac}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Option<String> {
        parse_number(text, false).map(|n| n.to_string())
    }

    #[test]
    fn separators_and_currency_go_digits_stay() {
        assert_eq!(n("10,000").as_deref(), Some("10000"));
        assert_eq!(n("1,000.50").as_deref(), Some("1000.50"));
        assert_eq!(n("-$1,234,567.00").as_deref(), Some("-1234567.00"));
        assert_eq!(n("$-12").as_deref(), Some("-12"));
        assert_eq!(n(" 12.5 € ").as_deref(), Some("12.5"));
        assert_eq!(n("007").as_deref(), Some("7"));
        assert_eq!(n(".5").as_deref(), Some("0.5"));
    }

    #[test]
    fn scientific_notation_becomes_a_plain_decimal() {
        assert_eq!(n("1.5e3").as_deref(), Some("1500"));
        assert_eq!(n("2.5E-3").as_deref(), Some("0.0025"));
        assert_eq!(n("-1e2").as_deref(), Some("-100"));
        assert_eq!(n("1e999"), None);
    }

    #[test]
    fn decimal_commas_when_configured() {
        let dc = |t: &str| parse_number(t, true).map(|n| n.to_string());
        assert_eq!(dc("1.000,50").as_deref(), Some("1000.50"));
        assert_eq!(dc("1 000 000,5").as_deref(), Some("1000000.5"));
        assert_eq!(dc("12,75 €").as_deref(), Some("12.75"));
        assert_eq!(
            n("12,75"),
            None,
            "without the setting, 12,75 is not a number"
        );
    }

    #[test]
    fn malformed_text_is_not_a_number() {
        for text in [
            "", "-", "abc", "1,2,3", "1,0000", "1.2.3", "12a", "N/A", "1,000e3", "$", "1.",
        ] {
            assert_eq!(n(text), None, "{text}");
        }
    }

    #[test]
    fn inference_takes_formatted_numbers_only() {
        for text in ["10,000", "$12", "1.5", "-3.25", "1e3"] {
            assert!(reads_as_number(text), "{text}");
        }
        for text in ["42", "007", "000123", "abc", "P-100", ""] {
            assert!(!reads_as_number(text), "{text}");
        }
    }
}
