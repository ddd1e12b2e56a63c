//! `tollgate bundle`: pack a layout and its links into one file for a buyer, and list one.

use std::path::PathBuf;

use sha2::{Digest, Sha256};
use tollgate::bundle::{Bundle, LAYOUT_NAME, Shortfall};
use tollgate::document;
use tollgate::fsio;
use tollgate::limits::{Limit, Limits};

use super::failure::{Failure, NOT_VERIFIED, USAGE};

/// The `bundle` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Pack the layout and every link its verification needs (sublayouts too) into one file.
    Create(CreateArgs),
    /// Show what a bundle holds.
    List(ListArgs),
}

/// Arguments of `bundle create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The signed layout.
    #[arg(short = 'l', long, value_name = "FILE")]
    layout: PathBuf,
    /// The folder holding the links.
    #[arg(long, value_name = "DIR", default_value = ".")]
    link_dir: PathBuf,
    /// Where to write the bundle.
    #[arg(
        short = 'o',
        long,
        value_name = "FILE",
        default_value = "release.bundle.json"
    )]
    output: PathBuf,
    /// Replace the output file if it exists.
    #[arg(long)]
    overwrite: bool,
    /// Refuse (exit 1, writing nothing) when a step has fewer links than its threshold, rather
    /// than warn.
    #[arg(long)]
    strict: bool,
}

/// Arguments of `bundle list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The bundle.
    file: PathBuf,
}

/// Runs a `bundle` subcommand.
pub fn run(command: Command) -> Result<u8, Failure> {
    match command {
        Command::Create(args) => create(args),
        Command::List(args) => list(args),
    }
}

fn create(args: CreateArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    // A typo in the folder is bad input, not a bundle without links.
    match std::fs::metadata(&args.link_dir) {
        Ok(meta) if meta.is_dir() => {}
        Ok(_) => {
            return Err(Failure::new(
                USAGE,
                format!(
                    "--link-dir: {} is a file, not a folder",
                    args.link_dir.display()
                ),
            ));
        }
        Err(_) => {
            return Err(Failure::new(
                USAGE,
                format!(
                    "--link-dir: the folder {} does not exist",
                    args.link_dir.display()
                ),
            )
            .hint("check the path given to --link-dir"));
        }
    }
    let layout = fsio::read_capped(
        &args.layout,
        limits.max_metadata_bytes,
        Limit::MetadataBytes,
    )
    .map_err(Failure::fs)?;
    let bundle = Bundle::create(layout, &args.link_dir, &limits)
        .map_err(|e| Failure::new(USAGE, format!("{}: {e}", args.layout.display())))?;
    let bytes = bundle
        .to_bytes()
        .map_err(|e| Failure::new(USAGE, e.to_string()))?;
    // The vendor hears of a step short of its threshold now, not from the buyer.
    let short = bundle.shortfalls(&args.link_dir, &limits);
    for shortfall in &short {
        eprintln!(
            "{}: {}",
            if args.strict { "error" } else { "warning" },
            shortfall_text(shortfall, &args)
        );
    }
    if args.strict && !short.is_empty() {
        return Err(Failure::new(
            NOT_VERIFIED,
            format!(
                "{} step(s) short of their threshold; {} not written (--strict)",
                short.len(),
                args.output.display()
            ),
        ));
    }
    super::failure::write_output(&args.output, &bytes, args.overwrite)?;
    eprintln!(
        "wrote {}: the layout and {} link(s), {} bytes",
        args.output.display(),
        bundle.links.len(),
        bytes.len()
    );
    if bundle.links.is_empty() {
        eprintln!(
            "warning: no link of the layout's steps is in {}",
            args.link_dir.display()
        );
    }
    Ok(0)
}

/// One sentence per step short of its threshold: how many of how many, which keys it accepts,
/// and which files were found and ignored, and why.
fn shortfall_text(shortfall: &Shortfall, args: &CreateArgs) -> String {
    let mut text = format!(
        "step {}: {} of {} required link(s) by distinct keys it accepts ({}) are in {}",
        shortfall.step,
        shortfall.signed,
        shortfall.threshold,
        shortfall.accepted.join(", "),
        args.link_dir.display()
    );
    if shortfall.ignored.is_empty() {
        text.push_str("; no other link file for it was found");
    }
    for (file, why) in &shortfall.ignored {
        text.push_str(&format!("; ignored {file}: {why}"));
    }
    text.push_str("; the buyer's verification will fail at this step");
    text
}

fn list(args: ListArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let bytes = fsio::read_capped(&args.file, limits.max_metadata_bytes, Limit::MetadataBytes)
        .map_err(Failure::fs)?;
    let bundle = Bundle::from_bytes(&bytes, &limits)
        .map_err(|e| Failure::new(USAGE, format!("{}: {e}", args.file.display())))?;
    let describe = |name: &str, bytes: &[u8]| {
        let signers = document::read_for_signing(bytes, &limits)
            .map(|e| {
                e.signatures()
                    .iter()
                    .map(|s| {
                        s.keyid
                            .as_deref()
                            .map_or("?".to_owned(), |k| k.chars().take(8).collect())
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        println!(
            "{name}  {} bytes  sha256:{}  signatures claimed by: {}",
            bytes.len(),
            hex::encode(Sha256::digest(bytes)),
            if signers.is_empty() { "none" } else { &signers }
        );
    };
    describe(LAYOUT_NAME, &bundle.layout);
    for (name, bytes) in &bundle.links {
        describe(name, bytes);
    }
    println!(
        "{}: 1 layout and {} link(s); nothing here is trusted until `tollgate verify --bundle` \
         checks it against the owner's key",
        args.file.display(),
        bundle.links.len()
    );
    Ok(0)
}
