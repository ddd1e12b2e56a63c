//! Command-line parsing, rendering and exit codes. Everything that prints or exits lives here;
//! the work is the library's.
//!
//! Exit codes: 0 success; 1 a signature or a policy did not verify; 2 bad input or usage;
//! 3 an internal or I/O error. `run` and `mock` exit with the recorded command's code.

mod attest;
mod bundle;
mod demo;
mod docs;
mod failure;
mod keyfile;
mod keygen;
mod keys;
mod layout;
mod products;
mod provenance;
mod record;
#[cfg(feature = "registry")]
mod registry;
mod sign;
mod verify;
mod vsa;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// in-toto supply-chain security: keys, signed layouts and links, verification.
#[derive(Debug, Parser)]
#[command(
    name = "tollgate",
    version,
    propagate_version = true,
    about,
    max_term_width = 100
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a key pair: PATH (private, mode 0600) and PATH.pub.
    Keygen(keygen::Args),
    /// Inspect public keys.
    #[command(subcommand)]
    Key(keys::Command),
    /// Run the whole chain on a sample project: build the release layout, record its five
    /// steps, verify what was shipped, then catch a tampered tarball (test-only keys).
    Demo(demo::Args),
    /// Write, build, check, show and sign layouts.
    #[command(subcommand)]
    Layout(layout::Command),
    /// Sign a layout or link, or check its signatures with --verify.
    Sign(sign::Args),
    /// Record a step: hash its materials, run its command, hash its products, sign the link.
    Run(Box<record::RunArgs>),
    /// Record a step that spans several jobs: `record start`, then `record stop`.
    #[command(subcommand)]
    Record(record::RecordCommand),
    /// Record a step without a key: an unsigned STEP.link, to try a layout out.
    Mock(record::MockArgs),
    /// Verify a supply chain: the layout's signatures and expiry, every step's links, the
    /// artifact rules, and the inspections.
    Verify(verify::Args),
    /// Sign a tool's JSON output (an SBOM, a scan report, test results) as an in-toto
    /// attestation bound to a step (DSSE).
    Attest(Box<attest::Args>),
    /// Compare local files with a link's products (for the buyer holding the final product).
    MatchProducts(products::Args),
    /// Emit SLSA provenance v1 for a build step's products, from its link (DSSE).
    Provenance(provenance::Args),
    /// Pack a layout and its links into one file for a buyer, or list one.
    #[command(subcommand)]
    Bundle(bundle::Command),
    /// Attach a bundle to an image in an OCI registry (an artifact whose subject is the image).
    #[cfg(feature = "registry")]
    Push(registry::PushArgs),
    /// Fetch the bundle attached to an image in an OCI registry.
    #[cfg(feature = "registry")]
    Pull(registry::PullArgs),
    /// Check a signed verification summary (SLSA VSA), as `verify --vsa` writes it.
    #[command(subcommand)]
    Vsa(vsa::Command),
    /// Print shell completions (bash, zsh, fish, elvish, powershell).
    Completions(docs::CompletionsArgs),
    /// Print the manual page, or write one per command with --dir.
    Man(docs::ManArgs),
}

/// `run` and `mock` take the command after `--`; a command written without it is an
/// unexpected argument to clap (the command itself, or one of its options), which does not say
/// where it belongs.
fn command_hint(err: &clap::Error) -> Option<String> {
    if err.kind() != clap::error::ErrorKind::UnknownArgument {
        return None;
    }
    let mut argv = std::env::args().skip(1);
    let subcommand = argv.next()?;
    if subcommand != "run" && subcommand != "mock" {
        return None;
    }
    let words: Vec<String> = argv.collect();
    if words.iter().any(|w| w == "--") {
        return None;
    }
    // The first word that is no file here but a program on PATH is most likely the command.
    let at = words.iter().position(|w| {
        !w.starts_with('-') && !std::path::Path::new(w).exists() && record::on_path(w)
    });
    let command = match at {
        Some(at) => words[at..].join(" "),
        None => match err.get(clap::error::ContextKind::InvalidArg)? {
            clap::error::ContextValue::String(word) if !word.starts_with('-') => {
                format!("{word} ...")
            }
            _ => return None,
        },
    };
    Some(format!(
        "if `{command}` is the command to record, put `--` before it: tollgate {subcommand} \
         [OPTIONS] -- {command}"
    ))
}

/// Runs the command line and turns its outcome into an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            if let Some(hint) = command_hint(&err) {
                eprintln!("  hint: {hint}");
            }
            return match err.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(failure::USAGE),
            };
        }
    };
    let outcome = match cli.command {
        Command::Keygen(args) => keygen::run(args).map(|()| 0),
        Command::Key(command) => keys::run(command).map(|()| 0),
        Command::Demo(args) => demo::run(args),
        Command::Layout(command) => layout::run(command),
        Command::Sign(args) => sign::run(args).map(|()| 0),
        Command::Run(args) => record::run(*args),
        Command::Record(command) => record::record(command),
        Command::Mock(args) => record::mock(args),
        Command::Verify(args) => verify::run(args),
        Command::Attest(args) => attest::run(*args),
        Command::MatchProducts(args) => products::run(args),
        Command::Bundle(command) => bundle::run(command),
        Command::Provenance(args) => provenance::run(args),
        #[cfg(feature = "registry")]
        Command::Push(args) => registry::push(args),
        #[cfg(feature = "registry")]
        Command::Pull(args) => registry::pull(args),
        Command::Vsa(command) => vsa::run(command),
        Command::Completions(args) => docs::completions(args),
        Command::Man(args) => docs::man(args),
    };
    match outcome {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            failure.print();
            ExitCode::from(failure.code)
        }
    }
}
