//! The `atmate` binary: parse the command line, set up logging, run, map errors to exit codes.

use clap::Parser;

fn main() {
    let cli = atmate::cli::Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(cli.log_filter())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        atmate::cli::LogFormat::Json => builder.json().init(),
        atmate::cli::LogFormat::Text => builder.init(),
    }
    let code = match atmate::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("atmate: {e:#}");
            2
        }
    };
    std::process::exit(code);
}
