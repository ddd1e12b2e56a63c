//! `tollgate verify`: check a supply chain against its layout (the work of `in-toto-verify`,
//! whose spellings are accepted too).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use tollgate::artifact::DigestSet;
use tollgate::bundle::Bundle;
use tollgate::diagram::{self, Syntax};
use tollgate::fsio;
use tollgate::keyring::KeyRing;
use tollgate::keys::PrivateKey;
use tollgate::limits::{Limit, Limits};
use tollgate::policy::vsa::{self, Summary};
use tollgate::verify::report::{Evidence, Report, Warning};
use tollgate::verify::rules::ListOutcome;
use tollgate::verify::{self, VerifyOptions};

use super::failure::{Failure, INTERNAL, NOT_VERIFIED, USAGE, printable};
use super::keyfile::{self, PasswordArgs};

/// Arguments of `tollgate verify`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The signed layout [in-toto: -l/--layout].
    #[arg(
        short = 'l',
        long,
        value_name = "FILE",
        required_unless_present_any = ["bundle", "image"],
        conflicts_with_all = ["bundle", "image"]
    )]
    layout: Option<PathBuf>,
    /// Verify the layout and links inside a bundle (`tollgate bundle create`) instead.
    #[arg(long, value_name = "FILE", conflicts_with = "link_dir")]
    bundle: Option<PathBuf>,
    /// Verify the image REGISTRY/REPOSITORY[:TAG|@DIGEST]: pull the bundle attached to it
    /// (`tollgate push`), verify it, and check that the image's digest is among the products
    /// of the chain.
    #[cfg(feature = "registry")]
    #[arg(long, value_name = "IMAGE", conflicts_with_all = ["bundle", "link_dir"])]
    image: Option<String>,
    #[cfg(feature = "registry")]
    #[command(flatten)]
    registry: super::registry::RegistryArgs,
    /// The owner's public key(s); every one must have signed the layout
    /// [in-toto: --verification-keys].
    #[arg(
        short = 'k',
        long = "layout-key",
        aliases = ["verification-keys", "layout-keys"],
        value_name = "PUB",
        num_args = 1..,
        required_unless_present_any = ["gpg", "gpg_home"]
    )]
    layout_keys: Vec<PathBuf>,
    #[command(flatten)]
    gpg: super::keyfile::GpgArgs,
    #[command(flatten)]
    key_type: super::keyfile::KeyTypeArgs,
    /// Print nothing: the exit code says it (0 verified, 1 not) [in-toto: -q/--quiet].
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    quiet: bool,
    /// Accepted for in-toto-verify's command lines; Tollgate always reports each step
    /// [in-toto: -v/--verbose].
    #[arg(short = 'v', long)]
    verbose: bool,
    /// The folder holding the links [in-toto: --link-dir].
    #[arg(long, value_name = "DIR", default_value = ".")]
    link_dir: PathBuf,
    /// A value for a `{NAME}` parameter in the layout.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: Format,
    /// How long each inspection may run, in seconds (in-toto-verify's default is 10)
    /// [in-toto: --inspection-timeout].
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    inspection_timeout: u64,
    /// The folder the inspections run on, in a scratch copy that leaves it untouched [default:
    /// the working directory].
    #[arg(long, value_name = "DIR")]
    workdir: Option<PathBuf>,
    /// The SHA-256 the layout file must have (hex, optionally `sha256:`-prefixed): pins this
    /// layout, so that an older one its owner signed cannot be replayed.
    #[arg(long, value_name = "SHA256")]
    layout_digest: Option<String>,
    /// Fail when a MATCH, CREATE, DELETE, MODIFY or ALLOW rule matches no artifact (by default
    /// a warning): a typo in a pattern then cannot pass unnoticed.
    #[arg(long)]
    strict_rules: bool,
    /// Check the expiry against this time instead of now (YYYY-MM-DDTHH:MM:SSZ), for audits;
    /// the report records the time used.
    #[arg(long, value_name = "TIME")]
    reference_time: Option<String>,
    /// The most bytes of files the working folder (`--workdir`) may hold: it is sized before
    /// it is copied for the inspections, and a larger one stops verification at once (exit 2).
    #[arg(long, value_name = "BYTES", default_value_t = Limits::DEFAULT.max_workdir_bytes)]
    max_workdir_bytes: u64,
    /// The most files, folders and symlinks the working folder may hold, likewise.
    #[arg(long, value_name = "N", default_value_t = Limits::DEFAULT.max_workdir_files)]
    max_workdir_files: usize,
    /// After a pass (never after a failure), write a signed SLSA Verification Summary
    /// Attestation (VSA) here, replacing any file there: needs --vsa-key, --verifier-id and
    /// --resource-uri. It states the level TOLLGATE_LAYOUT_PASSED (no SLSA build level is
    /// claimed). Check one with `tollgate vsa check`.
    #[arg(
        long,
        value_name = "OUT",
        requires_all = ["vsa_key", "verifier_id", "resource_uri"]
    )]
    vsa: Option<PathBuf>,
    /// The verifier's private key, to sign the VSA with (read before verifying).
    #[arg(long, value_name = "KEY", requires = "vsa")]
    vsa_key: Option<PathBuf>,
    /// The verifier's identity in the VSA (verifier.id), a URI.
    #[arg(long, value_name = "URI", requires = "vsa")]
    verifier_id: Option<String>,
    /// The resource the VSA is about (resourceUri), e.g. the URI the release is published at.
    #[arg(long, value_name = "URI", requires = "vsa")]
    resource_uri: Option<String>,
    /// Name the VSA's subjects: artifacts among the verified steps' products (the latest step
    /// that produced each) [default: every product of the layout's last step; with --image,
    /// the image].
    #[arg(long, value_name = "ARTIFACT", num_args = 1.., requires = "vsa")]
    vsa_subject: Vec<String>,
}

