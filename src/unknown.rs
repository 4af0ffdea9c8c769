//! `shipgate unknown`: list references stuck in "unknown" across tenants and resolve each.

use anyhow::Context;
use clap::Subcommand;
use shipgate::settings::Settings;
use shipgate::store::Db;
use shipgate::store::now_millis;
use shipgate::store::tenants::Mode;
use shipgate::waybills::resolve::{self, Resolution, Resolved};

#[derive(Subcommand)]
pub enum UnknownCommand {
    /// List unresolved references, oldest first.
    List {
        /// Only those unresolved for at least this many seconds.
        #[arg(long, default_value_t = 0)]
        older_than_secs: u64,
    },
    /// Resolve one: the carrier made the shipment (--waybill-number) or not (--not-created).
    Resolve {
        #[arg(long)]
        tenant: String,
        /// The mode of the key that created it.
        #[arg(long, default_value = "live")]
        mode: String,
        #[arg(long)]
        reference: String,
        #[arg(long, conflicts_with_all = ["waybill_number", "label_file"])]
        not_created: bool,
        #[arg(long, required_unless_present = "not_created")]
        waybill_number: Option<String>,
        #[arg(long)]
        tracking_number: Option<String>,
        /// The carrier's label (PDF, PNG, GIF or ZPL, by extension).
        #[arg(long)]
        label_file: Option<std::path::PathBuf>,
    },
}

pub async fn run(db: &Db, settings: &Settings, command: UnknownCommand) -> anyhow::Result<()> {
    match command {
        UnknownCommand::List { older_than_secs } => {
            let min_age = i64::try_from(older_than_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
            let now = now_millis();
            for u in db.unresolved(None, min_age, 10_000).await? {
                println!(
                    "{}  {}  {}  {}  since {} ({} s)  {} attempt(s)",
                    u.tenant_name,
                    u.reference_number,
                    u.carrier,
                    u.channel,
                    u.since(),
                    (now - u.since_ms).max(0) / 1000,
                    u.attempts
                );
            }
        }
        UnknownCommand::Resolve {
            tenant,
            mode,
            reference,
            not_created,
            waybill_number,
            tracking_number,
            label_file,
        } => {
            let mode = Mode::parse(&mode).context("--mode: test or live")?;
            let account = db
                .account(&tenant)
                .await?
                .with_context(|| format!("no tenant `{tenant}`"))?;
            let tenant_row = db.tenant_in_mode(&account, mode).await?;
            let row = db
                .waybill_by_reference(&tenant_row.id, &reference)
                .await?
                .with_context(|| format!("no reference `{reference}` for {tenant} ({mode:?})"))?;
            let resolution = match (not_created, waybill_number) {
                (true, _) => Resolution::NotCreated,
                (false, Some(waybill_number)) => Resolution::Created {
                    waybill_number,
                    tracking_number,
                    label: label_file.map(read_label).transpose()?,
                    charge: None,
                },
                (false, None) => anyhow::bail!("--waybill-number or --not-created"),
            };
            let first_poll = settings.tracking.polling.enabled.then(|| {
                now_millis() + i64::try_from(settings.tracking.polling.first_ms).unwrap_or(0)
            });
            let lease = i64::try_from(settings.idempotency.lease_ms).unwrap_or(i64::MAX);
            match resolve::resolve(db, &row, resolution, lease, first_poll).await? {
                Resolved::Freed => println!("{reference}: freed (no shipment exists)"),
                Resolved::Recorded { waybill_number } => {
                    println!("{reference}: recorded as waybill {waybill_number}")
                }
            }
        }
    }
    Ok(())
}

fn read_label(path: std::path::PathBuf) -> anyhow::Result<carriers::Label> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let format = carriers::LabelFormat::parse(&ext)
        .with_context(|| format!("{}: a .pdf, .png, .gif or .zpl file", path.display()))?;
    let content = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok(carriers::Label { format, content })
}
