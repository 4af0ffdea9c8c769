//! The create-waybill request as clients send it (camelCase JSON). Every field is optional at
//! this stage so that validation can report all missing fields at once.

use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateWaybillRequest {
    pub reference_number: Option<String>,
    pub channel: Option<String>,
    pub shipper: Option<AddressInput>,
    pub consignee: Option<AddressInput>,
    pub parcels: Option<Vec<ParcelInput>>,
    pub customs: Option<CustomsInput>,
    pub label_encoding: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AddressInput {
    pub name: Option<String>,
    pub company: Option<String>,
    pub phone: Option<String>,
    pub email: Option<String>,
    pub street1: Option<String>,
    pub street2: Option<String>,
    pub city: Option<String>,
    pub state: Option<String>,
    pub postal_code: Option<String>,
    pub country: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParcelInput {
    pub weight_grams: Option<i64>,
    pub length_cm: Option<f64>,
    pub width_cm: Option<f64>,
    pub height_cm: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomsInput {
    pub currency: Option<String>,
    pub incoterm: Option<String>,
    pub items: Option<Vec<CustomsItemInput>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomsItemInput {
    pub description: Option<String>,
    pub hs_code: Option<String>,
    pub quantity: Option<i64>,
    pub unit_value: Option<String>,
    pub weight_grams: Option<i64>,
    pub origin_country: Option<String>,
}
