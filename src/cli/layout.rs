//! `tollgate layout`: write, build, check, show and sign layouts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::Utc;
use tollgate::authoring::check::{self, Finding, Severity};
use tollgate::authoring::source::{self, Compiled, SourceError};
use tollgate::authoring::{show, template};
use tollgate::diagram::{self, Syntax};
use tollgate::document::{self, SignOptions};
use tollgate::envelope::{Envelope, Format};
use tollgate::fsio::{self, Mode};
use tollgate::keyring::KeyRing;
use tollgate::keys::PrivateKey;
use tollgate::layout::Layout;
use tollgate::limits::{Limit, Limits};

use super::failure::{Failure, INTERNAL, NOT_VERIFIED, USAGE};
use super::keyfile::{self, PasswordArgs};

/// The `layout` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Write a commented layout source to start from.
    New(NewArgs),
    /// Compile a layout source (TOML) into a signed in-toto layout.
    Build(BuildArgs),
    /// Report errors and likely mistakes in a layout source or a signed layout.
    Check(CheckArgs),
    /// Print a layout for people: steps, who signs each, the rules, the inspections.
    Show(ShowArgs),
    /// Add an owner's signature to a layout, keeping the others.
    Sign(SignArgs),
}

/// Arguments of `layout new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// Which starting point.
    #[arg(long, default_value = "minimal", value_parser = clap::builder::PossibleValuesParser::new(template::NAMES))]
    template: String,
    /// Where to write it [default: standard output].
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
}

/// Arguments of `layout build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// The layout source (TOML).
    source: PathBuf,
    /// The owner's private key(s); each signs the layout.
    #[arg(short = 'k', long = "key", value_name = "KEY", num_args = 1.., required = true)]
    keys: Vec<PathBuf>,
    /// Where to write the signed layout [default: the source's name with .layout].
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Write a DSSE envelope instead of the classic one.
    #[arg(long)]
    dsse: bool,
    /// Replace the output file if it exists.
    #[arg(long)]
    overwrite: bool,
    /// Use a private key file that others can read.
    #[arg(long)]
    insecure_key_permissions: bool,
    #[command(flatten)]
    password: PasswordArgs,
}

/// Arguments of `layout check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// A layout source (.toml) or a layout file (signed or not).
    file: PathBuf,
    /// Owner public key(s): every one must have signed the layout.
    #[arg(short = 'k', long = "key", value_name = "PUB", num_args = 1..)]
    keys: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    format: OutputFormat,
    /// Fail on warnings too.
    #[arg(long)]
    deny_warnings: bool,
}

/// Arguments of `layout show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// A layout file (signed or not) or a layout source (.toml).
    file: PathBuf,
    /// Owner public key(s) to check the signatures with.
    #[arg(short = 'k', long = "key", value_name = "PUB", num_args = 1..)]
    keys: Vec<PathBuf>,
    /// Output format: text for people, or a picture of the chain (steps, inspections and an
    /// arrow per MATCH ... FROM rule) as a Mermaid flowchart (rendered by GitHub and GitLab in
    /// a ```mermaid block) or a Graphviz digraph (`dot -Tsvg`).
    #[arg(long, value_enum, default_value = "text")]
    format: ShowFormat,
}

/// Output formats of `layout show`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ShowFormat {
    /// For people.
    Text,
    /// A Mermaid flowchart.
    Mermaid,
    /// A Graphviz DOT digraph.
    Dot,
}

/// Arguments of `layout sign`.
#[derive(Debug, clap::Args)]
pub struct SignArgs {
    /// The layout file.
    file: PathBuf,
    /// The owner's private key(s) to add.
    #[arg(short = 'k', long = "key", value_name = "KEY", num_args = 1.., required = true)]
    keys: Vec<PathBuf>,
    /// Where to write it [default: in place].
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Use a private key file that others can read.
    #[arg(long)]
    insecure_key_permissions: bool,
    #[command(flatten)]
    password: PasswordArgs,
}

/// Output formats of `layout check`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum OutputFormat {
    /// For people.
    Text,
    /// The findings as a JSON array.
    Json,
}

/// Runs a `layout` subcommand.
pub fn run(command: Command) -> Result<u8, Failure> {
    match command {
        Command::New(args) => new(args),
        Command::Build(args) => build(args),
        Command::Check(args) => check(args),
        Command::Show(args) => show(args),
        Command::Sign(args) => sign(args),
    }
}

fn new(args: NewArgs) -> Result<u8, Failure> {
    let text = template::template(&args.template)
        .ok_or_else(|| Failure::new(USAGE, format!("no template {:?}", args.template)))?;
    match &args.output {
        None => print!("{text}"),
        Some(path) => {
            fsio::create_parents(path, Mode::Public).map_err(Failure::fs)?;
            fsio::write_atomic(path, text.as_bytes(), Mode::Public, false).map_err(Failure::fs)?;
            eprintln!(
                "wrote {}: edit it, then `tollgate layout build {} --key OWNER_KEY`",
                path.display(),
                path.display()
            );
        }
    }
    Ok(0)
}

