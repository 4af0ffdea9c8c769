use anyhow::Context;
use clap::{Parser, Subcommand};
use shipgate::settings::Settings;
use shipgate::startup::Application;
use shipgate::store::Db;

#[derive(Parser)]
#[command(name = "shipgate", version, about = "Carrier-facing logistics gateway")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (the default).
    Serve {
        /// The services to run, separated by commas (`gateway`, `inventory`, `orders`,
        /// `finance`); overrides the
        /// `services` setting. Default: all of them.
        #[arg(long)]
        services: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Inventory checks for operators.
    Inventory {
        #[command(subcommand)]
        command: InventoryCommand,
    },
    /// Ledger checks for operators.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
    /// The outbox's consumers.
    Events {
        #[command(subcommand)]
        command: events_cli::EventsCommand,
    },
    /// References whose create attempt ended ambiguously and that no retry settled.
    Unknown {
        #[command(subcommand)]
        command: unknown::UnknownCommand,
    },
}

#[derive(Subcommand)]
enum InventoryCommand {
    /// Checks every stock row against its history: on hand equals the sum of its movements,
    /// reserved the sum of its active reservations. Exits 1 naming each row that does not.
    Verify,
}

#[derive(Subcommand)]
enum LedgerCommand {
    /// Checks every account against its transfers: each counter equals the sum of its
    /// transfers, no limited account is beyond its limit, debits equal credits per currency.
    /// Exits 1 naming each account that does not hold.
    Verify,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Create an API key for a tenant; the key is the last line of stdout.
    Create {
        #[arg(long)]
        tenant: String,
        /// `test` keys reach only the sandbox carrier and test data; `live` keys never do.
        #[arg(long, value_enum, default_value_t = ModeArg::Test)]
        mode: ModeArg,
        /// What the key may do: `*` (everything) or a comma-separated list, e.g.
        /// `labels:read` for a label station.
        #[arg(long, default_value = "*")]
        scopes: String,
        #[arg(long)]
        description: Option<String>,
        /// Create the tenant if it does not exist (otherwise an unknown tenant is refused).
        #[arg(long)]
        create_tenant: bool,
    },
    /// List a tenant's keys (both modes).
    List {
        #[arg(long)]
        tenant: String,
    },
    /// Replace a key with a new one (same tenant, mode and scopes); the new key is the last
    /// line of stdout.
    Rotate {
        /// The key's id (from `keys list`).
        id: String,
        /// How long the old key keeps working (0 stops it now; at most 168 hours).
        #[arg(long, default_value_t = 24)]
        grace_hours: u64,
    },
    /// Revoke a key at once.
    Revoke {
        /// The key's id (from `keys list`).
        id: String,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum ModeArg {
    Test,
    Live,
}

/// mimalloc: the service allocates many small, short-lived buffers per request (JSON, rows);
/// measured faster than the system allocator on the tracking and callback paths.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    carriers::http::install_crypto_provider();
    let command = cli.command.unwrap_or(Command::Serve { services: None });
    let mut loaded = Settings::load();
    if let (
        Command::Serve {
            services: Some(list),
        },
        Ok(settings),
    ) = (&command, &mut loaded)
    {
        match shipgate::settings::Service::parse_list(list) {
            Ok(services) => settings.services = services,
            Err(e) => {
                eprintln!("shipgate: --services: {e}");
                std::process::exit(2);
            }
        }
    }
    let settings = match loaded.and_then(|s| shipgate::startup::check(&s).map(|()| s)) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("shipgate: {e}");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match command {
        Command::Serve { .. } => {
            shipgate::telemetry::init(&settings.log);
            // actix-web runs its workers on their own runtimes; the main one drives the server.
            actix_web::rt::System::new().block_on(async {
                let app = Application::build(settings).await?;
                tracing::info!(port = app.port(), "shipgate listening");
                app.run_until_signalled().await.context("server failed")
            })
        }
        Command::Migrate => runtime.block_on(async {
            let db = Db::connect(&settings.database_url, 1).await?;
            db.migrate().await?;
            println!("migrations applied");
            Ok(())
        }),
        Command::Inventory {
            command: InventoryCommand::Verify,
        } => runtime.block_on(async {
            let db = Db::connect(&settings.database_url, 1).await?;
            db.migrate().await?;
            let broken = shipgate::inventory::InventoryService::new(db, None)
                .verify()
                .await?;
            if broken.is_empty() {
                println!("inventory: every stock row matches its movements and reservations");
                Ok(())
            } else {
                for line in &broken {
                    println!("{line}");
                }
                anyhow::bail!("{} inventory invariant(s) broken", broken.len())
            }
        }),
        Command::Ledger {
            command: LedgerCommand::Verify,
        } => runtime.block_on(async {
            let db = Db::connect(&settings.database_url, 1).await?;
            db.migrate().await?;
            let broken = shipgate::finance::FinanceService::new(db).verify().await?;
            if broken.is_empty() {
                println!("ledger: every account matches its transfers; debits equal credits");
                Ok(())
            } else {
                for d in &broken {
                    println!("{} {}: {}", d.tenant, d.account, d.problem);
                }
                anyhow::bail!("{} ledger invariant(s) broken", broken.len())
            }
        }),
        Command::Events { command } => runtime.block_on(async {
            let db = Db::connect(&settings.database_url, 1).await?;
            db.migrate().await?;
            events_cli::run(&db, command).await
        }),
        Command::Unknown { command } => runtime.block_on(async {
            let db = Db::connect(&settings.database_url, 1).await?;
            db.migrate().await?;
            unknown::run(&db, &settings, command).await
        }),
        Command::Keys { command } => runtime.block_on(async {
            let db = Db::connect(&settings.database_url, 1).await?;
            db.migrate().await?;
            keys::run(&db, command).await
        }),
    }
}

mod events_cli;
mod unknown;

mod keys {
    use super::{KeysCommand, ModeArg};
    use shipgate::auth::Scopes;
    use shipgate::auth::keys::{self, KeyRequest};
    use shipgate::store::Db;
    use shipgate::store::tenants::{KeyRecord, Mode};
    use std::time::Duration;

