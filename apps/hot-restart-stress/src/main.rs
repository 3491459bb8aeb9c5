//! `hot-restart-stress`: the hot-restart stress gate for libstellatune_ffi (see README.md).

use std::process::ExitCode;

fn main() -> ExitCode {
    // The parent re-executes itself with these arguments plus `--child --run-dir DIR`.
    let raw_args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if raw_args.first().is_some_and(|a| a == "hammer") {
        return hot_restart_stress::hammer::main(raw_args[1..].to_vec());
    }
    let args = hot_restart_stress::cli::parse();
    if args.child {
        hot_restart_stress::child::run(&args)
    } else {
        hot_restart_stress::parent::run(&args, raw_args)
    }
}
