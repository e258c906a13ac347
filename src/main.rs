//! The `mdkeep` binary: parse the command line, set up tracing, run.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    cli::init_tracing(args.log_format);
    std::process::exit(cli::run(args));
}
