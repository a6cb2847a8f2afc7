//! `jool-stats`: see `jool_harness::cli`.

fn main() -> std::process::ExitCode {
    jool_harness::cli::main(std::env::args_os())
}
