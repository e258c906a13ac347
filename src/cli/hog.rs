//! `mdkeep hog` (hidden): hold a chosen amount of memory, for the job tests
//! and for trying a limit by hand.

use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// MiB to allocate and touch.
    #[arg(long)]
    mb: u64,
    /// Allocate this many MiB at a time, pausing --step-ms between steps.
    #[arg(long, default_value_t = 16)]
    step_mb: u64,
    #[arg(long, default_value_t = 0)]
    step_ms: u64,
    /// Hold the memory this long before exiting 0.
    #[arg(long, default_value_t = 500)]
    hold_ms: u64,
    /// Exit with this code instead.
    #[arg(long, default_value_t = 0)]
    exit: i32,
    /// Ignored: lets a test find its own hogs among the processes.
    #[arg(long)]
    tag: Option<String>,
}

pub fn run(a: &Args) -> anyhow::Result<i32> {
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut left = a.mb;
    while left > 0 {
        let n = left.min(a.step_mb.max(1));
        // Touch every page so the memory is resident, not just reserved.
        held.push(vec![1u8; (n << 20) as usize]);
        left -= n;
        if a.step_ms > 0 {
            std::thread::sleep(Duration::from_millis(a.step_ms));
        }
    }
    eprintln!("hog: holding {} MiB", a.mb);
    std::thread::sleep(Duration::from_millis(a.hold_ms));
    std::hint::black_box(&held);
    Ok(a.exit)
}
