//! The command line: `rally` alone is `rally serve`.
use anyhow::Context;
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
    /// Constituencies and their MPs.
    Mps {
        #[command(subcommand)]
        command: MpsCommand,
    },
    /// Campaign staff accounts.
    Staff {
        #[command(subcommand)]
        command: StaffCommand,
    },
    /// Privacy tasks.
    Privacy {
        #[command(subcommand)]
        command: PrivacyCommand,
    },
    /// Database tasks.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum MpsCommand {
    /// Load constituencies and their MPs from a CSV file laid out like the public mp_lookup.csv
    /// (columns pcon_code, pcon_name, member_id, display_as, party_text, member_email).
    Import {
        /// The CSV file.
        file: std::path::PathBuf,
    },
    /// Update the MP of every known constituency from the UK Parliament Members API
    /// (RALLY_MEMBERS_API_URL).
    Sync,
}

#[derive(Debug, Subcommand)]
pub enum StaffCommand {
    /// Add a staff account. The password comes from RALLY_STAFF_PASSWORD, or is asked for.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        /// `admin` manages staff and everything else; `editor` edits campaigns.
        #[arg(long, default_value = "admin")]
        role: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum PrivacyCommand {
    /// Run the retention job now (RALLY_LETTER_RETENTION, RALLY_SIGNATURE_RETENTION).
    Purge,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy every campaign, signature, letter and staff account from one database into a new,
    /// empty one (ids kept), then compare each table's count. Either side may be SQLite or
    /// PostgreSQL; the source may stay in use.
    Copy {
        /// The database to copy from: sqlite://PATH or postgres://…
        #[arg(long, value_name = "URL")]
        from: String,
        /// The empty database to copy into: sqlite://PATH or postgres://…
        #[arg(long, value_name = "URL")]
        to: String,
    },
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
        Command::Mps { command: MpsCommand::Import { file } } => {
            // Say so before creating or migrating a database for nothing.
            std::fs::metadata(&file).with_context(|| format!("could not open {}", file.display()))?;
            let db = crate::startup::prepare_database(&config)?;
            let report = tokio::task::spawn_blocking(move || crate::mps::import_csv(&db, &file, true)).await??;
            println!("{report}");
            let skipped = report.bad_rows.len();
            if skipped > 0 {
                let rows = if skipped == 1 { "row" } else { "rows" };
                anyhow::bail!("{skipped} {rows} of the file could not be imported (see above); the other rows were");
            }
        }
        Command::Mps { command: MpsCommand::Sync } => {
            let db = crate::startup::prepare_database(&config)?;
            let client = crate::services::members::MembersClient::new(&config.members_api_url);
            let report = crate::mps::sync(&db, &client, true).await?;
            println!("{report}");
        }
        Command::Staff { command: StaffCommand::Add { email, name, role } } => {
            let db = crate::startup::prepare_database(&config)?;
            let password = match std::env::var("RALLY_STAFF_PASSWORD") {
                Ok(p) => p,
                Err(_) => {
                    let first = rpassword::prompt_password(format!("Password for {email} (at least {} characters): ", crate::staff::accounts::PASSWORD_MIN))?;
                    let again = rpassword::prompt_password("Same password again: ")?;
                    anyhow::ensure!(first == again, "the two passwords differ; nothing was saved");
                    first
                }
            };
            match crate::staff::accounts::create(&db, &email, &name, &password, &role, None).await {
                Ok(_) => println!("Added {name} <{email}> as {role}. Sign in at {}/admin/login", config.public_url),
                Err(crate::error::AppError::Validation(problems)) => {
                    let lines: Vec<String> = problems.0.iter().flat_map(|(f, ps)| ps.iter().map(move |p| format!("  --{f}: {p}"))).collect();
                    anyhow::bail!("the account was not added:\n{}", lines.join("\n"));
                }
                Err(e) => anyhow::bail!("{e}"),
            }
        }
        Command::Privacy { command: PrivacyCommand::Purge } => {
            let db = crate::startup::prepare_database(&config)?;
            let p = crate::workers::retention::purge(&db, crate::workers::retention::Retention::from_config(&config)).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "Removed {} unconfirmed signatures, {} unconfirmed letters and {} expired links; removed the text and address of {} letters; anonymised {} signatures.",
                p.unconfirmed_signatures, p.unconfirmed_letters, p.expired_tokens, p.letters_redacted, p.signatures_anonymised
            );
        }
        Command::Db { command: DbCommand::Copy { from, to } } => {
            println!("Copying {} to {}", crate::config::redact_url(&from), crate::config::redact_url(&to));
            let report = tokio::task::spawn_blocking(move || crate::db::copy::copy(&from, &to, true)).await??;
            print!("{report}");
            let mismatches = report.mismatches();
            anyhow::ensure!(mismatches.is_empty(), "the counts differ for {} (see above)", mismatches.join(", "));
            println!("Copied {} rows; every table's count matches.", report.rows());
        }
    }
    Ok(())
}
