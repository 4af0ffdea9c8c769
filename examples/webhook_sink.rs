//! A webhook receiver for the push benchmark (`benches/webhooks_load.sh`): answers 204 to every
//! POST and counts the pushes and their distinct `webhook-id`s; `GET /count` answers
//! `<pushes> <distinct ids>`.
//!
//!   cargo run --release --example webhook_sink -- PORT

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use std::collections::HashSet;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Default)]
struct Seen {
    pushes: AtomicU64,
    ids: Mutex<HashSet<String>>,
}

async fn push(req: HttpRequest, seen: web::Data<Seen>) -> HttpResponse {
    seen.pushes.fetch_add(1, Ordering::Relaxed);
    if let Some(id) = req
        .headers()
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        && let Ok(mut ids) = seen.ids.lock()
    {
        ids.insert(id.to_owned());
    }
    HttpResponse::NoContent().finish()
}

async fn count(seen: web::Data<Seen>) -> HttpResponse {
    let ids = seen.ids.lock().map(|ids| ids.len()).unwrap_or_default();
    HttpResponse::Ok().body(format!("{} {ids}", seen.pushes.load(Ordering::Relaxed)))
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(9999);
    let seen = web::Data::new(Seen::default());
    HttpServer::new(move || {
        App::new()
            .app_data(seen.clone())
            .route("/count", web::get().to(count))
            .default_service(web::post().to(push))
    })
    .workers(1)
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
