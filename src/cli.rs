//! The command line: `rally` alone is `rally serve`.
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "rally", version, about = "Petitions and letters to MPs for UK campaigns")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the web server and its background workers (the default).
    Serve,
    /// Apply database migrations and load the shipped campaigns into an empty database, then exit.
    Migrate,
    /// Privacy tasks.
    Privacy {
        #[command(subcommand)]
        command: PrivacyCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum PrivacyCommand {
    /// Run the retention job now: remove unconfirmed signatures older than 7 days and expired links.
    Purge,
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let config = crate::config::Config::load()?;
    crate::telemetry::init(config.log_format);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let app = crate::startup::Application::build(config.clone()).await?;
            let mail = match &config.smtp_url {
                Some(url) => format!("SMTP at {}", crate::config::redact_url(url)),
                None => format!("files under {} (nothing is sent)", config.mail_dir.display()),
            };
            tracing::info!(listen = %config.listen, public_url = %config.public_url, mail = %mail, "Rally is running");
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            crate::startup::prepare_database(&config)?;
            println!("Database is up to date.");
        }
        Command::Privacy { command: PrivacyCommand::Purge } => {
            let db = crate::startup::prepare_database(&config)?;
            let p = crate::workers::retention::purge(&db).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("Removed {} unconfirmed signatures and {} expired links.", p.unconfirmed_signatures, p.expired_tokens);
        }
    }
    Ok(())
}
