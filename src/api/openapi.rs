use actix_web::HttpResponse;
use actix_web::http::header::ContentType;

/// The public contract, as committed in `schemas/openapi.json`.
pub const OPENAPI: &str = include_str!("../../schemas/openapi.json");

pub async fn document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(OPENAPI)
}
