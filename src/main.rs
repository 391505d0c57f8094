//! The `countersign` binary: parse arguments, then hand over to `cli`.
#![forbid(unsafe_code)]

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = countersign::cli::Cli::parse();
    countersign::cli::main(cli)
}