    fn describe(k: &KeyRecord) -> String {
        let state = match (&k.revoked_at, k.expires_at_ms) {
            (Some(at), _) => format!("revoked {at}"),
            (None, Some(end)) => format!("expires {}", shipgate::store::rfc3339_millis(end)),
            (None, None) => "active".into(),
        };
        format!(
            "{}  {}…  {}  {}  {}  {}",
            k.id,
            k.prefix,
            k.tenant.mode.as_str(),
            Scopes::from_stored(&k.scopes),
            state,
            k.description.as_deref().unwrap_or("")
        )
    }

    pub async fn run(db: &Db, command: KeysCommand) -> anyhow::Result<()> {
        match command {
            KeysCommand::Create {
                tenant,
                mode,
                scopes,
                description,
                create_tenant,
            } => {
                let scopes =
                    Scopes::parse(&scopes).map_err(|e| anyhow::anyhow!("--scopes: {e}"))?;
                let mode = match mode {
                    ModeArg::Test => Mode::Test,
                    ModeArg::Live => Mode::Live,
                };
                let created = keys::create_key(
                    db,
                    &KeyRequest {
                        tenant: &tenant,
                        mode,
                        scopes,
                        description: description.as_deref(),
                        create_tenant,
                    },
                )
                .await?;
                let t = &created.record.tenant;
                println!("tenant: {} ({}, {} mode)", t.name, t.id, t.mode.as_str());
                println!("key: {}", describe(&created.record));
                println!("store this key now; it is not shown again:");
                println!("{}", created.secret);
            }
            KeysCommand::List { tenant } => {
                for k in keys::list_keys(db, &tenant).await? {
                    println!("{}", describe(&k));
                }
            }
            KeysCommand::Rotate { id, grace_hours } => {
                let grace = Duration::from_secs(grace_hours.saturating_mul(3600));
                let (new, old) = keys::rotate_key(db, &id, None, grace).await?;
                println!("old key: {}", describe(&old));
                println!("new key: {}", describe(&new.record));
                println!("store this key now; it is not shown again:");
                println!("{}", new.secret);
            }
            KeysCommand::Revoke { id } => {
                let k = keys::revoke_key(db, &id, None).await?;
                println!("{}", describe(&k));
            }
        }
        Ok(())
    }
}
