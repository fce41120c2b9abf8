//! DELTA: which rows of a page go on to the target. Equal DATA_HASHes are skipped by the sink's set-based merge;
//! here a page is cleared of repeated business keys (the last occurrence wins, as the source's latest word).

use std::collections::HashMap;

/// Keeps the last row of each key; returns the kept rows in page order and how many were dropped.
pub fn dedupe_by_key<T>(rows: Vec<T>, key: impl Fn(&T) -> &str) -> (Vec<T>, usize) {
    let before = rows.len();
    // Keys are hashes already: a fast hasher, and borrowed rather than copied (this runs for every record).
    let mut last: HashMap<&str, usize, xxhash_rust::xxh3::Xxh3DefaultBuilder> =
        HashMap::with_capacity_and_hasher(before, Default::default());
    for (i, row) in rows.iter().enumerate() {
        last.insert(key(row), i);
    }
    if last.len() == before {
        return (rows, 0);
    }
    let mut keep = vec![false; before];
    for &i in last.values() {
        keep[i] = true;
    }
    let kept: Vec<T> = rows
        .into_iter()
        .zip(keep)
        .filter_map(|(row, keep)| keep.then_some(row))
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
