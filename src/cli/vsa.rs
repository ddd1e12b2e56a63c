//! `tollgate vsa check`: the consumer's checks of an SLSA Verification Summary Attestation
//! (see [`tollgate::policy::vsa`]), for a decision point that trusts a verifier's summary
//! instead of verifying the chain again.

use std::path::PathBuf;

use tollgate::fsio;
use tollgate::keyring::KeyRing;
use tollgate::limits::{Limit, Limits};
use tollgate::policy::vsa::{self, Checked, Expect, VsaError};

use super::failure::{Failure, INTERNAL, NOT_VERIFIED, USAGE};
use super::keyfile;

/// The `vsa` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Check a VSA as its consumer must: signed by a trusted key, about the artifact's digest
    /// and the resource, PASSED, by the expected verifier, recent enough. Exit 0 accepted,
    /// 1 refused (with the reason), 2 bad input.
    Check(CheckArgs),
}

/// Arguments of `vsa check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The VSA (a DSSE envelope, as `tollgate verify --vsa` writes it).
    file: PathBuf,
    /// A public key of the verifier; the VSA must be signed by one of them (repeatable).
    #[arg(long = "key", value_name = "PUB", required = true)]
    keys: Vec<PathBuf>,
    /// The digest of the artifact being decided about, ALGORITHM:HEX (e.g. sha256:ab12...).
    #[arg(long, value_name = "ALG:HEX", value_parser = parse_digest)]
    subject_digest: (String, String),
    /// The resource being decided about: the VSA's resourceUri must be exactly this.
    #[arg(long, value_name = "URI")]
    resource_uri: String,
    /// The verifier trusted: the VSA's verifier.id must be exactly this.
    #[arg(long, value_name = "URI")]
    verifier_id: Option<String>,
    /// The oldest VSA accepted, as an age: 90s, 10m, 24h, 7d or 2w.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    max_age: Option<chrono::Duration>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
}

/// Output formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    /// For people.
    Text,
    /// `{"accepted": true, "vsa": {what it states}}` or `{"accepted": false, "reason": ...}`.
    Json,
}

fn parse_digest(text: &str) -> Result<(String, String), String> {
    let (algorithm, hex) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?}: expected ALGORITHM:HEX, e.g. sha256:ab12..."))?;
    let algorithm_ok = !algorithm.is_empty()
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !algorithm_ok {
        return Err(format!(
            "{text:?}: {algorithm:?} is not a hash algorithm name"
        ));
    }
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{text:?}: the digest is not hex"));
    }
    if algorithm == "sha256" && hex.len() != 64 {
        return Err(format!(
            "{text:?}: a sha256 digest has 64 hex characters, this one {}",
            hex.len()
        ));
    }
    if hex.len() % 2 != 0 {
        return Err(format!(
            "{text:?}: the digest has an odd number of hex characters"
        ));
    }
    Ok((algorithm.to_owned(), hex.to_ascii_lowercase()))
}

fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    tollgate::duration::parse(text).map_err(|e| e.to_string())
}

/// Runs a `vsa` subcommand.
pub fn run(command: Command) -> Result<u8, Failure> {
    match command {
        Command::Check(args) => check(args),
    }
}

fn check(args: CheckArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let mut ring = KeyRing::new();
    for path in &args.keys {
        let key = keyfile::public_key(path)?;
        ring.insert(key.keyid(), key)
            .map_err(|e| Failure::new(USAGE, format!("{}: {e}", path.display())))?;
    }
    // The VSA is input: a file that cannot be read is bad input, whatever the reason.
    let bytes = fsio::read_capped(&args.file, limits.max_metadata_bytes, Limit::MetadataBytes)
        .map_err(|e| Failure::new(USAGE, e.to_string()))?;
    let expect = Expect {
        subject_digest: args.subject_digest.clone(),
        resource_uri: args.resource_uri.clone(),
        verifier_id: args.verifier_id.clone(),
        max_age: args.max_age,
        now: chrono::Utc::now(),
    };
    let shown = args.file.display();
    match vsa::check(&bytes, &ring, &expect, &limits) {
        Ok(checked) => {
            match args.format {
                Format::Json => print_json(serde_json::json!({"accepted": true, "vsa": checked}))?,
                Format::Text => print_text(&shown.to_string(), &checked),
            }
            Ok(0)
        }
        Err(err) => {
            let code = match err {
                VsaError::Envelope(_) => USAGE,
                _ => NOT_VERIFIED,
            };
            if let Format::Json = args.format {
                print_json(serde_json::json!({"accepted": false, "reason": err.to_string()}))?;
            }
            Err(Failure::new(code, format!("{shown}: VSA refused: {err}")))
        }
    }
}

fn print_json(value: serde_json::Value) -> Result<(), Failure> {
    let text =
        serde_json::to_string_pretty(&value).map_err(|e| Failure::new(INTERNAL, e.to_string()))?;
    println!("{text}");
    Ok(())
}

fn print_text(file: &str, checked: &Checked) {
    use super::failure::printable;
    let digests: Vec<String> = checked
        .subject_digest
        .iter()
        .map(|(algorithm, hex)| format!("{algorithm}:{hex}"))
        .collect();
    let lines = [
        format!("{file}: VSA accepted"),
        format!("  subject:  {} ({})", checked.subject, digests.join(", ")),
        format!("  resource: {}", checked.resource_uri),
        format!(
            "  verifier: {} (signed by {})",
            checked.verifier_id,
            checked.signers.join(", ")
        ),
        format!("  levels:   {}", checked.verified_levels.join(", ")),
        format!(
            "  verified: {} ({} ago)",
            checked.time_verified,
            age(checked.age_seconds)
        ),
    ];
    for line in lines {
        println!("{}", printable(&line));
    }
}

/// An age for people: `42s`, `5m 3s`, `2h 5m`, `3d 4h`.
fn age(seconds: i64) -> String {
    let (d, h, m, s) = (
        seconds / 86_400,
        seconds % 86_400 / 3_600,
        seconds % 3_600 / 60,
        seconds % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}
