//! `tollgate sign`: sign a layout or link, or check who signed it (the work of `in-toto-sign`).

use std::path::{Path, PathBuf};

use tollgate::document::{self, SignOptions};
use tollgate::envelope::Format;
use tollgate::fsio::{self, Mode};
use tollgate::keyring::KeyRing;
use tollgate::limits::{Limit, Limits};
use tollgate::metadata::{Kind, Metadata};

use super::failure::{Failure, USAGE};
use super::keyfile::{self, GpgArgs, PasswordArgs};

/// Arguments of `tollgate sign`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["file", "file_flag"])))]
pub struct Args {
    /// The layout or link file: a classic or DSSE envelope, or a bare unsigned payload.
    file: Option<PathBuf>,
    /// The same, in in-toto-sign's spelling [in-toto-sign: -f/--file].
    #[arg(
        short = 'f',
        long = "file",
        value_name = "FILE",
        conflicts_with = "file"
    )]
    file_flag: Option<PathBuf>,
    /// Private keys to sign with or, with --verify, public keys that must all have signed
    /// [in-toto-sign: -k/--key].
    #[arg(
        short = 'k',
        long = "key",
        value_name = "KEY",
        num_args = 1..,
        required_unless_present_any = ["gpg", "gpg_home"]
    )]
    keys: Vec<PathBuf>,
    /// Check that every given public key signed the file, instead of signing
    /// [in-toto-sign: --verify].
    #[arg(long, conflicts_with_all = ["append", "output", "dsse", "classic"])]
    verify: bool,
    /// Keep the existing signatures and add these (layouts only) [in-toto-sign: -a/--append].
    #[arg(short = 'a', long)]
    append: bool,
    /// Where to write the signed file [default: a layout in place; a link to
    /// NAME.KEYID8.link beside it] [in-toto-sign: -o/--output].
    #[arg(short = 'o', long, value_name = "PATH")]
    output: Option<PathBuf>,
    /// Write a DSSE envelope.
    #[arg(long, conflicts_with = "classic")]
    dsse: bool,
    /// Write a classic envelope (signed + signatures).
    #[arg(long)]
    classic: bool,
    /// Use a private key file that others can read.
    #[arg(long)]
    insecure_key_permissions: bool,
    #[command(flatten)]
    password: PasswordArgs,
    /// Ask for the password of an encrypted key on the terminal, as -P does
    /// [in-toto-sign: -p/--prompt].
    #[arg(short = 'p')]
    ask: bool,
    #[command(flatten)]
    gpg: GpgArgs,
    #[command(flatten)]
    key_type: super::keyfile::KeyTypeArgs,
    /// Print nothing but errors [in-toto-sign: -q/--quiet].
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    quiet: bool,
    /// Accepted for in-toto-sign's command lines; Tollgate always says what it signed or
    /// checked [in-toto-sign: -v/--verbose].
    #[arg(short = 'v', long)]
    verbose: bool,
}

/// Runs `tollgate sign`.
pub fn run(mut args: Args) -> Result<(), Failure> {
    args.gpg
        .refuse("PEM keys with --key (private keys to sign, public keys with --verify)")?;
    args.key_type.note();
    if args.ask && args.password.password.is_none() {
        args.password.password = Some(None);
    }
    let file = args
        .file
        .clone()
        .or_else(|| args.file_flag.clone())
        .ok_or_else(|| Failure::new(USAGE, "no file given"))?;
    let limits = Limits::default();
    let bytes = fsio::read_capped(&file, limits.max_metadata_bytes, Limit::MetadataBytes)
        .map_err(Failure::fs)?;
    if args.verify {
        verify(&file, &bytes, &args.keys, &limits, args.quiet)
    } else {
        sign(&file, &bytes, &args, &limits)
    }
}

fn verify(
    file: &Path,
    bytes: &[u8],
    key_paths: &[PathBuf],
    limits: &Limits,
    quiet: bool,
) -> Result<(), Failure> {
    let mut ring = KeyRing::new();
    for path in key_paths {
        let key = keyfile::public_key(path)?;
        ring.insert(key.keyid(), key)
            .map_err(|e| Failure::new(USAGE, format!("{}: {e}", path.display())))?;
    }
    let checked =
        document::verify_all(bytes, &ring, limits).map_err(|e| Failure::document(file, e))?;
    if quiet {
        return Ok(());
    }
    let kind = checked.metadata.kind().name();
    println!(
        "{}: {kind} signed by all {} given key(s) ({} envelope)",
        file.display(),
        ring.len(),
        checked.verified.format().name()
    );
    for keyid in &checked.verified.signers().keys {
        println!("  {keyid}");
    }
    if checked.verified.signers().unattributed > 0 {
        eprintln!(
            "note: {} other signature(s) are from keys not given, and were not counted",
            checked.verified.signers().unattributed
        );
    }
    Ok(())
}

fn sign(file: &Path, bytes: &[u8], args: &Args, limits: &Limits) -> Result<(), Failure> {
    let mut keys = Vec::with_capacity(args.keys.len());
    for path in &args.keys {
        keys.push(keyfile::private_key(
            path,
            &args.password,
            args.insecure_key_permissions,
        )?);
    }
    let options = SignOptions {
        format: if args.dsse {
            Some(Format::Dsse)
        } else if args.classic {
            Some(Format::Classic)
        } else {
            None
        },
        append: args.append,
    };
    let signed =
        document::sign(bytes, &keys, options, limits).map_err(|e| Failure::document(file, e))?;
    let output = match (&args.output, &signed.metadata) {
        (Some(path), _) => path.clone(),
        (None, Metadata::Link(link)) => {
            // `document::sign` refuses to sign without a key, so there is a first signer.
            let keyid = signed
                .signed_by
                .first()
                .map(|k| k.short())
                .unwrap_or("unsigned");
            let name = format!("{}.{keyid}.link", link.name);
            file.parent().unwrap_or(Path::new("")).join(name)
        }
        (None, Metadata::Layout(_)) => file.to_owned(),
    };
    fsio::create_parents(&output, Mode::Public).map_err(Failure::fs)?;
    fsio::write_atomic(&output, &signed.envelope.to_bytes(), Mode::Public, true)
        .map_err(Failure::fs)?;
    if args.quiet {
        return Ok(());
    }
    if signed.dropped > 0 {
        eprintln!(
            "note: replaced {} earlier signature(s); use --append to keep them",
            signed.dropped
        );
    }
    let kind = match signed.metadata.kind() {
        Kind::Layout => "layout",
        Kind::Link => "link",
    };
    eprintln!(
        "signed {kind} with {} key(s) ({} envelope): {}",
        signed.signed_by.len(),
        signed.envelope.format().name(),
        output.display()
    );
    Ok(())
}
