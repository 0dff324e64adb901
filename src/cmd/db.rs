//! `neutrino db upgrade`: apply pending schema migrations.

use anyhow::Context as _;
use clap::{Args, Subcommand};

/// Arguments of `neutrino db`.
#[derive(Args)]
pub struct DbArgs {
    #[command(subcommand)]
    action: DbAction,
}

#[derive(Subcommand)]
enum DbAction {
    /// Apply pending migrations.
    Upgrade {
        /// Database URL.
        #[arg(long, env = "NEUTRINO_DB")]
        db: String,
    },
}

/// Runs a db subcommand.
pub async fn run(args: DbArgs) -> anyhow::Result<()> {
    match args.action {
        DbAction::Upgrade { db } => {
            let store = neutrino_store::Store::connect(&db).await.with_context(|| format!("connecting to {db}"))?;
            store.migrate().await.context("migrating")?;
            let v = store.applied_migrations("network").await?;
            println!("network schema at version {}", v.last().copied().unwrap_or(0));
            store.close().await;
            Ok(())
        }
    }
}
