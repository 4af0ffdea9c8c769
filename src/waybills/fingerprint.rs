//! What makes two create requests "the same payload" for idempotency.
//!
//! The platform may send a consignee phone that is empty or random and parcel dimensions that are
//! empty or defaults, so those fields are left out; everything else, in canonical form, is hashed.

use super::validation::ValidRequest;
use serde::Serialize;
use sha2::{Digest, Sha256};

#[derive(Serialize)]
struct Fingerprinted<'a> {
    channel: &'a str,
    shipper: &'a carriers::Address,
    consignee: carriers::Address,
    parcel_weights: Vec<u32>,
    customs: &'a Option<carriers::Customs>,
}

pub fn fingerprint(req: &ValidRequest) -> String {
    let mut consignee = req.consignee.clone();
    consignee.phone = None;
    let canonical = Fingerprinted {
        channel: &req.channel,
        shipper: &req.shipper,
        consignee,
        parcel_weights: req.parcels.iter().map(|p| p.weight_grams).collect(),
        customs: &req.customs,
    };
    // Serializing plain structs cannot fail; an empty input would still hash deterministically.
    let bytes = serde_json::to_vec(&canonical).unwrap_or_default();
    hex::encode(Sha256::digest(bytes))
}
