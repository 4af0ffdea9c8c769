//! `POST /v1/labels/batch`: up to 200 labels as one PDF, in the order asked.

use crate::auth::AuthTenant;
use crate::error::{ApiError, FieldError};
use crate::extract::ApiJson;
use crate::waybills::WaybillService;
use actix_web::{HttpResponse, web};
use base64::Engine;
use serde::Deserialize;

pub const MAX_BATCH: usize = 200;

#[derive(Deserialize)]
pub struct BatchRequest {
    numbers: Vec<String>,
}

#[derive(Deserialize)]
pub struct BatchQuery {
    encoding: Option<String>,
}

pub async fn batch(
    tenant: AuthTenant,
    service: web::Data<WaybillService>,
    query: web::Query<BatchQuery>,
    ApiJson(req): ApiJson<BatchRequest>,
) -> Result<HttpResponse, ApiError> {
    if req.numbers.is_empty() || req.numbers.len() > MAX_BATCH {
        return Err(ApiError::Validation(vec![FieldError::new(
            "numbers",
            format!("must hold 1 to {MAX_BATCH} waybill or reference numbers"),
        )]));
    }
    let base64 = match query.encoding.as_deref() {
        None => false,
        Some("base64") => true,
        Some(_) => {
            return Err(ApiError::Validation(vec![FieldError::new(
                "encoding",
                "must be `base64` or absent",
            )]));
        }
    };
    let mut documents = Vec::with_capacity(req.numbers.len());
    let mut missing = Vec::new();
    for (i, number) in req.numbers.iter().enumerate() {
        match service.label(&tenant.0.id, number).await {
            Ok((format, content)) if format == "pdf" => documents.push(content),
            Ok((format, _)) => missing.push(FieldError::new(
                format!("numbers[{i}]"),
                format!("`{number}` has a {format} label, not a PDF"),
            )),
            Err(ApiError::NotFound(_)) => {
                missing.push(FieldError::new(
                    format!("numbers[{i}]"),
                    format!("no waybill `{number}`"),
                ));
            }
            Err(ApiError::LabelNotAvailable(_)) => missing.push(FieldError::new(
                format!("numbers[{i}]"),
                format!("waybill `{number}` has no stored label"),
            )),
            Err(e) => return Err(e),
        }
    }
    if !missing.is_empty() {
        return Err(ApiError::NotFoundItems(missing));
    }
    let merged = tokio::task::spawn_blocking(move || crate::labels::merge::merge(&documents))
        .await
        .map_err(|e| ApiError::Internal(format!("merging labels: {e}")))?
        .map_err(|e| ApiError::Internal(format!("merging labels: {e}")))?;
    Ok(if base64 {
        HttpResponse::Ok().json(serde_json::json!({
            "status": 1,
            "format": "pdf",
            "labelBase64": base64::engine::general_purpose::STANDARD.encode(merged),
        }))
    } else {
        HttpResponse::Ok()
            .content_type("application/pdf")
            .body(merged)
    })
}
