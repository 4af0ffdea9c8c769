//! `/station`: the label station page for warehouse staff, served by shipgate itself.

use actix_web::HttpResponse;

const PAGE: &str = include_str!("station.html");
const SCRIPT: &str = include_str!("station.js");

pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-src 'self' blob:; object-src 'self' blob:"))
        .body(PAGE)
}

pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(SCRIPT)
}