impl Args {
    /// The file verified: the bundle, or the layout (or the image's attestation).
    fn source(&self) -> &std::path::Path {
        self.bundle
            .as_deref()
            .or(self.layout.as_deref())
            .unwrap_or(std::path::Path::new("the image's attestation"))
    }
}

/// Input that cannot be verified (exit 2), with the flag that fixes it where there is one.
fn input_failure(args: &Args, err: verify::VerifyError) -> Failure {
    match &err {
        verify::VerifyError::Folder { role, .. } => {
            let flag = match role {
                verify::FolderRole::Links => "--link-dir",
                _ => "--workdir",
            };
            Failure::new(USAGE, format!("{flag}: {err}"))
                .hint(format!("check the path given to {flag}"))
        }
        verify::VerifyError::WorkdirTooLarge { limit, .. } => {
            let flag = match limit {
                Limit::WorkdirFiles => "--max-workdir-files",
                _ => "--max-workdir-bytes",
            };
            let folder = if args.workdir.is_some() {
                "the given --workdir"
            } else {
                "the current folder (the default --workdir)"
            };
            Failure::new(USAGE, err.to_string()).hint(format!(
                "{folder} is copied for the inspections: pass --workdir DIR naming the folder \
                 that holds only the received product, or raise the limit with {flag} N"
            ))
        }
        verify::VerifyError::Params(verify::params::ParamError::Missing(name)) => Failure::new(
            USAGE,
            format!(
                "{}: parameters: the layout uses {{{name}}}, but no --param {name}=VALUE was given",
                args.source().display()
            ),
        ),
        _ => Failure::new(USAGE, format!("{}: {err}", args.source().display())),
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Format {
    /// For people.
    Text,
    /// The whole report, for pipelines.
    Json,
    /// The layout as a Mermaid flowchart, passing steps green, the failing one and the rule
    /// that refused red (see `layout show --format mermaid`).
    Mermaid,
    /// The same picture as a Graphviz DOT digraph.
    Dot,
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?}: expected NAME=VALUE"))
}

/// The VSA's signing key, read before verifying so that a bad key stops at once.
fn vsa_key(args: &Args) -> Result<Option<PrivateKey>, Failure> {
    let (Some(_), Some(path)) = (&args.vsa, &args.vsa_key) else {
        return Ok(None);
    };
    #[cfg(feature = "registry")]
    if args.image.is_some() && !args.vsa_subject.is_empty() {
        return Err(Failure::new(
            USAGE,
            "--vsa-subject names artifacts of a chain; with --image the VSA is about the image",
        )
        .hint("drop --vsa-subject, or verify the bundle with --bundle to name artifacts"));
    }
    if let Some(id) = &args.verifier_id
        && !id.contains(':')
    {
        return Err(Failure::new(
            USAGE,
            format!("--verifier-id {id:?}: a URI is expected"),
        ));
    }
    let no_password = PasswordArgs {
        password_file: None,
        password_env: None,
        password: None,
        prompt: false,
    };
    keyfile::private_key(path, &no_password, false).map(Some)
}

/// Writes the VSA of a verification that passed: its subjects from the verified chain.
fn write_vsa(
    args: &Args,
    report: &Report,
    now: chrono::DateTime<chrono::Utc>,
    image: Option<(&str, &str)>,
    key: &PrivateKey,
) -> Result<(), Failure> {
    let (Some(out), Some(verifier_id), Some(resource_uri)) =
        (&args.vsa, &args.verifier_id, &args.resource_uri)
    else {
        return Ok(());
    };
    let evidence = report
        .evidence
        .as_ref()
        .ok_or_else(|| Failure::new(INTERNAL, "verification kept no evidence to summarise"))?;
    let subjects = vsa_subjects(args, report, evidence, image)?;
    let policy_uri = match (image, &args.bundle, &args.layout) {
        (Some((reference, _)), _, _) => Some(reference.to_owned()),
        (None, Some(file), _) | (None, None, Some(file)) => file
            .file_name()
            .map(|name| name.to_string_lossy().into_owned()),
        (None, None, None) => None,
    };
    let summary = Summary {
        verifier_id: verifier_id.clone(),
        resource_uri: resource_uri.clone(),
        time_verified: now,
        policy_uri,
        policy_sha256: evidence.layout_sha256.clone(),
        inputs: evidence.inputs.clone(),
        verified_levels: vec![vsa::LEVEL_LAYOUT_PASSED.to_owned()],
        subjects,
    };
    let bytes = vsa::sign(&summary, key)
        .map_err(|e| Failure::new(INTERNAL, format!("--vsa {}: {e}", out.display())))?;
    super::failure::write_output(out, &bytes, true)?;
    if !args.quiet {
        eprintln!(
            "wrote {}: a VSA for {} subject(s), resting on {} file(s), signed by {}",
            out.display(),
            summary.subjects.len(),
            summary.inputs.len(),
            key.public_key().keyid().short()
        );
    }
    Ok(())
}

/// The VSA's subjects: the image; or the named artifacts, each from the latest step (in
/// layout order) that produced it; or every product of the layout's last step.
fn vsa_subjects(
    args: &Args,
    report: &Report,
    evidence: &Evidence,
    image: Option<(&str, &str)>,
) -> Result<Vec<(String, DigestSet)>, Failure> {
    if let Some((reference, digest)) = image {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        let digests = DigestSet::new(
            reference,
            BTreeMap::from([("sha256".to_owned(), hex.to_ascii_lowercase())]),
        )
        .map_err(|e| Failure::new(INTERNAL, format!("the image's digest: {e}")))?;
        return Ok(vec![(reference.to_owned(), digests)]);
    }
    if args.vsa_subject.is_empty() {
        let last = evidence.last_step.as_deref().unwrap_or_default();
        let products = evidence
            .products
            .get(last)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                Failure::new(
                    USAGE,
                    format!(
                        "--vsa: the layout's last step {last:?} recorded no products to name \
                         as the VSA's subjects"
                    ),
                )
                .hint("name the subjects with --vsa-subject ARTIFACT")
            })?;
        return Ok(products
            .iter()
            .map(|(name, digests)| (name.as_str().to_owned(), digests.clone()))
            .collect());
    }
    let mut subjects: Vec<(String, DigestSet)> = Vec::new();
    for name in &args.vsa_subject {
        if subjects.iter().any(|(n, _)| n == name) {
            continue;
        }
        let found = report
            .steps
            .iter()
            .rev()
            .find_map(|step| evidence.products.get(&step.name)?.get(name));
        let Some(digests) = found else {
            return Err(Failure::new(
                USAGE,
                format!(
                    "--vsa-subject {name:?}: no verified step produced an artifact of that name; \
                     nothing was written"
                ),
            )
            .hint("name an artifact exactly as the links record it (see the steps' products)"));
        };
        subjects.push((name.clone(), digests.clone()));
    }
    Ok(subjects)
}

