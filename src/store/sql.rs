//! Multi-row statements: placeholder lists (sqlx binds by position), the values bound to them,
//! and the statement itself in the form each database binds quickly.

use super::Dialect;

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
    Bytes(Vec<u8>),
}

/// `WHERE` text matching rows by groups, `(outer = $a AND inner IN ($b, …)) OR …`, numbered from
/// `$1`, with its values: one condition per outer value (a tenant), so each group's list is
/// looked up by the index on (outer, inner).
pub fn grouped_in<'a, I>(
    groups: impl IntoIterator<Item = (&'a String, I)>,
    outer: &str,
    inner: &str,
) -> (String, Vec<Arg>)
where
    I: IntoIterator<Item = &'a String>,
    I::IntoIter: ExactSizeIterator,
{
    let mut args = Vec::new();
    let mut wheres = Vec::new();
    for (key, names) in groups {
        let names = names.into_iter();
        wheres.push(format!(
            "({outer} = ${} AND {inner} IN ({}))",
            args.len() + 1,
            list(args.len() + 2, names.len())
        ));
        args.push(Arg::Text(key.clone()));
        args.extend(names.map(|s| Arg::Text(s.clone())));
    }
    (wheres.join(" OR "), args)
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
            Arg::Bytes(v) => query.bind(v),
        };
    }
    query
}

/// The statement `sql` (placeholders `$1…`) with `args` bound, in the form `dialect` binds
/// quickly: SQLite finds a numbered parameter's name by a linear search, so binding thousands
/// of `$N` takes time quadratic in their number; there the placeholders become anonymous `?`
/// in the order of the text, the values reordered (and repeated) to match.
pub fn statement(
    dialect: Dialect,
    sql: &str,
    args: Vec<Arg>,
) -> sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments> {
    match dialect {
        Dialect::Postgres => bind_all(sqlx::query(sqlx::AssertSqlSafe(sql.to_owned())), args),
        Dialect::Sqlite => {
            let (sql, args) = anonymous(sql, &args);
            bind_all(sqlx::query(sqlx::AssertSqlSafe(sql)), args)
        }
    }
}

/// The dialect of a connection.
pub fn dialect_of(conn: &sqlx::AnyConnection) -> Dialect {
    match conn.backend_name() {
        "SQLite" => Dialect::Sqlite,
        _ => Dialect::Postgres,
    }
}

/// `sql` with each `$N` (naming one of `args`) as `?`, and the values in the text's order.
fn anonymous(sql: &str, args: &[Arg]) -> (String, Vec<Arg>) {
    let mut text = String::with_capacity(sql.len());
    let mut ordered = Vec::with_capacity(args.len());
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        text.push_str(&rest[..at]);
        let tail = &rest[at + 1..];
        let digits = tail.bytes().take_while(u8::is_ascii_digit).count();
        let named = tail[..digits]
            .parse::<usize>()
            .ok()
            .and_then(|n| n.checked_sub(1))
            .and_then(|i| args.get(i));
        match named {
            Some(arg) => {
                text.push('?');
                ordered.push(arg.clone());
            }
            None => text.push_str(&rest[at..=at + digits]),
        }
        rest = &tail[digits..];
    }
    text.push_str(rest);
    (text, ordered)
}

#[cfg(test)]
mod tests {
    #[test]
    fn placeholders_count_from_where_they_start() {
        assert_eq!(super::list(2, 3), "$2, $3, $4");
        assert_eq!(super::rows(2, 2), "($1, $2), ($3, $4)");
        assert_eq!(super::rows_at(11, 2, 2), "($11, $12), ($13, $14)");
    }

    #[test]
    fn groups_number_their_values_in_order() {
        let groups = std::collections::BTreeMap::from([
            ("t1".to_owned(), vec!["a".to_owned(), "b".to_owned()]),
            ("t2".to_owned(), vec!["c".to_owned()]),
        ]);
        let (sql, args) = super::grouped_in(&groups, "tenant_id", "sku");
        assert_eq!(
            sql,
            "(tenant_id = $1 AND sku IN ($2, $3)) OR (tenant_id = $4 AND sku IN ($5))"
        );
        let shown: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
        assert_eq!(
            shown,
            [
                r#"Text("t1")"#,
                r#"Text("a")"#,
                r#"Text("b")"#,
                r#"Text("t2")"#,
                r#"Text("c")"#
            ]
        );
    }

    #[test]
    fn sqlite_placeholders_follow_the_text() {
        use super::Arg::{Int, Text};
        let (sql, args) = super::anonymous(
            "UPDATE t SET a = $2 WHERE b = $1 AND c = $2 AND d = '$x'",
            &[Int(1), Text("two".into())],
        );
        assert_eq!(sql, "UPDATE t SET a = ? WHERE b = ? AND c = ? AND d = '$x'");
        let shown: Vec<String> = args.iter().map(|a| format!("{a:?}")).collect();
        assert_eq!(shown, [r#"Text("two")"#, "Int(1)", r#"Text("two")"#]);
    }
}
