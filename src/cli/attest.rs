//! `tollgate attest`: a tool's JSON output signed as an in-toto attestation bound to a step.
//! The work is the library's ([`tollgate::record::attest`]); this reads the flags, loads the
//! key, writes the file atomically and words the errors.

use std::path::PathBuf;

use tollgate::fsio::FsError;
use tollgate::name::StepName;
use tollgate::record::{self, AttestError, AttestOptions};

use super::failure::{self, Failure, INTERNAL, USAGE};
use super::record::{ArtifactArgs, KeyArgs, load_key};

/// Arguments of `tollgate attest`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Attestations are always DSSE envelopes holding an in-toto Statement v1 \
    whose every subject carries the annotation \"tollgate.dev/step\": STEP, so that it counts \
    for that step only. The file is written as DIR/STEP.KEYID8.SLUG.intoto.json and its path \
    printed.\n\nShort predicate types: cyclonedx, spdx, vulns, test-result, provenance, vsa, \
    link."
)]
pub struct Args {
    /// The step the attestation is for, as the layout names it.
    #[arg(short = 'n', long = "step", value_name = "STEP")]
    step: String,
    /// The predicate type: a URI, or a short name (cyclonedx, spdx, vulns, test-result,
    /// provenance, vsa, link).
    #[arg(long, value_name = "URI|SHORT")]
    predicate_type: String,
    /// The tool's JSON output (one JSON object): an SBOM, a scan report, test results.
    #[arg(long, value_name = "FILE")]
    predicate: PathBuf,
    /// The artifacts the predicate is about, named and hashed as `tollgate run -p` names
    /// products: paths relative to the base path, or dir:, oci:, git: URIs.
    #[arg(long = "subject", value_name = "ARTIFACT", num_args = 1.., required = true)]
    subjects: Vec<String>,
    #[command(flatten)]
    key: KeyArgs,
    /// The folder to write the attestation into (created if missing) [default: the working
    /// folder].
    #[arg(short = 'd', long = "metadata-directory", value_name = "DIR")]
    metadata_directory: Option<PathBuf>,
    /// Accepted for symmetry with `run`: attestations are always DSSE.
    #[arg(long = "dsse", alias = "use-dsse")]
    dsse: bool,
    /// Replace an existing attestation of the same name.
    #[arg(long)]
    overwrite: bool,
    #[command(flatten)]
    artifacts: ArtifactArgs,
}

/// Runs `tollgate attest`.
pub fn run(args: Args) -> Result<u8, Failure> {
    let step =
        StepName::new(&args.step).map_err(|e| Failure::new(USAGE, format!("--step: {e}")))?;
    let key = load_key(&args.key)?;
    let options = AttestOptions {
        step,
        predicate_type: args.predicate_type.clone(),
        predicate: args.predicate.clone(),
        subjects: args.subjects.clone(),
        record: args.artifacts.options(None),
    };
    let attested = record::attest(&options, &key).map_err(attest_failure)?;
    let path = args
        .metadata_directory
        .as_deref()
        .unwrap_or(std::path::Path::new(""))
        .join(&attested.file_name);
    failure::write_output(&path, &attested.bytes, args.overwrite)?;
    if !args.artifacts.quiet() {
        eprintln!(
            "attested {} subject(s) for step {} ({})",
            attested.subjects.len(),
            args.step,
            attested.predicate_type
        );
    }
    println!("{}", failure::printable(&path.display().to_string()));
    Ok(0)
}

fn attest_failure(err: AttestError) -> Failure {
    match &err {
        AttestError::ReadPredicate(FsError::Io { source, .. })
            if source.kind() != std::io::ErrorKind::NotFound =>
        {
            Failure::new(INTERNAL, err.to_string())
        }
        AttestError::ReadPredicate(_) => Failure::new(USAGE, err.to_string()).hint(
            "pass with --predicate the JSON file the tool wrote (for example `syft -o \
             cyclonedx-json=sbom.json`)",
        ),
        AttestError::PredicateType(_) => Failure::new(USAGE, format!("--predicate-type: {err}")),
        AttestError::Record(source) => Failure::new(
            USAGE,
            format!(
                "recording the subjects: {}",
                failure::record_message(source)
            ),
        ),
        AttestError::Sign(_) => Failure::new(INTERNAL, err.to_string()),
        _ => Failure::new(USAGE, err.to_string()),
    }
}
