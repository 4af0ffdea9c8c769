//! `/docs`: the API reference, rendered in the browser from `/openapi.json` by a small script
//! served here (nothing is loaded from elsewhere).

use actix_web::HttpResponse;

const PAGE: &str = include_str!("docs.html");
const SCRIPT: &str = include_str!("docs.js");

pub async fn page() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; style-src 'self' 'unsafe-inline'",
        ))
        .body(PAGE)
}

pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(SCRIPT)
}
