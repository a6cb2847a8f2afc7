//! `jool-harness`: suites, version tools, captures and fuzzing of the
//! real module. Thin: the command layer is `jool_harness::cmd`.

fn main() -> std::process::ExitCode {
    jool_harness::cmd::main()
}
