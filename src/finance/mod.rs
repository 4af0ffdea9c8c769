//! The finance service: a double-entry ledger per tenant, fed by the gateway's waybill events.
//!
//! Accounts belong to a tenant and hold one currency; transfers move an integer amount of minor
//! units from one account (debited) to another (credited) of the same currency and never
//! change once written. Each account keeps TigerBeetle's four counters (debits and credits,
//! pending and posted), moved only in the transaction that inserts the transfer explaining them,
//! so balances are read without summing history and always equal it ([`FinanceService::verify`]
//! checks both). It owns the `fin_*` tables and reaches nothing else's. See docs/finance.md.

mod accounts;
pub mod conversions;
mod error;
pub mod feed;
pub mod invoice_lines;
mod invoices;
pub mod money;
pub mod payments;
pub mod paypal;
mod post;
mod providers;
pub mod rates;
pub mod reports;
mod review;
pub mod stripe;
mod transfers;
mod verify;

pub use error::{FinanceError, TransferError};
pub use invoice_lines::{Invoice, Settle};
pub use invoices::{BadRow, InvoiceLine};
pub use payments::Payment;
pub use post::Outcome;
pub use providers::{PROVIDERS, PaymentAccount, WebhookHeaders, WebhookRefusal};
pub use rates::{Converted, Rate};
pub use transfers::TransferQuery;
pub use verify::{CurrencyTotals, Discrepancy};

use crate::store::Db;
use serde::Serialize;

/// An account, transfer or conversion id: 1 to `max` letters, digits, `.`, `_`, `-`, `:`.
pub fn is_id(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

/// Which side an account's balance is read from: debit-normal (assets, expenses) or
/// credit-normal (liabilities, equity, revenue).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccountKind {
    Asset,
    Liability,
    Equity,
    Revenue,
    Expense,
}

impl AccountKind {
    pub const ALL: [AccountKind; 5] = [
        Self::Asset,
        Self::Liability,
        Self::Equity,
        Self::Revenue,
        Self::Expense,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Asset => "asset",
            Self::Liability => "liability",
            Self::Equity => "equity",
            Self::Revenue => "revenue",
            Self::Expense => "expense",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Debit-normal: its balance is debits − credits.
    pub fn debit_normal(self) -> bool {
        matches!(self, Self::Asset | Self::Expense)
    }
}

/// An account to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAccount {
    pub id: String,
    pub currency: String,
    pub kind: AccountKind,
    pub name: Option<String>,
    pub debits_must_not_exceed_credits: bool,
    pub credits_must_not_exceed_debits: bool,
}

/// An account with its balances.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub id: String,
    pub currency: String,
    pub kind: AccountKind,
    pub name: Option<String>,
    pub debits_must_not_exceed_credits: bool,
    pub credits_must_not_exceed_debits: bool,
    pub debits_pending: i64,
    pub debits_posted: i64,
    pub credits_pending: i64,
    pub credits_posted: i64,
    /// Posted balance on the account's normal side.
    pub balance: i64,
    pub created_at: String,
}

/// What a transfer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TransferKind {
    /// Posted at once.
    Single,
    /// Reserves the amount (first phase); posted or voided later, or expires.
    Pending,
    /// Posts a pending transfer (all of it, or less).
    PostPending,
    /// Voids a pending transfer.
    VoidPending,
}

impl TransferKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Single => "single",
            Self::Pending => "pending",
            Self::PostPending => "post_pending",
            Self::VoidPending => "void_pending",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Single,
            Self::Pending,
            Self::PostPending,
            Self::VoidPending,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// A transfer as asked for. Accounts and amount may be left out of a second phase (they come
/// from the pending transfer; an amount of 0 posts all of it).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TransferRequest {
    pub id: String,
    pub debit_account: Option<String>,
    pub credit_account: Option<String>,
    pub amount: i64,
    pub currency: Option<String>,
    pub code: String,
    pub kind: Option<TransferKind>,
    pub pending_id: Option<String>,
    /// A pending transfer expires after this many seconds (0: never).
    pub timeout_secs: i64,
    /// Posts with the next transfer of the batch, or not at all.
    pub linked: bool,
    pub reference: Option<String>,
}

/// A transfer as stored.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Transfer {
    pub id: String,
    pub debit_account: String,
    pub credit_account: String,
    pub amount: i64,
    pub currency: String,
    pub code: String,
    pub kind: TransferKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_id: Option<String>,
    /// `posted` for a posted transfer; a pending one is `pending`, then `posted`, `voided` or
    /// `expired`.
    pub state: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    pub linked: bool,
    pub reference: Option<String>,
    pub created_at: String,
}

/// The finance service.
#[derive(Clone)]
pub struct FinanceService {
    db: Db,
    /// How far a payment webhook's signed timestamp may be from now.
    webhook_tolerance_secs: i64,
    /// Where PayPal's signing certificates come from.
    paypal: providers::PaypalCerts,
    /// Carrier invoice layouts by name.
    invoice_layouts:
        std::sync::Arc<std::collections::BTreeMap<String, crate::settings::InvoiceLayout>>,
}

impl FinanceService {
    pub fn new(db: Db) -> Self {
        Self {
            db,
            webhook_tolerance_secs: 300,
            paypal: providers::PaypalCerts::new(""),
            invoice_layouts: Default::default(),
        }
    }

    /// Fetch PayPal's certificates from this base URL instead of the host their URL names.
    pub fn with_paypal_api_base(mut self, base: &str) -> Self {
        self.paypal = providers::PaypalCerts::new(base);
        self
    }

    pub fn with_invoice_layouts(
        mut self,
        layouts: std::collections::BTreeMap<String, crate::settings::InvoiceLayout>,
    ) -> Self {
        self.invoice_layouts = std::sync::Arc::new(layouts);
        self
    }

    /// The invoice layout of that name.
    pub fn invoice_layout(&self, name: &str) -> Option<&crate::settings::InvoiceLayout> {
        self.invoice_layouts.get(name)
    }

    pub fn with_webhook_tolerance(mut self, secs: u64) -> Self {
        self.webhook_tolerance_secs = i64::try_from(secs).unwrap_or(i64::MAX);
        self
    }

    pub fn webhook_tolerance_secs(&self) -> i64 {
        self.webhook_tolerance_secs
    }
}