/// Runs `tollgate verify`; returns 0 when the chain verified, 1 when it did not.
pub fn run(args: Args) -> Result<u8, Failure> {
    args.gpg
        .refuse("the layout owner's PEM public key with --verification-keys PUB")?;
    args.key_type.note();
    let vsa_key = vsa_key(&args)?;
    let limits = Limits {
        max_workdir_bytes: args.max_workdir_bytes,
        max_workdir_files: args.max_workdir_files,
        ..Limits::default()
    };
    let mut ring = KeyRing::new();
    for path in &args.layout_keys {
        let key = keyfile::public_key(path)?;
        ring.insert(key.keyid(), key)
            .map_err(|e| Failure::new(USAGE, format!("{}: {e}", path.display())))?;
    }
    #[cfg(feature = "registry")]
    let image = match &args.image {
        Some(reference) => {
            let (image, mut client) = super::registry::client(reference, &args.registry)?;
            let (digest, bytes) =
                tollgate::registry::pull(&mut client, &image).map_err(super::registry::failure)?;
            let bundle = Bundle::from_bytes(&bytes, &limits).map_err(|e| {
                Failure::new(NOT_VERIFIED, format!("the attestation of {reference}: {e}"))
            })?;
            Some((digest, bundle))
        }
        None => None,
    };
    #[cfg(not(feature = "registry"))]
    let image: Option<(String, Bundle)> = None;
    let image_digest = image.as_ref().map(|(digest, _)| digest.clone());
    #[cfg(feature = "registry")]
    let image_reference = args.image.clone();
    #[cfg(not(feature = "registry"))]
    let image_reference: Option<String> = None;
    let (bytes, bundle) = match (&args.bundle, &args.layout) {
        _ if image.is_some() => {
            let bundle = image
                .map(|(_, bundle)| bundle)
                .ok_or_else(|| Failure::new(INTERNAL, "the pulled bundle went missing"))?;
            (bundle.layout.clone(), Some(std::sync::Arc::new(bundle)))
        }
        (Some(file), _) => {
            let bytes = fsio::read_capped(file, limits.max_metadata_bytes, Limit::MetadataBytes)
                .map_err(Failure::fs)?;
            let bundle = Bundle::from_bytes(&bytes, &limits)
                .map_err(|e| Failure::new(USAGE, format!("{}: {e}", file.display())))?;
            (bundle.layout.clone(), Some(std::sync::Arc::new(bundle)))
        }
        (None, Some(layout)) => (
            fsio::read_capped(layout, limits.max_metadata_bytes, Limit::MetadataBytes)
                .map_err(Failure::fs)?,
            None,
        ),
        (None, None) => return Err(Failure::new(USAGE, "give --layout or --bundle")),
    };
    let mut options = match bundle {
        Some(bundle) => bundle.verify_options(),
        None => VerifyOptions::new(&args.link_dir),
    };
    options.image_digest = image_digest.clone();
    options.keep_evidence = vsa_key.is_some();
    options.parameters = args.params.iter().cloned().collect::<BTreeMap<_, _>>();
    options.inspection_timeout = Duration::from_secs(args.inspection_timeout);
    options.workdir = args.workdir.clone();
    options.layout_digest = args.layout_digest.clone();
    options.strict_rules = args.strict_rules;
    options.limits = limits;
    if let Some(time) = &args.reference_time {
        options.now = tollgate::timestamp::parse(time)
            .map_err(|e| Failure::new(USAGE, format!("--reference-time: {e}")))?;
    }
    let report = verify::verify(&bytes, &ring, &options).map_err(|e| input_failure(&args, e))?;
    if let Some(key) = &vsa_key
        && report.passed()
    {
        let image = image_reference.as_deref().zip(image_digest.as_deref());
        write_vsa(&args, &report, options.now, image, key)?;
    }
    match args.format {
        Format::Json => {
            let text = serde_json::to_string_pretty(&report)
                .map_err(|e| Failure::new(INTERNAL, e.to_string()))?;
            println!("{text}");
        }
        Format::Text if args.quiet => {}
        Format::Text => print_text(&report, &args),
        Format::Mermaid | Format::Dot => {
            let syntax = match args.format {
                Format::Dot => Syntax::Dot,
                _ => Syntax::Mermaid,
            };
            let layout = diagram::verified_layout(&bytes, &ring, &report, &options);
            let names = BTreeMap::new();
            print!(
                "{}",
                diagram::verification(layout.as_ref(), &report, &names, syntax)
            );
            for warning in &report.warnings {
                eprintln!("warning: {}", printable(&warning_text(warning)));
            }
            if let Some(failure) = &report.failure {
                eprintln!(
                    "tollgate: verification FAILED: {}",
                    printable(&failure.reason)
                );
            }
        }
    }
    Ok(if report.passed() { 0 } else { NOT_VERIFIED })
}

