//! Type evidence: what the sampled values of a field look like, so the analyst sees why a type was inferred and
//! what text values could become (numbers written as text, dates in several formats).

use serde_json::Value;

/// Counts of value kinds among a field's samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evidence {
    pub total: usize,
    pub empty: usize,
    pub integers: usize,
    pub decimals: usize,
    pub booleans: usize,
    pub texts: usize,
    /// Texts that read as numbers ("10,000", "$1,000.50", "1e3").
    pub numeric_texts: usize,
    /// Texts that read as dates or date-times in a known format.
    pub date_texts: usize,
    pub objects: usize,
}

impl Evidence {
    pub fn of<'a>(values: impl IntoIterator<Item = Option<&'a Value>>) -> Evidence {
        let mut e = Evidence::default();
        for value in values {
            e.total += 1;
            match value {
                None | Some(Value::Null) => e.empty += 1,
                Some(Value::Bool(_)) => e.booleans += 1,
                Some(Value::Number(n)) if n.is_i64() || n.is_u64() => e.integers += 1,
                Some(Value::Number(_)) => e.decimals += 1,
                Some(Value::String(s)) => {
                    e.texts += 1;
                    if looks_numeric(s) {
                        e.numeric_texts += 1;
                    } else if looks_like_date(s) {
                        e.date_texts += 1;
                    }
                }
                Some(Value::Array(_) | Value::Object(_)) => e.objects += 1,
            }
        }
        e
    }

    /// One line for the editor: "240 sampled: 200 whole numbers, 40 decimals; 12 empty".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        let mut add = |n: usize, what: &str| {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        };
        add(self.integers, "whole numbers");
        add(self.decimals, "decimals");
        add(self.booleans, "true/false");
        add(self.texts - self.numeric_texts - self.date_texts, "texts");
        add(self.numeric_texts, "numbers written as text");
        add(self.date_texts, "dates written as text");
        add(self.objects, "objects/lists");
        let kinds = if parts.is_empty() {
            "no values".to_owned()
        } else {
            parts.join(", ")
        };
        let empty = if self.empty > 0 {
            format!("; {} empty", self.empty)
        } else {
            String::new()
        };
        format!("{} sampled: {kinds}{empty}", self.total)
    }
}

/// Text the numbers layer reads as a number (separators, currency, decimals, exponents; not codes like "007").
fn looks_numeric(text: &str) -> bool {
    crate::values::numbers::reads_as_number(text)
}

/// Text the date-time layer reads as a date or a date-time.
fn looks_like_date(text: &str) -> bool {
    super::reads_as_datetime(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_kinds_including_numbers_and_dates_written_as_text() {
        let values = [
            json!(1),
            json!(2.5),
            json!("10,000"),
            json!("$1,000.50"),
            json!("2026-11-22T10:00:00.000Z"),
            json!("22.11.2026"),
            json!("Nov 22, 2026"),
            json!("hello"),
            Value::Null,
        ];
        let e = Evidence::of(values.iter().map(Some).chain([None]));
        assert_eq!(
            (
                e.total,
                e.integers,
                e.decimals,
                e.numeric_texts,
                e.date_texts,
                e.empty
            ),
            (10, 1, 1, 2, 3, 2)
        );
        assert_eq!(
            e.describe(),
            "10 sampled: 1 whole numbers, 1 decimals, 1 texts, 2 numbers written as text, 3 dates written as text; 2 empty"
        );
    }

    #[test]
    fn ordinary_words_are_not_numbers_or_dates() {
        for text in ["abc", "", "-", "1-2-3-4", "N/A", "e"] {
            assert!(!looks_numeric(text), "{text}");
        }
        assert!(!looks_like_date("May"));
    }
}
