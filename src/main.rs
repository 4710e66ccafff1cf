//! Wiring only: parse the command line, run it, map the outcome to an exit code.

use clap::Parser;

fn main() {
    let cli = pacer::cli::Cli::parse();
    if let Err(e) = pacer::cli::run(cli) {
        eprintln!("pacer: {}", e.msg);
        std::process::exit(e.code);
    }
}
