//! `essentials all | partner | request | inventory | notification | gateway | migrate [--config FILE]`

fn main() -> std::process::ExitCode {
    essentials::main()
}
