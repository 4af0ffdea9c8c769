//! What a key may do. A key has every scope (`*`, also ones added later) or a list of them;
//! a label-station key, for one, has only `labels:read`.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Read waybills (one, by reference, the last mile).
    WaybillsRead,
    /// Create and cancel waybills, resolve references in an unknown state.
    WaybillsWrite,
    /// Print labels (one or a batch) — all a label station needs.
    LabelsRead,
    /// Query tracking.
    TrackingRead,
    /// Subscribe endpoints, read and replay deliveries.
    WebhooksManage,
    /// Create, list, rotate and revoke keys.
    KeysManage,
    /// Read SKUs, warehouses, stock, movements and allocations.
    InventoryRead,
    /// Define SKUs and warehouses, move stock, allocate, commit and release.
    InventoryWrite,
    /// Read orders, their shipments and events; print their labels and pick lists.
    OrdersRead,
    /// Ingest orders, act on them (release, cancel, refund, returns), manage shops.
    OrdersWrite,
    /// Read ledger accounts, balances, transfers and reports.
    FinanceRead,
    /// Open accounts and post transfers.
    FinanceWrite,
}

impl Scope {
    pub const ALL: [Scope; 12] = [
        Scope::WaybillsRead,
        Scope::WaybillsWrite,
        Scope::LabelsRead,
        Scope::TrackingRead,
        Scope::WebhooksManage,
        Scope::KeysManage,
        Scope::InventoryRead,
        Scope::InventoryWrite,
        Scope::OrdersRead,
        Scope::OrdersWrite,
        Scope::FinanceRead,
        Scope::FinanceWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::WaybillsRead => "waybills:read",
            Self::WaybillsWrite => "waybills:write",
            Self::LabelsRead => "labels:read",
            Self::TrackingRead => "tracking:read",
            Self::WebhooksManage => "webhooks:manage",
            Self::KeysManage => "keys:manage",
            Self::InventoryRead => "inventory:read",
            Self::InventoryWrite => "inventory:write",
            Self::OrdersRead => "orders:read",
            Self::OrdersWrite => "orders:write",
            Self::FinanceRead => "finance:read",
            Self::FinanceWrite => "finance:write",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == s)
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

/// A set of scopes, or every scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scopes {
    all: bool,
    bits: u16,
}

impl Scopes {
    pub const FULL: Scopes = Scopes { all: true, bits: 0 };

    /// Parses `*` or a list separated by spaces or commas; names each unknown scope.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut scopes = Scopes {
            all: false,
            bits: 0,
        };
        let mut unknown = Vec::new();
        for name in list.split([' ', ',']).filter(|s| !s.is_empty()) {
            match (name, Scope::parse(name)) {
                ("*", _) => scopes.all = true,
                (_, Some(scope)) => scopes.bits |= scope.bit(),
                (_, None) => unknown.push(name),
            }
        }
        if !unknown.is_empty() {
            return Err(format!(
                "unknown scope(s) {}; known: *, {}",
                unknown.join(", "),
                Scope::ALL.map(Scope::as_str).join(", ")
            ));
        }
        if !scopes.all && scopes.bits == 0 {
            return Err("a key needs at least one scope".into());
        }
        Ok(scopes)
    }

    /// A stored list: names this version does not know (written by a newer one) are skipped,
    /// so they never widen a key and never lock it out.
    pub fn from_stored(list: &str) -> Self {
        list.split([' ', ',']).fold(
            Scopes {
                all: false,
                bits: 0,
            },
            |mut acc, name| {
                match (name, Scope::parse(name)) {
                    ("*", _) => acc.all = true,
                    (_, Some(scope)) => acc.bits |= scope.bit(),
                    _ => {}
                }
                acc
            },
        )
    }

    pub fn allows(self, scope: Scope) -> bool {
        self.all || self.bits & scope.bit() != 0
    }

    /// Whether every scope of `other` is also one of these (a key grants no more than it has).
    pub fn covers(self, other: Scopes) -> bool {
        self.all || (!other.all && other.bits & !self.bits == 0)
    }

    /// The scope names, `*` for every scope.
    pub fn names(self) -> Vec<&'static str> {
        if self.all {
            return vec!["*"];
        }
        Scope::ALL
            .into_iter()
            .filter(|s| self.allows(*s))
            .map(Scope::as_str)
            .collect()
    }
}

impl fmt::Display for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.names().join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_refuses_unknown_names() {
        let station = Scopes::parse("labels:read").unwrap();
        assert!(station.allows(Scope::LabelsRead));
        assert!(!station.allows(Scope::WaybillsWrite));
        assert_eq!(station.to_string(), "labels:read");
        let two = Scopes::parse("waybills:read, tracking:read").unwrap();
        assert_eq!(two.names(), ["waybills:read", "tracking:read"]);
        assert!(
            Scopes::parse("labels:write")
                .unwrap_err()
                .contains("labels:write")
        );
        assert!(Scopes::parse(" ,").is_err());
        assert_eq!(Scopes::parse("*").unwrap(), Scopes::FULL);
    }

    #[test]
    fn a_key_covers_only_what_it_has() {
        let station = Scopes::parse("labels:read").unwrap();
        let two = Scopes::parse("labels:read tracking:read").unwrap();
        assert!(two.covers(station));
        assert!(!station.covers(two));
        assert!(!two.covers(Scopes::FULL));
        assert!(Scopes::FULL.covers(two));
    }
}
