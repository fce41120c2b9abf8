//! DELTA: which rows of a page go on to the target. Equal DATA_HASHes are skipped by the sink's set-based merge;
//! here a page is cleared of repeated business keys (the last occurrence wins, as the source's latest word).

use std::collections::HashMap;

/// Keeps the last row of each key; returns the kept rows in page order and how many were dropped.
pub fn dedupe_by_key<T>(rows: Vec<T>, key: impl Fn(&T) -> &str) -> (Vec<T>, usize) {
    let mut last: HashMap<String, usize> = HashMap::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        last.insert(key(row).to_owned(), i);
    }
    let before = rows.len();
    let kept: Vec<T> = rows
        .into_iter()
        .enumerate()
        .filter(|(i, r)| last.get(key(r)) == Some(i))
        .map(|(_, r)| r)
        .collect();
    let dropped = before - kept.len();
    (kept, dropped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_occurrence_wins() {
        let rows = vec![("a", 1), ("b", 2), ("a", 3)];
        let (kept, dropped) = dedupe_by_key(rows, |r| r.0);
        assert_eq!(kept, vec![("b", 2), ("a", 3)]);
        assert_eq!(dropped, 1);
    }
}