/// Compiles a source file, reading functionary keys relative to its folder.
fn compile_file(path: &Path, limits: &Limits) -> Result<Compiled, Failure> {
    compile_source(path, limits)?
        .map_err(|e| Failure::new(USAGE, format!("{}: {e}", path.display())))
}

/// Compiles a source file: a failure when it cannot be read, else what the compiler said.
fn compile_source(path: &Path, limits: &Limits) -> Result<Result<Compiled, SourceError>, Failure> {
    let bytes = fsio::read_capped(path, limits.max_metadata_bytes, Limit::MetadataBytes)
        .map_err(Failure::fs)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Failure::new(USAGE, format!("{}: not UTF-8 text", path.display())))?;
    let folder = path.parent().unwrap_or(Path::new("")).to_owned();
    let mut key = |written: &str| {
        let file = folder.join(written);
        keyfile::public_key(&file).map_err(|f| f.message)
    };
    Ok(source::compile(&text, &mut key, Utc::now(), limits))
}

fn print_findings(findings: &[Finding]) {
    for finding in findings {
        eprintln!("{finding}");
    }
}

fn build(args: BuildArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let compiled = compile_file(&args.source, &limits)?;
    let findings = check::check(&compiled.layout, &compiled.declared, Utc::now());
    print_findings(&findings);
    if findings.iter().any(|f| f.severity == Severity::Error) {
        return Err(Failure::new(
            NOT_VERIFIED,
            format!("{}: not built: fix the errors above", args.source.display()),
        ));
    }
    let keys = private_keys(&args.keys, &args.password, args.insecure_key_permissions)?;
    let format = if args.dsse {
        Format::Dsse
    } else {
        Format::Classic
    };
    let mut envelope = Envelope::unsigned(compiled.layout.to_value(), format);
    for key in &keys {
        let keyid = key.public_key().keyid();
        if envelope.has_signature_from(&keyid) {
            return Err(Failure::new(USAGE, format!("key {keyid} is given twice")));
        }
        envelope
            .sign(key)
            .map_err(|e| Failure::new(INTERNAL, format!("signing: {e}")))?;
    }
    let output = args
        .output
        .clone()
        .unwrap_or_else(|| args.source.with_extension("layout"));
    super::failure::write_output(&output, &envelope.to_bytes(), args.overwrite)?;
    let layout = &compiled.layout;
    eprintln!(
        "built {}: {} step(s), {} inspection(s), {} functionary key(s); expires {}; signed by {} \
         key(s) ({} envelope)",
        output.display(),
        layout.steps.len(),
        layout.inspections.len(),
        layout.keys.len(),
        tollgate::timestamp::format(&layout.expires),
        keys.len(),
        format.name()
    );
    Ok(0)
}

fn private_keys(
    paths: &[PathBuf],
    password: &PasswordArgs,
    insecure: bool,
) -> Result<Vec<PrivateKey>, Failure> {
    paths
        .iter()
        .map(|path| keyfile::private_key(path, password, insecure))
        .collect()
}

fn is_source(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "toml")
}

/// A layout file's layout, the keyid hints of its signatures, and whether `keys` (when any
/// are given) all signed it. A layout that does not load or whose signatures fail is an error
/// finding, not a failure: `layout check` reports it.
struct Loaded {
    layout: Option<Layout>,
    signers: Vec<String>,
    findings: Vec<Finding>,
}

fn load_file(path: &Path, keys: &[PathBuf], limits: &Limits) -> Result<Loaded, Failure> {
    let bytes = fsio::read_capped(path, limits.max_metadata_bytes, Limit::MetadataBytes)
        .map_err(Failure::fs)?;
    let envelope = document::read_for_signing(&bytes, limits)
        .map_err(|e| Failure::new(USAGE, format!("{}: {e}", path.display())))?;
    let signers: Vec<String> = envelope
        .signatures()
        .iter()
        .map(|s| s.keyid.clone().unwrap_or_else(|| "(no keyid)".into()))
        .collect();
    let mut findings = Vec::new();
    if !keys.is_empty() {
        let mut ring = KeyRing::new();
        for key in keys {
            let public = keyfile::public_key(key)?;
            ring.insert(public.keyid(), public)
                .map_err(|e| Failure::new(USAGE, format!("{}: {e}", key.display())))?;
        }
        if let Err(e) = envelope.verify(&ring, ring.len()) {
            findings.push(Finding::error(format!(
                "signatures: {e}: every owner key given must have signed the layout"
            )));
        }
    } else if signers.is_empty() {
        findings.push(Finding {
            severity: Severity::Warning,
            location: None,
            message: "the layout is not signed: sign it with `tollgate layout sign`".into(),
        });
    }
    let payload = envelope
        .unverified_payload()
        .map_err(|e| Failure::new(USAGE, format!("{}: {e}", path.display())))?;
    let layout = match Layout::from_value(&payload, limits) {
        Ok(layout) => Some(layout),
        Err(e) => {
            findings.push(Finding::error(format!("the layout does not load: {e}")));
            None
        }
    };
    Ok(Loaded {
        layout,
        signers,
        findings,
    })
}

