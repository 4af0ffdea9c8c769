//! Seeds a running shipgate for the tracking load benchmark (`benches/tracking_load.sh`):
//! creates waybills on the sandbox channel, then pushes their events through the sandbox
//! callback (signed like a carrier would), one event per push unless told otherwise, and prints
//! the ingestion rate. The waybill numbers go to `--out`, one per line.
//!
//!   cargo run --release --example tracking_seed -- URL KEY SECRET WAYBILLS EVENTS OUT [CONCURRENCY] [EVENTS_PER_PUSH]

use futures_util::StreamExt;
use serde_json::json;
use std::time::Instant;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 6 {
        anyhow::bail!("usage: URL KEY SECRET WAYBILLS EVENTS OUT [CONCURRENCY] [EVENTS_PER_PUSH]");
    }
    let (url, key, secret) = (args[0].clone(), args[1].clone(), args[2].clone());
    let waybills: usize = args[3].parse()?;
    let events: usize = args[4].parse()?;
    let out = args[5].clone();
    let concurrency: usize = args.get(6).map_or(Ok(64), |c| c.parse())?;
    let per_push: usize = args.get(7).map_or(Ok(1), |c| c.parse())?.max(1);
    carriers::http::install_crypto_provider();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let run = std::process::id();

    let started = Instant::now();
    let numbers: Vec<String> = futures_util::stream::iter(0..waybills)
        .map(|i| {
            let (client, url, key) = (client.clone(), url.clone(), key.clone());
            async move {
                let body = json!({
                    "referenceNumber": format!("TRK-BENCH-{run}-{i}"),
                    "channel": "SANDBOX_LINEHAUL_US",
                    "shipper": {"name": "Li Wei", "phone": "+86 755 8888 1234", "street1": "88 Keji Road",
                                "city": "Shenzhen", "state": "GD", "postalCode": "518057", "country": "CN"},
                    "consignee": {"name": "Jane Doe", "street1": "742 Evergreen Terrace", "city": "Los Angeles",
                                  "state": "CA", "postalCode": "90001", "country": "US"},
                    "parcels": [{"weightGrams": 1200}],
                    "customs": {"currency": "USD", "incoterm": "DDU", "items": [{"description": "Cotton T-shirt",
                                "hsCode": "610910", "quantity": 2, "unitValue": "9.90", "weightGrams": 300,
                                "originCountry": "CN"}]}
                });
                let res = client
                    .post(format!("{url}/v1/waybills"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await?;
                let status = res.status();
                let v: serde_json::Value = res.json().await?;
                anyhow::ensure!(status.is_success(), "create: {status} {v}");
                Ok::<_, anyhow::Error>(v["waybillNumber"].as_str().unwrap_or_default().to_owned())
            }
        })
        .buffer_unordered(concurrency.min(32))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_, _>>()?;
    println!(
        "created {} waybills in {:.1} s",
        numbers.len(),
        started.elapsed().as_secs_f64()
    );
    std::fs::write(&out, numbers.join("\n") + "\n")?;

    // Events a minute apart, a day ago onwards, so the timeline is sorted newest first.
    let base = chrono::Utc::now() - chrono::Duration::days(1);
    let codes = ["PU", "DP", "LD", "LA", "CC", "LM"];
    // Interleaved as carriers push: the first event of every parcel, then the second...
    let waybill_count = numbers.len();
    let pushes: Vec<(usize, usize)> = (0..events.div_ceil(per_push))
        .flat_map(|p| (0..waybill_count).map(move |w| (w, p)))
        .collect();
    let started = Instant::now();
    let results = futures_util::stream::iter(pushes)
        .map(|(w, p)| {
            let (client, url, secret) = (client.clone(), url.clone(), secret.clone());
            let number = numbers[w].clone();
            async move {
                let evs: Vec<serde_json::Value> = (p * per_push..((p + 1) * per_push).min(events))
                    .map(|e| {
                        let at = base + chrono::Duration::minutes(e as i64);
                        json!({"code": format!("{}{}", codes[e % codes.len()], e),
                               "status": "IN_TRANSIT",
                               "description": format!("Scan {e} at the line-haul hub"),
                               "occurredAt": at.with_timezone(&chrono::FixedOffset::east_opt(8 * 3600).unwrap()).to_rfc3339(),
                               "city": "Shenzhen", "state": "GD", "postalCode": "518000", "country": "CN"})
                    })
                    .collect();
                let n = evs.len();
                let body = serde_json::to_vec(&json!({"waybillNumber": number, "events": evs}))?;
                let id = format!("bench-{run}-{w}-{p}");
                let ts = chrono::Utc::now().timestamp();
                let signature = carriers::signing::standard_webhooks_sign(secret.as_bytes(), &id, ts, &body);
                let res = client
                    .post(format!("{url}/v1/callbacks/sandbox"))
                    .header("content-type", "application/json")
                    .header("webhook-id", id)
                    .header("webhook-timestamp", ts.to_string())
                    .header("webhook-signature", signature)
                    .body(body)
                    .send()
                    .await?;
                let status = res.status();
                let text = res.text().await?;
                anyhow::ensure!(status.is_success(), "push: {status} {text}");
                Ok::<_, anyhow::Error>(n)
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut stored = 0;
    let mut failed = 0;
    for r in results {
        match r {
            Ok(n) => stored += n,
            Err(e) => {
                if failed == 0 {
                    eprintln!("{e}");
                }
                failed += 1;
            }
        }
    }
    println!(
        "RESULT callbacks events={stored} pushes={} seconds={elapsed:.1} events_per_s={:.0} failed={failed}",
        stored.div_ceil(per_push),
        stored as f64 / elapsed
    );
    anyhow::ensure!(failed == 0, "{failed} pushes failed");
    Ok(())
}
