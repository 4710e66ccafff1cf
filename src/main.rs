//! Wiring only: parse the command line, run it, map the outcome to an exit code.

fn main() {
    let cli = pacer::cli::parse();
    if let Err(e) = pacer::cli::run(cli) {
        eprintln!("pacer: {}", e.msg);
        std::process::exit(e.code);
    }
}
