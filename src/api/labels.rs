//! Label documents over HTTP: the `encoding` choice and the answer shared by
//! `GET /v1/waybills/{number}/label` and `POST /v1/labels/batch` (up to 200 labels as one PDF,
//! in the order asked).

use crate::api::auth::AuthKey;
use crate::api::error::{ApiError, FieldError};
use crate::api::extract::ApiJson;
use crate::auth::Scope;
use crate::waybills::WaybillService;
use actix_web::{HttpResponse, web};
use base64::Engine;
use serde::Deserialize;

#[derive(Deserialize)]
pub struct BatchRequest {
    numbers: Vec<String>,
}

/// `?encoding=base64` for JSON; absent (or `binary`) for the document itself.
#[derive(Deserialize)]
pub struct EncodingQuery {
    encoding: Option<String>,
}

impl EncodingQuery {
    pub fn base64(&self) -> Result<bool, ApiError> {
        match self.encoding.as_deref() {
            None | Some("binary") => Ok(false),
            Some("base64") => Ok(true),
            Some(_) => Err(ApiError::Validation(vec![FieldError::new(
                "encoding",
                "must be `base64` or absent",
            )])),
        }
    }
}

/// A stored label document as the answer: the bytes with their content type, or JSON with
/// `labelBase64`.
pub fn document(format: &str, content: Vec<u8>, base64: bool) -> HttpResponse {
    if base64 {
        return HttpResponse::Ok().json(serde_json::json!({
            "status": 1,
            "format": format,
            "labelBase64": base64::engine::general_purpose::STANDARD.encode(content),
        }));
    }
    let content_type = match format {
        "pdf" => "application/pdf",
        "gif" => "image/gif",
        "png" => "image/png",
        _ => "application/octet-stream",
    };
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Cache-Control", "private, max-age=86400"))
        .body(content)
}

pub async fn batch(
    key: AuthKey,
    service: web::Data<WaybillService>,
    query: web::Query<EncodingQuery>,
    ApiJson(req): ApiJson<BatchRequest>,
) -> Result<HttpResponse, ApiError> {
    let tenant = key.allow(Scope::LabelsRead)?;
    let base64 = query.base64()?;
    let merged = service.label_batch(&tenant.id, &req.numbers).await?;
    Ok(document("pdf", merged, base64))
}