fn print_text(report: &Report, args: &Args) {
    for warning in &report.warnings {
        eprintln!("warning: {}", printable(&warning_text(warning)));
    }
    if let Some(failure) = &report.failure {
        // The same per-step summary as on success (and in the demo), on stderr with the
        // verdict: what passed, and the check that failed, marked.
        eprintln!(
            "tollgate: verification FAILED: {}",
            printable(&failure.reason)
        );
        for line in item_lines(report) {
            eprintln!("  {}", printable(&line));
        }
        return;
    }
    println!(
        "{}: verified: {} step(s) and {} inspection(s) passed; layout valid until {}",
        args.source().display(),
        report.steps.len(),
        report.inspections.len(),
        report.expires.as_deref().unwrap_or("?")
    );
    for line in item_lines(report) {
        println!("  {}", printable(&line));
    }
}

fn warning_text(warning: &Warning) -> String {
    match &warning.item {
        Some(item) => format!("{item}: {}", warning.message),
        None => warning.message.clone(),
    }
}

/// How far an item of the report got: `ok`, `FAILED` (the check that failed, or a rule list
/// that refused something), or `-` (verification stopped before its rules were checked).
/// The mark, and what to add to the line.
fn mark(report: &Report, name: &str, rules: &[ListOutcome]) -> (&'static str, &'static str) {
    let failed_here = report
        .failure
        .as_ref()
        .is_some_and(|f| f.item.as_deref() == Some(name));
    if failed_here || rules.iter().any(|r| r.failure.is_some()) {
        ("FAILED", "")
    } else if rules.is_empty() && report.failure.is_some() {
        ("-     ", "; its rules were not checked")
    } else {
        ("ok    ", "")
    }
}

