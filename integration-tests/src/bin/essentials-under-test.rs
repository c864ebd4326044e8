//! The `essentials` binary, as the end-to-end tests start it (see `processes`).

fn main() -> std::process::ExitCode {
    essentials::main()
}
