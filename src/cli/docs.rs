//! `tollgate completions` and `tollgate man`: shell completions and manual pages, generated
//! from the command-line definition itself so that they never drift from it.

use std::io::Write;
use std::path::PathBuf;

use clap::CommandFactory;

use super::Cli;
use super::failure::{Failure, INTERNAL};

/// Arguments of `tollgate completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell, e.g. `tollgate completions bash > /etc/bash_completion.d/tollgate`.
    shell: clap_complete::Shell,
}

/// Arguments of `tollgate man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write a page per command (tollgate.1, tollgate-verify.1, ...) into DIR instead of
    /// printing the main page.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// Prints the completion script for a shell.
pub fn completions(args: CompletionsArgs) -> Result<u8, Failure> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, "tollgate", &mut out);
    write_stdout(&out)
}

/// Prints the main manual page, or writes every page into a folder.
pub fn man(args: ManArgs) -> Result<u8, Failure> {
    let command = Cli::command();
    match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|e| {
                Failure::new(INTERNAL, format!("{}: cannot create: {e}", dir.display()))
            })?;
            clap_mangen::generate_to(command, dir).map_err(|e| {
                Failure::new(INTERNAL, format!("{}: cannot write: {e}", dir.display()))
            })?;
            eprintln!("wrote the manual pages into {}", dir.display());
            Ok(0)
        }
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(command)
                .render(&mut out)
                .map_err(|e| Failure::new(INTERNAL, e.to_string()))?;
            write_stdout(&out)
        }
    }
}

fn write_stdout(bytes: &[u8]) -> Result<u8, Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(bytes)
        .and_then(|()| stdout.flush())
        .map_err(|e| Failure::new(INTERNAL, format!("writing to standard output: {e}")))?;
    Ok(0)
}
