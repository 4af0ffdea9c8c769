//! Multi-row statements: placeholder lists (sqlx binds by position) and the values bound to them.

/// `$first, $first+1, …` — `n` placeholders for an `IN (…)` list.
pub fn list(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `($1, …, $fields), (…)` — `rows` tuples of `fields` placeholders for `VALUES`.
pub fn rows(rows: usize, fields: usize) -> String {
    rows_at(1, rows, fields)
}

/// As [`rows`], the placeholders numbered from `first`.
pub fn rows_at(first: usize, rows: usize, fields: usize) -> String {
    (0..rows)
        .map(|r| format!("({})", list(first + r * fields, fields)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value bound to a statement built at run time (rows of mixed columns).
#[derive(Debug, Clone)]
pub enum Arg {
    Text(String),
    Int(i64),
    OptText(Option<String>),
    OptInt(Option<i64>),
}

/// Binds `args` in order.
pub fn bind_all<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    args: Vec<Arg>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for arg in args {
        query = match arg {
            Arg::Text(v) => query.bind(v),
            Arg::Int(v) => query.bind(v),
            Arg::OptText(v) => query.bind(v),
            Arg::OptInt(v) => query.bind(v),
        };
    }
    query
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_count_from_where_they_start() {
        assert_eq!(super::list(2, 3), "$2, $3, $4");
        assert_eq!(super::rows(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(super::rows_at(11, 2, 2), "($11, $12), ($13, $14)");
    }
}
