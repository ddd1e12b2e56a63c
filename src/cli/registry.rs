//! `tollgate push` and `tollgate pull`: a bundle attached to an image in an OCI registry.

use std::path::PathBuf;

use tollgate::bundle::Bundle;
use tollgate::fsio;
use tollgate::limits::{Limit, Limits};
use tollgate::registry::{self, Client, ClientOptions, ImageRef, RegistryError};

use super::failure::{Failure, INTERNAL, NOT_VERIFIED, USAGE};

/// How to reach the registry (shared with `verify --image`).
#[derive(Debug, Clone, clap::Args)]
pub struct RegistryArgs {
    /// Speak plain HTTP to a registry on this machine (tests only; refused for any other).
    #[arg(long)]
    pub insecure_registry: bool,
    /// How long one request to the registry may take, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 120)]
    pub registry_timeout: u64,
}

/// Arguments of `tollgate push`.
#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The image the bundle attests: REGISTRY/REPOSITORY[:TAG|@sha256:DIGEST].
    image: String,
    /// The bundle (`tollgate bundle create`).
    #[arg(long, value_name = "FILE")]
    bundle: PathBuf,
    #[command(flatten)]
    registry: RegistryArgs,
}

/// Arguments of `tollgate pull`.
#[derive(Debug, clap::Args)]
pub struct PullArgs {
    /// The image whose attestation to fetch.
    image: String,
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
    #[command(flatten)]
    registry: RegistryArgs,
}

/// A registry error as a failure: no attestation is a verdict (exit 1), the rest bad input
/// or an unreachable registry.
pub fn failure(error: RegistryError) -> Failure {
    let code = match &error {
        RegistryError::NoAttestation { .. } | RegistryError::Digest { .. } => NOT_VERIFIED,
        RegistryError::Http { .. } | RegistryError::Transport { .. } => INTERNAL,
        _ => USAGE,
    };
    let message = match &error {
        RegistryError::NoAttestation { .. } => {
            format!("{error}: push one with `tollgate push IMAGE --bundle FILE`")
        }
        RegistryError::InsecureRemote(registry) => format!(
            "--insecure-registry is allowed only for a registry on this machine (localhost), not \
             {registry}"
        ),
        _ => error.to_string(),
    };
    Failure::new(code, message)
}

/// A client for `image`'s registry, saying so loudly when it is not over TLS.
pub fn client(image: &str, args: &RegistryArgs) -> Result<(ImageRef, Client), Failure> {
    let image = ImageRef::parse(image).map_err(failure)?;
    let limits = Limits::default();
    let options = ClientOptions {
        insecure: args.insecure_registry,
        max_bytes: limits.max_registry_bytes,
        timeout: std::time::Duration::from_secs(args.registry_timeout.max(1)),
    };
    let client = Client::new(&image, &options).map_err(failure)?;
    if args.insecure_registry {
        eprintln!(
            "WARNING: --insecure-registry: talking to {} over plain HTTP, without TLS",
            image.registry
        );
    }
    Ok((image, client))
}

/// Runs `tollgate push`.
pub fn push(args: PushArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let bytes = fsio::read_capped(
        &args.bundle,
        limits.max_metadata_bytes,
        Limit::MetadataBytes,
    )
    .map_err(Failure::fs)?;
    // Only a well-formed bundle is shipped.
    Bundle::from_bytes(&bytes, &limits)
        .map_err(|e| Failure::new(USAGE, format!("{}: {e}", args.bundle.display())))?;
    let (image, mut client) = client(&args.image, &args.registry)?;
    let (subject, artifact) = registry::push(&mut client, &image, &bytes).map_err(failure)?;
    eprintln!(
        "attached {} to {}/{}@{subject} as {artifact} (tag {})",
        args.bundle.display(),
        image.registry,
        image.repository,
        registry::fallback_tag(&subject)
    );
    Ok(0)
}

/// Runs `tollgate pull`.
pub fn pull(args: PullArgs) -> Result<u8, Failure> {
    let (image, mut client) = client(&args.image, &args.registry)?;
    let (subject, bytes) = registry::pull(&mut client, &image).map_err(failure)?;
    super::failure::write_output(&args.output, &bytes, args.overwrite)?;
    eprintln!(
        "wrote {}: the attestation of {}/{}@{subject} ({} bytes); verify it with \
         `tollgate verify --bundle {}`",
        args.output.display(),
        image.registry,
        image.repository,
        bytes.len(),
        args.output.display()
    );
    Ok(0)
}