/// A line for each rule list that refused something, naming the artifacts.
fn rule_lines(rules: &[ListOutcome], lines: &mut Vec<String>) {
    for failure in rules.iter().filter_map(|r| r.failure.as_ref()) {
        lines.push(format!(
            "          {} rule {} ({}) refused:",
            failure.side.name(),
            failure.number,
            failure.rule
        ));
        for refused in &failure.refused {
            let what = refused
                .summary
                .clone()
                .unwrap_or_else(|| refused.artifact.clone());
            lines.push(format!("            {what}"));
        }
        if failure.artifacts.len() > failure.refused.len() {
            lines.push(format!(
                "            and {} more",
                failure.artifacts.len() - failure.refused.len()
            ));
        }
    }
}

/// A line per step and inspection, as far as verification got, each marked `ok`, `FAILED` or
/// `-` (not checked), with the files a failing step ignored and what each refusing rule
/// found.
fn item_lines(report: &Report) -> Vec<String> {
    let mut lines = Vec::new();
    for step in &report.steps {
        let signers: Vec<&str> = step.signers.iter().map(|k| &k[..k.len().min(8)]).collect();
        let signers = if signers.is_empty() {
            "none".to_owned()
        } else {
            signers.join(", ")
        };
        let (mark, note) = mark(report, &step.name, &step.rules);
        let links = if step.threshold == 0 && step.accepted_keys.is_empty() {
            "attestations only, no link".to_owned()
        } else {
            format!(
                "{} of {} required key(s) signed ({})",
                step.signers.len(),
                step.threshold,
                signers
            )
        };
        lines.push(format!("{mark} step {}: {links}{note}", step.name));
        if step.signers.len() < step.threshold {
            for link in &step.links {
                if let Some(reason) = &link.reason {
                    lines.push(format!("          ignored {}: {reason}", link.file));
                }
            }
        }
        for predicate in &step.predicates {
            let short: Vec<&str> = predicate
                .signers
                .iter()
                .map(|k| &k[..k.len().min(8)])
                .collect();
            lines.push(format!(
                "          {}: {} of {} required attestation(s) passed every rule ({})",
                predicate.predicate_type,
                predicate.signers.len(),
                predicate.threshold,
                if short.is_empty() {
                    "none".to_owned()
                } else {
                    short.join(", ")
                }
            ));
            for attestation in predicate.attestations.iter().filter(|a| !a.accepted) {
                if let Some(reason) = &attestation.reason {
                    lines.push(format!(
                        "            refused {}: {reason}",
                        attestation.file
                    ));
                }
            }
        }
        rule_lines(&step.rules, &mut lines);
    }
    for inspection in &report.inspections {
        let ran = match inspection.return_value {
            Some(code) => format!("exited {code}"),
            None => "did not run".into(),
        };
        let (mark, note) = mark(report, &inspection.name, &inspection.rules);
        lines.push(format!(
            "{mark} inspection {}: `{}` {ran}{note}",
            inspection.name,
            inspection.run.join(" ")
        ));
        rule_lines(&inspection.rules, &mut lines);
    }
    lines
}

/// The whole report as lines for people: the verdict first, then the steps and inspections,
/// then the warnings.
pub(super) fn describe(report: &Report) -> Vec<String> {
    let mut lines = vec![match &report.failure {
        Some(failure) => format!("FAIL: {}", failure.reason),
        None => format!(
            "PASS: {} step(s) and {} inspection(s) passed; layout valid until {}",
            report.steps.len(),
            report.inspections.len(),
            report.expires.as_deref().unwrap_or("?")
        ),
    }];
    lines.extend(item_lines(report).into_iter().map(|l| format!("  {l}")));
    lines.extend(
        report
            .warnings
            .iter()
            .map(|w| format!("warning: {}", warning_text(w))),
    );
    lines
        .into_iter()
        .map(|l| printable(&l).into_owned())
        .collect()
}
