use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    match rally::cli::run(rally::cli::Cli::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rally: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
