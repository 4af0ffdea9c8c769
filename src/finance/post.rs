//! Posting transfers: a batch is checked against the accounts' counters in memory, under the
//! accounts' row locks (PostgreSQL) or the single writer (SQLite), and written in one
//! transaction. Each transfer, or each chain of linked transfers, succeeds or fails on its own;
//! a chain posts all together or not at all.

use super::accounts::{Counters, lock_accounts, write_counters};
use super::error::{FinanceError, TransferError, codes};
use super::transfers::{self, Stored};
use super::{FinanceService, Transfer, TransferKind, TransferRequest};
use crate::store::{Dialect, now_millis, rfc3339_millis};
use sha2::Digest;
use sqlx::AnyConnection;
use std::collections::HashMap;

/// What became of one transfer of a batch.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Posted now.
    Created(Transfer),
    /// Posted before with the same fields: the first result.
    Exists(Transfer),
    Failed {
        id: String,
        error: TransferError,
    },
}

impl Outcome {
    pub fn error(&self) -> Option<&TransferError> {
        match self {
            Self::Failed { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl FinanceService {
    /// Posts a batch of transfers, in order; one outcome per transfer.
    pub async fn post(
        &self,
        tenant: &str,
        requests: Vec<TransferRequest>,
    ) -> Result<Vec<Outcome>, FinanceError> {
        let dialect = self.db.dialect;
        let tenant = tenant.to_owned();
        // First as if every id were new (no lookup); when one was posted before, or another
        // batch inserted it meanwhile, again with the lookup, which finds it.
        for lookup in [false, true, true] {
            let (t, r) = (tenant.clone(), requests.clone());
            let result = self
                .db
                .transact(move |conn| {
                    Box::pin(async move { post_with(conn, dialect, &t, r, lookup).await })
                })
                .await;
            match result {
                Err(FinanceError::Raced) => continue,
                other => return other,
            }
        }
        Err(FinanceError::Raced)
    }
}

/// Posts the batch on the caller's transaction.
pub(super) async fn post_on(
    conn: &mut AnyConnection,
    dialect: Dialect,
    tenant: &str,
    requests: Vec<TransferRequest>,
) -> Result<Vec<Outcome>, FinanceError> {
    post_with(conn, dialect, tenant, requests, true).await
}

/// Posts the batch; without `lookup` every id is taken for new, and `Raced` comes back (the
/// caller's transaction to be undone) when one was not.
async fn post_with(
    conn: &mut AnyConnection,
    dialect: Dialect,
    tenant: &str,
    requests: Vec<TransferRequest>,
    lookup: bool,
) -> Result<Vec<Outcome>, FinanceError> {
    let now = now_millis();
    let hashes: Vec<String> = requests.iter().map(request_hash).collect();
    let pending_ids: Vec<&str> = requests
        .iter()
        .filter_map(|r| r.pending_id.as_deref())
        .collect();
    let mut account_ids: Vec<String> = requests
        .iter()
        .flat_map(|r| [r.debit_account.clone(), r.credit_account.clone()])
        .flatten()
        .collect();
    for p in transfers::load(conn, tenant, &pending_ids).await?.values() {
        account_ids.push(p.transfer.debit_account.clone());
        account_ids.push(p.transfer.credit_account.clone());
    }
    account_ids.sort();
    account_ids.dedup();
    let mut accounts = lock_accounts(conn, dialect, tenant, &account_ids).await?;
    let before = accounts.clone();
    // Read after the locks: whatever changes a pending transfer holds its accounts' locks.
    let mut pending = transfers::load(conn, tenant, &pending_ids).await?;
    let ids: Vec<&str> = requests.iter().map(|r| r.id.as_str()).collect();
    let existing = if lookup {
        transfers::load(conn, tenant, &ids).await?
    } else {
        HashMap::new()
    };

    let mut outcomes: Vec<Outcome> = Vec::with_capacity(requests.len());
    let mut created: HashMap<String, (String, Transfer)> = HashMap::new();
    let mut changed_pending: Vec<String> = Vec::new();
    let mut start = 0;
    while start < requests.len() {
        let end = (start..requests.len())
            .find(|&i| !requests[i].linked)
            .map_or(requests.len(), |i| i + 1);
        let chain = start..end;
        let open = requests[end - 1].linked;
        let snapshot = (chain.len() > 1).then(|| (accounts.clone(), pending.clone()));
        let mut chain_outcomes = Vec::with_capacity(chain.len());
        let mut failed: Option<usize> = None;
        for i in chain.clone() {
            let r = &requests[i];
            let result = if open {
                Err(TransferError::invalid(
                    codes::LINKED_CHAIN_OPEN,
                    "the last transfer of a batch cannot be linked to a next one",
                ))
            } else if let Some((hash, t)) = created
                .get(&r.id)
                .map(|(h, t)| (h.as_str(), t))
                .or_else(|| existing.get(&r.id).map(|s| (s.hash.as_str(), &s.transfer)))
            {
                if hash == hashes[i] {
                    Ok(Outcome::Exists(t.clone()))
                } else {
                    Err(TransferError::conflict(
                        codes::ID_CONFLICT,
                        format!("transfer `{}` exists with other fields", r.id),
                    ))
                }
            } else {
                apply(r, now, &mut accounts, &mut pending).map(Outcome::Created)
            };
            match result {
                Ok(o) => chain_outcomes.push(o),
                Err(error) => {
                    failed = Some(i);
                    chain_outcomes.push(Outcome::Failed {
                        id: r.id.clone(),
                        error,
                    });
                    break;
                }
            }
        }
        if let Some(at) = failed {
            if let Some((a, p)) = snapshot {
                accounts = a;
                pending = p;
            }
            let linked_failed = || {
                TransferError::conflict(
                    codes::LINKED_EVENT_FAILED,
                    format!("a linked transfer failed ({})", requests[at].id),
                )
            };
            for (k, i) in chain.clone().enumerate() {
                if i != at {
                    let o = Outcome::Failed {
                        id: requests[i].id.clone(),
                        error: linked_failed(),
                    };
                    if k < chain_outcomes.len() {
                        chain_outcomes[k] = o;
                    } else {
                        chain_outcomes.push(o);
                    }
                }
            }
        } else {
            for (k, i) in chain.clone().enumerate() {
                if let Outcome::Created(t) = &chain_outcomes[k] {
                    created.insert(t.id.clone(), (hashes[i].clone(), t.clone()));
                    if let Some(p) = &t.pending_id {
                        changed_pending.push(p.clone());
                    }
                }
            }
        }
        outcomes.extend(chain_outcomes);
        start = end;
    }

    let new: Vec<(&Transfer, &str, Option<i64>)> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Created(t) => created.get(&t.id).map(|(h, _)| {
                let expires = pending.get(&t.id).and_then(|p| p.expires_at_ms);
                (t, h.as_str(), expires)
            }),
            _ => None,
        })
        .collect();
    if transfers::insert(conn, tenant, &new, now).await? < new.len() as u64 {
        return Err(FinanceError::Raced);
    }
    for id in changed_pending {
        if let Some(p) = pending.get(&id) {
            transfers::set_state(conn, tenant, &id, &p.transfer.state).await?;
        }
    }
    let changed: Vec<(&String, &Counters)> = accounts
        .iter()
        .filter(|(id, c)| before.get(*id) != Some(*c))
        .collect();
    write_counters(conn, tenant, &changed).await?;
    Ok(outcomes)
}

/// Checks one transfer against the counters and, when it holds, moves them.
fn apply(
    r: &TransferRequest,
    now: i64,
    accounts: &mut HashMap<String, Counters>,
    pending: &mut HashMap<String, Stored>,
) -> Result<Transfer, TransferError> {
    let kind = r.kind.unwrap_or(TransferKind::Single);
    match kind {
        TransferKind::Single | TransferKind::Pending => {
            let (debit, credit) = match (&r.debit_account, &r.credit_account) {
                (Some(d), Some(c)) => (d, c),
                _ => {
                    return Err(TransferError::invalid(
                        codes::INVALID_TRANSFER,
                        "debitAccount and creditAccount are required",
                    ));
                }
            };
            if debit == credit {
                return Err(TransferError::invalid(
                    codes::ACCOUNTS_MUST_BE_DIFFERENT,
                    "a transfer moves money between two different accounts",
                ));
            }
            if r.amount <= 0 {
                return Err(TransferError::invalid(
                    codes::INVALID_TRANSFER,
                    "the amount must be positive",
                ));
            }
            let d = known(accounts, debit)?;
            let c = known(accounts, credit)?;
            if d.currency != c.currency {
                return Err(TransferError::invalid(
                    codes::CURRENCY_MISMATCH,
                    format!(
                        "`{debit}` holds {} and `{credit}` holds {}",
                        d.currency, c.currency
                    ),
                ));
            }
            if let Some(cur) = &r.currency
                && !cur.eq_ignore_ascii_case(&d.currency)
            {
                return Err(TransferError::invalid(
                    codes::CURRENCY_MISMATCH,
                    format!("the accounts hold {}, not {cur}", d.currency),
                ));
            }
            let is_pending = kind == TransferKind::Pending;
            let mut d = d.clone();
            let mut c = c.clone();
            let (dv, cv) = if is_pending {
                (&mut d.dp, &mut c.cp)
            } else {
                (&mut d.dpo, &mut c.cpo)
            };
            *dv = add(*dv, r.amount)?;
            *cv = add(*cv, r.amount)?;
            if d.dmnec && add(d.dp, d.dpo)? > d.cpo {
                return Err(TransferError::conflict(
                    codes::EXCEEDS_CREDITS,
                    format!("`{debit}` may not be debited beyond its credits"),
                ));
            }
            if c.cmned && add(c.cp, c.cpo)? > c.dpo {
                return Err(TransferError::conflict(
                    codes::EXCEEDS_DEBITS,
                    format!("`{credit}` may not be credited beyond its debits"),
                ));
            }
            let transfer = Transfer {
                id: r.id.clone(),
                debit_account: debit.clone(),
                credit_account: credit.clone(),
                amount: r.amount,
                currency: d.currency.clone(),
                code: r.code.clone(),
                kind,
                pending_id: None,
                state: if is_pending { "pending" } else { "posted" }.into(),
                expires_at: (is_pending && r.timeout_secs > 0)
                    .then(|| rfc3339_millis(now + r.timeout_secs.saturating_mul(1000))),
                linked: r.linked,
                reference: r.reference.clone(),
                created_at: rfc3339_millis(now),
            };
            accounts.insert(debit.clone(), d);
            accounts.insert(credit.clone(), c);
            if is_pending {
                pending.insert(
                    r.id.clone(),
                    Stored {
                        transfer: transfer.clone(),
                        hash: String::new(),
                        expires_at_ms: (r.timeout_secs > 0)
                            .then(|| now + r.timeout_secs.saturating_mul(1000)),
                    },
                );
            }
            Ok(transfer)
        }
        TransferKind::PostPending | TransferKind::VoidPending => {
            second_phase(r, kind, now, accounts, pending)
        }
    }
}

fn second_phase(
    r: &TransferRequest,
    kind: TransferKind,
    now: i64,
    accounts: &mut HashMap<String, Counters>,
    pending: &mut HashMap<String, Stored>,
) -> Result<Transfer, TransferError> {
    let pid = r.pending_id.as_deref().unwrap_or_default();
    let p = pending
        .get(pid)
        .filter(|p| p.transfer.kind == TransferKind::Pending)
        .ok_or_else(|| {
            TransferError::conflict(
                codes::PENDING_TRANSFER_NOT_FOUND,
                format!("no pending transfer `{pid}`"),
            )
        })?;
    if p.transfer.state != "pending" {
        return Err(TransferError::conflict(
            codes::PENDING_TRANSFER_NOT_PENDING,
            format!("pending transfer `{pid}` is {} already", p.transfer.state),
        ));
    }
    if p.expires_at_ms.is_some_and(|at| at <= now) {
        return Err(TransferError::conflict(
            codes::PENDING_TRANSFER_EXPIRED,
            format!("pending transfer `{pid}` has expired"),
        ));
    }
    let t = &p.transfer;
    let mismatch = r
        .debit_account
        .as_ref()
        .is_some_and(|d| *d != t.debit_account)
        || r.credit_account
            .as_ref()
            .is_some_and(|c| *c != t.credit_account)
        || r.currency
            .as_ref()
            .is_some_and(|c| !c.eq_ignore_ascii_case(&t.currency));
    if mismatch {
        return Err(TransferError::invalid(
            codes::PENDING_TRANSFER_MISMATCH,
            format!("the accounts or currency differ from pending transfer `{pid}`"),
        ));
    }
    let amount = match (kind, r.amount) {
        (_, 0) => t.amount,
        (TransferKind::PostPending, a) if a <= t.amount => a,
        (TransferKind::VoidPending, a) if a == t.amount => a,
        _ => {
            return Err(TransferError::conflict(
                codes::AMOUNT_EXCEEDS_PENDING,
                format!("amount differs from what pending transfer `{pid}` holds"),
            ));
        }
    };
    let posting = kind == TransferKind::PostPending;
    let mut d = known(accounts, &t.debit_account)?.clone();
    let mut c = known(accounts, &t.credit_account)?.clone();
    d.dp -= t.amount;
    c.cp -= t.amount;
    if posting {
        d.dpo = add(d.dpo, amount)?;
        c.cpo = add(c.cpo, amount)?;
    }
    let transfer = Transfer {
        id: r.id.clone(),
        debit_account: t.debit_account.clone(),
        credit_account: t.credit_account.clone(),
        amount,
        currency: t.currency.clone(),
        code: r.code.clone(),
        kind,
        pending_id: Some(pid.to_owned()),
        state: "posted".into(),
        expires_at: None,
        linked: r.linked,
        reference: r.reference.clone(),
        created_at: rfc3339_millis(now),
    };
    accounts.insert(t.debit_account.clone(), d);
    accounts.insert(t.credit_account.clone(), c);
    if let Some(p) = pending.get_mut(pid) {
        p.transfer.state = if posting { "posted" } else { "voided" }.into();
    }
    Ok(transfer)
}

fn known<'a>(
    accounts: &'a HashMap<String, Counters>,
    id: &str,
) -> Result<&'a Counters, TransferError> {
    accounts
        .get(id)
        .ok_or_else(|| TransferError::invalid(codes::UNKNOWN_ACCOUNT, format!("no account `{id}`")))
}

fn add(a: i64, b: i64) -> Result<i64, TransferError> {
    a.checked_add(b).ok_or_else(|| {
        TransferError::conflict(codes::OVERFLOW, "an account's counter would overflow")
    })
}

/// Digest of every field the client chose: the same id with another digest is a conflict.
fn request_hash(r: &TransferRequest) -> String {
    let fields = serde_json::json!([
        r.debit_account,
        r.credit_account,
        r.amount,
        r.currency.as_ref().map(|c| c.to_ascii_uppercase()),
        r.code,
        r.kind.unwrap_or(TransferKind::Single).as_str(),
        r.pending_id,
        r.timeout_secs,
        r.linked,
        r.reference,
    ]);
    hex::encode(sha2::Sha256::digest(fields.to_string().as_bytes()))
}
