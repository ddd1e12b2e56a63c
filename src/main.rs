//! The `tollgate` command: a thin front end over the `tollgate` library.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
