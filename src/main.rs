//! The `mdkeep` binary: parse the command line, set up tracing, run.

mod cli;

use clap::Parser;

fn main() {
    quiet_on_closed_pipe();
    let args = cli::Cli::parse();
    cli::init_tracing(args.log_format);
    std::process::exit(cli::run(args));
}

/// `mdkeep ls | head -1`: when the reader goes away, stop quietly with 0,
/// as ripgrep does, instead of panicking in `println!`.
fn quiet_on_closed_pipe() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let msg = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if msg.contains("Broken pipe") || msg.contains("os error 32") {
            std::process::exit(0);
        }
        default(info);
    }));
}
