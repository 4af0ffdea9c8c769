//! `shipgate events`: the outbox's consumers (their positions and how far behind they are), and
//! forgetting the position of a consumer that no longer reads the outbox (one moved to the
//! broker, or retired), so it stops counting as behind.

use clap::Subcommand;
use shipgate::store::Db;

#[derive(Subcommand)]
pub enum EventsCommand {
    /// Every consumer's position in the outbox: name, events behind, age of the oldest.
    List,
    /// Forgets a consumer's position. Forgetting `kafka-relay` makes the relay send the whole
    /// outbox again (consumers drop the repeats by event id).
    Forget { name: String },
}

pub async fn run(db: &Db, command: EventsCommand) -> anyhow::Result<()> {
    match command {
        EventsCommand::List => {
            for (name, behind, oldest_ms) in shipgate::events::lag(db).await? {
                println!("{name}\tbehind {behind}\toldest {oldest_ms} ms");
            }
            Ok(())
        }
        EventsCommand::Forget { name } => {
            if shipgate::events::forget(db, &name).await? {
                println!("forgot {name}");
                Ok(())
            } else {
                anyhow::bail!("no consumer named {name}")
            }
        }
    }
}
