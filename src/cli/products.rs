//! `tollgate match-products`: do the files here match a link's products?

use std::path::PathBuf;

use tollgate::fsio;
use tollgate::keyring::KeyRing;
use tollgate::limits::{Limit, Limits};
use tollgate::record::RecordOptions;
use tollgate::verify::products;

use super::failure::{Failure, NOT_VERIFIED, USAGE};
use super::keyfile;

/// Arguments of `tollgate match-products`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The link whose products to compare with (classic or DSSE) [in-toto: -l/--link].
    #[arg(short = 'l', long, value_name = "FILE")]
    link: PathBuf,
    /// Public key(s) of the functionary; one must have signed the link. Without it the
    /// signature is not checked (and a warning says so).
    #[arg(short = 'k', long = "key", value_name = "PUB", num_args = 1..)]
    keys: Vec<PathBuf>,
    /// Local files and folders to compare [default: the working directory]
    /// [in-toto: -p/--paths].
    #[arg(short = 'p', long, value_name = "PATH", num_args = 1..)]
    paths: Vec<String>,
    /// Gitignore-style patterns of files to leave out (replaces the defaults)
    /// [in-toto: -e/--exclude].
    #[arg(short = 'e', long, value_name = "PATTERN", num_args = 1..)]
    exclude: Option<Vec<String>>,
    /// Strip this prefix from local names (the first that matches) [in-toto: --lstrip-paths].
    #[arg(long, value_name = "PREFIX", num_args = 1..)]
    lstrip_paths: Vec<String>,
    #[command(flatten)]
    uris: super::record::UriArgs,
    /// Accepted for in-toto-match-products' command lines; Tollgate always lists every
    /// difference [in-toto: -v/--verbose].
    #[arg(short = 'v', long)]
    verbose: bool,
}

/// Runs `tollgate match-products`; returns 0 when everything matched, 1 when not.
pub fn run(args: Args) -> Result<u8, Failure> {
    let limits = Limits::default();
    let ring = if args.keys.is_empty() {
        eprintln!("warning: no --key given: the link's signature is not checked");
        None
    } else {
        let mut ring = KeyRing::new();
        for path in &args.keys {
            let key = keyfile::public_key(path)?;
            ring.insert(key.keyid(), key)
                .map_err(|e| Failure::new(USAGE, format!("{}: {e}", path.display())))?;
        }
        Some(ring)
    };
    let bytes = fsio::read_capped(&args.link, limits.max_metadata_bytes, Limit::MetadataBytes)
        .map_err(Failure::fs)?;
    let paths = if args.paths.is_empty() {
        vec![".".to_owned()]
    } else {
        args.paths.clone()
    };
    let mut options = RecordOptions {
        excludes: args.exclude.clone(),
        lstrip_paths: args.lstrip_paths.clone(),
        ..RecordOptions::default()
    };
    args.uris.apply(&mut options);
    let result = products::match_products(&bytes, ring.as_ref(), &paths, &options, &limits)
        .map_err(|e| match (&e, &ring) {
            (
                products::MatchError::Envelope(tollgate::envelope::EnvelopeError::Threshold {
                    ..
                }),
                Some(ring),
            ) => {
                let (reason, hint) = not_signed(&bytes, ring, &limits);
                let failure =
                    Failure::new(NOT_VERIFIED, format!("{}: {reason}", args.link.display()));
                match hint {
                    Some(hint) => failure.hint(hint),
                    None => failure,
                }
            }
            (products::MatchError::Record(source), _) => Failure::new(
                USAGE,
                format!(
                    "{}: recording the local files: {}",
                    args.link.display(),
                    super::failure::record_message(source)
                ),
            ),
            _ => Failure::new(USAGE, format!("{}: {e}", args.link.display())),
        })?;
    for name in &result.only_in_link {
        println!("only in the link's products: {name}");
    }
    for name in &result.only_here {
        println!("not among the products: {name}");
    }
    for name in &result.differ {
        println!("digests differ: {name}");
    }
    if result.matched() {
        println!(
            "{}: the local files match the link's products",
            args.link.display()
        );
        Ok(0)
    } else {
        Ok(NOT_VERIFIED)
    }
}

/// Why the link's signature did not verify, in plain words: which keys were given, and which
/// keyids its signatures name; and what to do, when that is to pass another key.
fn not_signed(bytes: &[u8], ring: &KeyRing, limits: &Limits) -> (String, Option<&'static str>) {
    let short = |k: &str| k.chars().take(8).collect::<String>();
    let given: Vec<String> = ring.keyids().map(|k| short(k.as_str())).collect();
    let named: Vec<String> = tollgate::envelope::Envelope::from_bytes(bytes, limits)
        .map(|e| {
            e.signatures()
                .iter()
                .filter_map(|s| s.keyid.as_deref().map(short))
                .collect()
        })
        .unwrap_or_default();
    let list = |ids: &[String]| match ids {
        [] => "none".to_owned(),
        ids => ids.join(", "),
    };
    let given_named = named.iter().any(|n| given.contains(n));
    if given_named {
        let reason = format!(
            "the signature by the given key {} does not verify: the link was changed after it \
             was signed",
            list(&given)
        );
        (reason, None)
    } else {
        let reason = format!(
            "the link is not signed by the given key {} (its signatures name key {})",
            list(&given),
            list(&named)
        );
        (
            reason,
            Some("pass the public key of the functionary who signed the link with --key"),
        )
    }
}