fn check(args: CheckArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let now = Utc::now();
    let findings = if is_source(&args.file) {
        if !args.keys.is_empty() {
            return Err(Failure::new(
                USAGE,
                "--key checks a signed layout's signatures; a source has none",
            ));
        }
        let file = args.file.display();
        match compile_source(&args.file, &limits) {
            Ok(Ok(compiled)) => check::check(&compiled.layout, &compiled.declared, now),
            // Every unreadable key file, one finding each.
            Ok(Err(SourceError::Keys { keys })) => keys
                .iter()
                .map(|problem| Finding::error(format!("{file}: {problem}")))
                .collect(),
            Ok(Err(e)) => vec![Finding::error(format!("{file}: {e}"))],
            Err(failure) => vec![Finding::error(failure.message)],
        }
    } else {
        let loaded = load_file(&args.file, &args.keys, &limits)?;
        let mut findings = loaded.findings;
        if let Some(layout) = &loaded.layout {
            findings.extend(check::check(layout, &Default::default(), now));
        }
        findings.sort_by_key(|f| f.severity);
        findings
    };
    let errors = findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = findings.len() - errors;
    match args.format {
        OutputFormat::Json => {
            let text = serde_json::to_string_pretty(&findings)
                .map_err(|e| Failure::new(INTERNAL, e.to_string()))?;
            println!("{text}");
        }
        OutputFormat::Text => {
            for finding in &findings {
                println!("{finding}");
            }
            println!(
                "{}: {errors} error(s), {warnings} warning(s)",
                args.file.display()
            );
        }
    }
    Ok(if errors > 0 || (args.deny_warnings && warnings > 0) {
        NOT_VERIFIED
    } else {
        0
    })
}

fn show(args: ShowArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let now = Utc::now();
    let mut key_files = BTreeMap::new();
    let (layout, signers, checked) = if is_source(&args.file) {
        let compiled = compile_file(&args.file, &limits)?;
        key_files = compiled.key_files;
        (compiled.layout, Vec::new(), false)
    } else {
        let loaded = load_file(&args.file, &args.keys, &limits)?;
        if let Some(error) = loaded
            .findings
            .iter()
            .find(|f| f.severity == Severity::Error)
        {
            return Err(Failure::new(
                NOT_VERIFIED,
                format!("{}: {}", args.file.display(), error.message),
            ));
        }
        let layout = loaded
            .layout
            .ok_or_else(|| Failure::new(INTERNAL, "a layout that loaded went missing"))?;
        (layout, loaded.signers, !args.keys.is_empty())
    };
    let text = match args.format {
        ShowFormat::Text => {
            let checked = if checked {
                show::Signatures::Verified
            } else {
                show::Signatures::NotVerified {
                    how_to_check: "pass --key to check them",
                }
            };
            show::describe(&layout, &signers, checked, now)
        }
        ShowFormat::Mermaid => diagram::layout(&layout, &key_files, Syntax::Mermaid),
        ShowFormat::Dot => diagram::layout(&layout, &key_files, Syntax::Dot),
    };
    print!("{text}");
    Ok(0)
}

fn sign(args: SignArgs) -> Result<u8, Failure> {
    let limits = Limits::default();
    let bytes = fsio::read_capped(&args.file, limits.max_metadata_bytes, Limit::MetadataBytes)
        .map_err(Failure::fs)?;
    let is_layout = document::read_for_signing(&bytes, &limits)
        .and_then(|e| Ok(e.unverified_payload()?))
        .is_ok_and(|p| p.get("_type").and_then(|t| t.as_str()) == Some("layout"));
    if !is_layout {
        return Err(Failure::new(
            USAGE,
            format!(
                "{}: not a layout (links are signed when they are recorded)",
                args.file.display()
            ),
        ));
    }
    let keys = private_keys(&args.keys, &args.password, args.insecure_key_permissions)?;
    let options = SignOptions {
        format: None,
        append: true,
    };
    let signed = document::sign(&bytes, &keys, options, &limits)
        .map_err(|e| Failure::document(&args.file, e))?;
    let output = args.output.clone().unwrap_or_else(|| args.file.clone());
    fsio::create_parents(&output, Mode::Public).map_err(Failure::fs)?;
    fsio::write_atomic(&output, &signed.envelope.to_bytes(), Mode::Public, true)
        .map_err(Failure::fs)?;
    eprintln!(
        "{}: added {} signature(s); {} in all",
        output.display(),
        signed.signed_by.len(),
        signed.envelope.signatures().len()
    );
    Ok(0)
}
