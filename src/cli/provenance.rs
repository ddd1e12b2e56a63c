//! `tollgate provenance`: SLSA provenance v1 for a build step's products, from its link.

use std::path::PathBuf;

use tollgate::document::{self, LoadLinkError};
use tollgate::envelope::{Envelope, Format};
use tollgate::fsio;
use tollgate::keyring::KeyRing;
use tollgate::limits::{Limit, Limits};
use tollgate::statement;

use super::failure::{Failure, INTERNAL, NOT_VERIFIED, USAGE};
use super::keyfile::{self, PasswordArgs};

/// Arguments of `tollgate provenance`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The build step's link (classic, DSSE, or an in-toto Statement).
    #[arg(short = 'l', long, value_name = "FILE")]
    link: PathBuf,
    /// The key to sign the provenance with (the build platform's).
    #[arg(short = 'k', long = "key", value_name = "KEY")]
    key: PathBuf,
    /// The builder's identity, a URI naming the build platform that ran the step, e.g.
    /// https://github.com/OWNER/REPO/.github/workflows/release.yml@refs/heads/main.
    #[arg(long, value_name = "URI")]
    builder_id: String,
    /// Public key(s) of the step's functionary: one must have signed the link. Without it the
    /// link's signature is not checked (and a warning says so).
    #[arg(long = "link-key", value_name = "PUB", num_args = 1..)]
    link_keys: Vec<PathBuf>,
    /// Where to write the provenance (a DSSE envelope).
    #[arg(
        short = 'o',
        long,
        value_name = "FILE",
        default_value = "provenance.intoto.json"
    )]
    output: PathBuf,
    /// Replace the output file if it exists.
    #[arg(long)]
    overwrite: bool,
    /// Use a private key file that others can read.
    #[arg(long)]
    insecure_key_permissions: bool,
    #[command(flatten)]
    password: PasswordArgs,
}

/// Runs `tollgate provenance`.
pub fn run(args: Args) -> Result<u8, Failure> {
    let limits = Limits::default();
    if !args.builder_id.contains(':') {
        return Err(Failure::new(
            USAGE,
            format!("--builder-id {:?}: a URI is expected", args.builder_id),
        ));
    }
    let bytes = fsio::read_capped(&args.link, limits.max_metadata_bytes, Limit::MetadataBytes)
        .map_err(Failure::fs)?;
    let at = |e: &dyn std::fmt::Display| format!("{}: {e}", args.link.display());
    let loaded = if args.link_keys.is_empty() {
        let envelope =
            Envelope::from_bytes(&bytes, &limits).map_err(|e| Failure::new(USAGE, at(&e)))?;
        eprintln!("warning: no --link-key given: the link's signature is not checked");
        document::unverified_link(&envelope, &limits)
    } else {
        let mut ring = KeyRing::new();
        for path in &args.link_keys {
            let key = keyfile::public_key(path)?;
            ring.insert(key.keyid(), key)
                .map_err(|e| Failure::new(USAGE, format!("{}: {e}", path.display())))?;
        }
        document::load_link(&bytes, &ring, 1, &limits).and_then(|l| l.into_link(&limits))
    };
    let link = loaded.map_err(|e| match e {
        LoadLinkError::Verify(_) => Failure::new(NOT_VERIFIED, at(&e)),
        _ => Failure::new(USAGE, at(&e)),
    })?;
    let provenance =
        statement::provenance(&link, &args.builder_id).map_err(|e| Failure::new(USAGE, at(&e)))?;
    let key = keyfile::private_key(&args.key, &args.password, args.insecure_key_permissions)?;
    let signed = Envelope::seal(&provenance, Format::Dsse, &[&key])
        .map_err(|e| Failure::new(INTERNAL, format!("signing: {e}")))?;
    super::failure::write_output(&args.output, &signed, args.overwrite)?;
    eprintln!(
        "wrote {}: SLSA provenance v1 for {} product(s) of step {}, signed by {}",
        args.output.display(),
        link.products.len(),
        link.name,
        key.public_key().keyid().short()
    );
    Ok(0)
}
