//! Layer 2: text rules, applied only where the analyst asked for them (per field, in order): trimming, Unicode NFC,
//! control characters removed, line endings normalised, upper or lower case. Text without rules is kept byte for
//! byte.

use crate::config::TextRule;
use unicode_normalization::UnicodeNormalization;

/// `text` after the rules, in order.
pub fn apply(text: &str, rules: &[TextRule]) -> String {
    let mut out = text.to_owned();
    for rule in rules {
        out = match rule {
            TextRule::Trim => out.trim().to_owned(),
            TextRule::Nfc => out.nfc().collect(),
            TextRule::StripControl => out
                .chars()
                .filter(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
                .collect(),
            TextRule::Newlines => out.replace("\r\n", "\n").replace('\r', "\n"),
            TextRule::Uppercase => out.to_uppercase(),
            TextRule::Lowercase => out.to_lowercase(),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_apply_in_order_and_only_when_asked() {
        let messy = "  Cafe\u{301}\u{7}\r\nline\rend  ";
        assert_eq!(apply(messy, &[]), messy, "no rules: byte for byte");
        assert_eq!(
            apply(
                messy,
                &[
                    TextRule::Trim,
                    TextRule::Nfc,
                    TextRule::StripControl,
                    TextRule::Newlines
                ]
            ),
            "Café\nline\nend"
        );
        assert_eq!(apply("ab", &[TextRule::Uppercase]), "AB");
        assert_eq!(apply("ÄB", &[TextRule::Lowercase]), "äb");
    }
}
