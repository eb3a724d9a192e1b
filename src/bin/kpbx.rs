//! `kpbx`: the console CLI. On the appliance `kpbx` is a symlink to the
//! multi-call `kpbxd` binary; this separate target exists for development.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    kpbxd::cli::client::main(&args)
}
