//! `kpbxd`: the services daemon, and the `kpbx` CLI when called by that name.

use std::path::PathBuf;
use std::process::ExitCode;

use kpbxd::config::{Config, LogTarget};
use kpbxd::daemon::{self, DaemonError};

const USAGE: &str = "\
Usage: kpbxd [--config FILE | --dev] [--check-config] [--print-config]

  --config FILE    bootstrap configuration (default /etc/kpbxd.conf; built-in
                   defaults apply when the default file does not exist)
  --dev            the embedded development profile: data dir ./var, control
                   socket ./var/kpbxd.sock, loopback listeners, no root needed
  --check-config   validate the configuration and exit
  --print-config   print the effective configuration with every key documented
  --version        print the version

Exit codes: 0 clean stop, 1 runtime failure, 2 usage, 3 bad configuration,
4 store error, 5 bind error, 6 data dir in use by another kpbxd";

const DEFAULT_CONFIG: &str = "/etc/kpbxd.conf";

enum Mode {
    Run,
    Check,
    Print,
}

fn main() -> ExitCode {
    // Multi-call: installed as a `kpbx` symlink, this binary is the CLI.
    let argv0 = std::env::args_os().next().unwrap_or_default();
    if std::path::Path::new(&argv0).file_name() == Some(std::ffi::OsStr::new("kpbx")) {
        let args: Vec<String> = std::env::args().skip(1).collect();
        return kpbxd::cli::client::main(&args);
    }
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log::error!("{e}");
            eprintln!("kpbxd: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn run() -> Result<(), DaemonError> {
    let mut config_path: Option<PathBuf> = None;
    let mut dev = false;
    let mut mode = Mode::Run;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--config" | "-c" => {
                let path = args
                    .next()
                    .ok_or_else(|| DaemonError::Usage("--config needs a file".to_string()))?;
                config_path = Some(PathBuf::from(path));
            }
            "--dev" => dev = true,
            "--check-config" => mode = Mode::Check,
            "--print-config" => mode = Mode::Print,
            "--version" => {
                println!("kpbxd {}", env!("CARGO_PKG_VERSION"));
                return Ok(());
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => {
                return Err(DaemonError::Usage(format!(
                    "unknown argument {other:?}\n{USAGE}"
                )));
            }
        }
    }
    if dev && config_path.is_some() {
        return Err(DaemonError::Usage(
            "--dev and --config exclude each other".to_string(),
        ));
    }
    let config = if dev {
        Config::dev()
    } else {
        load(config_path)?
    };
    match mode {
        Mode::Check => {
            println!("configuration ok");
            Ok(())
        }
        Mode::Print => {
            print!("{}", config.render());
            Ok(())
        }
        Mode::Run => {
            start_logging(&config)?;
            daemon::run(config)
        }
    }
}

fn load(path: Option<PathBuf>) -> Result<Config, DaemonError> {
    let explicit = path.is_some();
    let path = path.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    match std::fs::read(&path) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes)
                .map_err(|_| DaemonError::Config(format!("{}: not UTF-8 text", path.display())))?;
            Config::parse(&text)
                .map_err(|e| DaemonError::Config(format!("{}: {e}", path.display())))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => Ok(Config::default()),
        Err(e) => Err(DaemonError::Config(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

fn start_logging(config: &Config) -> Result<(), DaemonError> {
    match &config.log_target {
        LogTarget::Stderr => {
            simple_logging::log_to(daemon::logging::Sink::stderr(), config.log_level);
            Ok(())
        }
        LogTarget::File(path) => {
            let sink = daemon::logging::Sink::file(path, config.log_max_kb).map_err(|e| {
                DaemonError::Config(format!("log_target: cannot open {}: {e}", path.display()))
            })?;
            simple_logging::log_to(sink, config.log_level);
            Ok(())
        }
    }
}
