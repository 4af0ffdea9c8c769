//! The allocation rule, on figures already read: which warehouses give how much of each line.
//!
//! In order of preference: one warehouse that fills the whole order; else the fewest
//! warehouses that together fill it; ties go to the better warehouse priority, then to the one
//! nearest the consignee (postcode range, then state, then country).

use std::collections::HashMap;

/// A warehouse as the rule sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub code: String,
    /// Lower is preferred.
    pub priority: i64,
    /// Higher is nearer: 3 serves the postcode, 2 the state, 1 the country, 0 none.
    pub nearness: u8,
}

/// What a warehouse gives: (warehouse, [(sku, quantity)]).
pub type Plan = Vec<(String, Vec<(String, i64)>)>;

/// A line the warehouses cannot fill together: (sku, asked, available in all).
pub type Short = (String, i64, i64);

/// Beyond this many warehouses holding the SKUs, combinations are not searched: warehouses are
/// taken in preference order until the order is filled.
const SEARCH_LIMIT: usize = 12;

/// Plans `lines` (distinct SKUs, positive quantities) over `candidates` with `available` per
/// (sku, warehouse); the shortfalls when even every warehouse together cannot fill it.
pub fn plan(
    lines: &[(String, i64)],
    candidates: &[Candidate],
    available: &HashMap<(String, String), i64>,
) -> Result<Plan, Vec<Short>> {
    let avail = |sku: &str, wh: &str| {
        available
            .get(&(sku.to_owned(), wh.to_owned()))
            .copied()
            .unwrap_or(0)
            .max(0)
    };
    let short: Vec<Short> = lines
        .iter()
        .filter_map(|(sku, qty)| {
            let total: i64 = candidates.iter().map(|c| avail(sku, &c.code)).sum();
            (total < *qty).then(|| (sku.clone(), *qty, total))
        })
        .collect();
    if !short.is_empty() {
        return Err(short);
    }
    let mut ordered: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| lines.iter().any(|(sku, _)| avail(sku, &c.code) > 0))
        .collect();
    ordered.sort_by(|a, b| {
        (a.priority, std::cmp::Reverse(a.nearness), &a.code).cmp(&(
            b.priority,
            std::cmp::Reverse(b.nearness),
            &b.code,
        ))
    });
    let fills = |set: &[&Candidate]| {
        lines
            .iter()
            .all(|(sku, qty)| set.iter().map(|c| avail(sku, &c.code)).sum::<i64>() >= *qty)
    };
    let chosen: Vec<&Candidate> = if ordered.len() <= SEARCH_LIMIT {
        (1..=ordered.len())
            .find_map(|k| {
                combinations(ordered.len(), k).find_map(|idx| {
                    let set: Vec<&Candidate> = idx.iter().map(|&i| ordered[i]).collect();
                    fills(&set).then_some(set)
                })
            })
            .unwrap_or_default()
    } else {
        let mut set = Vec::new();
        for c in &ordered {
            set.push(*c);
            if fills(&set) {
                break;
            }
        }
        set
    };
    let mut plan: Plan = Vec::new();
    for c in chosen {
        let mut take = Vec::new();
        for (sku, qty) in lines {
            let already: i64 = plan
                .iter()
                .flat_map(|(_, l)| l.iter())
                .filter(|(s, _)| s == sku)
                .map(|(_, q)| q)
                .sum();
            let n = (qty - already).min(avail(sku, &c.code));
            if n > 0 {
                take.push((sku.clone(), n));
            }
        }
        if !take.is_empty() {
            plan.push((c.code.clone(), take));
        }
    }
    Ok(plan)
}

/// The `k`-element index sets of `0..n` in lexicographic order.
fn combinations(n: usize, k: usize) -> impl Iterator<Item = Vec<usize>> {
    let mut next = (k <= n).then(|| (0..k).collect::<Vec<_>>());
    std::iter::from_fn(move || {
        let current = next.take()?;
        let mut idx = current.clone();
        let mut i = k;
        while i > 0 {
            i -= 1;
            if idx[i] < n - k + i {
                idx[i] += 1;
                for j in i + 1..k {
                    idx[j] = idx[j - 1] + 1;
                }
                next = Some(idx);
                break;
            }
        }
        Some(current)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wh(code: &str, priority: i64, nearness: u8) -> Candidate {
        Candidate {
            code: code.into(),
            priority,
            nearness,
        }
    }

    fn stock(rows: &[(&str, &str, i64)]) -> HashMap<(String, String), i64> {
        rows.iter()
            .map(|(s, w, q)| (((*s).into(), (*w).into()), *q))
            .collect()
    }

    fn line(sku: &str, qty: i64) -> (String, i64) {
        (sku.into(), qty)
    }

    #[test]
    fn one_warehouse_that_fills_everything_wins_over_a_preferred_partial_one() {
        let c = [wh("SZ", 1, 0), wh("US-E", 2, 3), wh("US-W", 3, 1)];
        let s = stock(&[
            ("A", "SZ", 5),
            ("B", "SZ", 0),
            ("A", "US-W", 5),
            ("B", "US-W", 5),
        ]);
        let p = plan(&[line("A", 2), line("B", 1)], &c, &s).unwrap();
        assert_eq!(p, vec![("US-W".into(), vec![line("A", 2), line("B", 1)])]);
    }

    #[test]
    fn priority_then_nearness_break_ties() {
        let s = stock(&[("A", "E", 5), ("A", "W", 5)]);
        let by_priority = plan(&[line("A", 1)], &[wh("E", 2, 3), wh("W", 1, 0)], &s).unwrap();
        assert_eq!(by_priority[0].0, "W");
        let by_nearness = plan(&[line("A", 1)], &[wh("E", 1, 3), wh("W", 1, 2)], &s).unwrap();
        assert_eq!(by_nearness[0].0, "E");
    }

    #[test]
    fn fewest_warehouses_when_none_fills_alone() {
        // 10 units: SZ 4, E 3, W 9 — by priority alone all three would give; SZ with W is two.
        let c = [wh("SZ", 1, 0), wh("E", 2, 0), wh("W", 3, 0)];
        let s = stock(&[("A", "SZ", 4), ("A", "E", 3), ("A", "W", 9)]);
        let p = plan(&[line("A", 10)], &c, &s).unwrap();
        assert_eq!(p.len(), 2);
        let total: i64 = p.iter().flat_map(|(_, l)| l).map(|(_, q)| q).sum();
        assert_eq!(total, 10);
        assert_eq!(p[0], ("SZ".into(), vec![line("A", 4)]));
        assert_eq!(p[1], ("W".into(), vec![line("A", 6)]));
    }

    #[test]
    fn shortfalls_name_each_line() {
        let c = [wh("E", 1, 0), wh("W", 1, 0)];
        let s = stock(&[("A", "E", 3), ("A", "W", 4), ("B", "E", 1)]);
        let err = plan(&[line("A", 8), line("B", 1)], &c, &s).unwrap_err();
        assert_eq!(err, vec![("A".into(), 8, 7)]);
    }

    #[test]
    fn combinations_are_complete_and_ordered() {
        let all: Vec<_> = combinations(4, 2).collect();
        assert_eq!(all.len(), 6);
        assert_eq!(all[0], vec![0, 1]);
        assert_eq!(all[5], vec![2, 3]);
        assert_eq!(combinations(3, 3).count(), 1);
        assert_eq!(combinations(2, 3).count(), 0);
    }
}
