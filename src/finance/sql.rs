//! Placeholder lists for the ledger's multi-row statements (sqlx binds by position).

/// `$first, $first+1, …` — `n` placeholders for an `IN (…)` list.
pub(super) fn list(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, …, $fields), (…)` — `rows` tuples of `fields` placeholders for `VALUES`.
pub(super) fn rows(rows: usize, fields: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", list(r * fields + 1, fields)))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_count_from_where_they_start() {
        assert_eq!(super::list(2, 3), "$2, $3, $4");
        assert_eq!(super::rows(2, 2), "($1, $2), ($3, $4)");
    }
}
