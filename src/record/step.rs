//! The three ways to record a step, as the reference offers them: `run` (materials, command,
//! products in one go), `start` and `stop` (a step spanning several jobs, with a signed
//! unfinished link in between), and `mock` (unsigned, to try a layout out). Links are written
//! atomically: a link under its final name is complete and signed, or absent (THREATS J1, J2).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::{
    CommandError, CommandOptions, RecordError, RecordOptions, Recorded, Revision, environment_with,
    record_artifacts, run_command,
};
use crate::base::fsio::{self, FsError, Mode};
use crate::base::limits::Limit;
use crate::model::artifact::Artifacts;
use crate::model::envelope::{Envelope, EnvelopeError, Format};
use crate::model::files::{link_file_name, unfinished_file_name};
use crate::model::keyring::KeyRing;
use crate::model::keys::PrivateKey;
use crate::model::link::{Link, LinkError};
use crate::model::name::StepName;

/// Why a step could not be recorded. No link is written after any of these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// Recording the materials or products failed.
    #[error("recording {side}: {source}")]
    Record {
        /// `materials` or `products`.
        side: &'static str,
        /// The cause.
        #[source]
        source: RecordError,
    },
    /// The command could not be run.
    #[error(transparent)]
    Command(#[from] CommandError),
    /// Signing the link failed.
    #[error("signing the link: {0}")]
    Sign(#[source] EnvelopeError),
    /// The link cannot be written as a Statement.
    #[error("writing the link as an in-toto Statement: {0}")]
    Statement(#[source] crate::model::statement::StatementError),
    /// Writing the link failed.
    #[error(transparent)]
    Write(#[from] FsError),
    /// No unfinished link of [`start`] for this step and key, where [`stop`] looks.
    #[error(
        "{}: no unfinished link for step {step} in the working folder{}{}",
        .path.display(),
        .also_looked_in.as_ref().map(|f| format!(" nor in {}", f.display())).unwrap_or_default(),
        .finished.as_ref().map(|f| format!(" ({} is there: the step was finished)", f.display())).unwrap_or_default()
    )]
    NoUnfinished {
        /// The unfinished link file looked for in the working folder.
        path: PathBuf,
        /// The step.
        step: StepName,
        /// The output folder, also looked in, when it is not the working folder.
        also_looked_in: Option<PathBuf>,
        /// The step's finished link, when it is there.
        finished: Option<PathBuf>,
    },
    /// An unfinished link for this step and key both in the working folder and in the output
    /// folder: which one to finish is not clear.
    #[error(
        "{}: a second unfinished link for step {step}, besides {}",
        .path.display(),
        .other.display()
    )]
    TwoUnfinished {
        /// The unfinished link in the output folder.
        path: PathBuf,
        /// The one in the working folder.
        other: PathBuf,
        /// The step.
        step: StepName,
    },
    /// The unfinished link records another step.
    #[error("{}: it records step {found}, not {step}", .path.display())]
    OtherStep {
        /// The unfinished link file.
        path: PathBuf,
        /// The step it records.
        found: StepName,
        /// The step being finished.
        step: StepName,
    },
    /// The unfinished link of `record start` cannot be read, is not signed by this key, or is
    /// not a link.
    #[error("{}: {source}", .path.display())]
    UnfinishedInvalid {
        /// The unfinished link file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: UnfinishedError,
    },
}

/// Why an unfinished link that is there cannot be finished.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnfinishedError {
    /// It cannot be read.
    #[error(transparent)]
    Read(FsError),
    /// The signing key cannot be made into a key ring to check it.
    #[error(transparent)]
    Key(crate::model::keyring::KeyRingError),
    /// It is not an envelope signed by this key.
    #[error("not signed by this key: {0}")]
    Signature(#[source] EnvelopeError),
    /// Its payload is not a link.
    #[error(transparent)]
    Link(LinkError),
}

/// What recording left besides the link.
#[derive(Debug, Default)]
pub struct Notes {
    /// Symlinks to folders that were not followed.
    pub unfollowed_symlink_dirs: Vec<String>,
    /// Given paths that did not exist (with `allow_missing`).
    pub missing: Vec<String>,
    /// The git revision each side recorded (`materials`, `products`).
    pub git: Vec<(&'static str, Revision)>,
}

impl Notes {
    /// The link's `environment`, with the git revisions recorded.
    fn environment(&self, options: &RecordOptions) -> Map<String, Value> {
        let revisions: Vec<(&str, &Revision)> =
            self.git.iter().map(|(side, r)| (*side, r)).collect();
        environment_with(options, &revisions)
    }

    fn add(&mut self, recorded: &mut Recorded) {
        self.unfollowed_symlink_dirs
            .append(&mut recorded.unfollowed_symlink_dirs);
        self.missing.append(&mut recorded.missing);
    }
}

/// A recorded step.
#[derive(Debug)]
pub struct Outcome {
    /// The link, as signed.
    pub link: Link,
    /// Where it was written.
    pub path: PathBuf,
    /// The command's return value, if a command ran.
    pub return_value: Option<i64>,
    /// What was passed over.
    pub notes: Notes,
}

/// Where and how to write a link.
#[derive(Debug, Clone)]
pub struct Output<'a> {
    /// The folder (created if missing).
    pub folder: &'a Path,
    /// The envelope.
    pub format: Format,
    /// Replace an existing link of the same name.
    pub overwrite: bool,
    /// Write the link as an in-toto Statement (link predicate v0.3) in a DSSE envelope,
    /// whatever `format` says. An unfinished link (`record start`) is always a plain link.
    pub statement: bool,
}

/// What `run` records.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The step.
    pub step: StepName,
    /// Material paths.
    pub materials: Vec<String>,
    /// Product paths.
    pub products: Vec<String>,
    /// The command, or `None` to record without running one.
    pub command: Option<Vec<String>>,
    /// How to record artifacts.
    pub record: RecordOptions,
    /// How to run the command.
    pub run: CommandOptions,
}

fn record(
    paths: &[String],
    options: &RecordOptions,
    side: &'static str,
    notes: &mut Notes,
) -> Result<Artifacts, StepError> {
    let mut recorded =
        record_artifacts(paths, options).map_err(|source| StepError::Record { side, source })?;
    notes.add(&mut recorded);
    if let Some(revision) = recorded.git.take() {
        notes.git.push((side, revision));
    }
    Ok(recorded.artifacts)
}

fn byproducts(outcome: &super::CommandOutcome) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert("return-value".into(), Value::from(outcome.return_value));
    map.insert("stdout".into(), Value::from(outcome.stdout.clone()));
    map.insert("stderr".into(), Value::from(outcome.stderr.clone()));
    if !outcome.truncated.is_empty() {
        // Signed with the rest: a verifier knows the recorded streams are not whole.
        map.insert("truncated".into(), Value::from(outcome.truncated.clone()));
    }
    map
}

/// Records materials, runs the command (if any), records products: the link, unsigned.
fn execute(request: &RunRequest) -> Result<(Link, Option<i64>, Notes), StepError> {
    let mut notes = Notes::default();
    let materials = record(&request.materials, &request.record, "materials", &mut notes)?;
    let (command, byproducts, return_value) = match &request.command {
        Some(argv) => {
            let outcome = run_command(argv, &request.run)?;
            (
                argv.clone(),
                byproducts(&outcome),
                Some(outcome.return_value),
            )
        }
        None => (Vec::new(), Map::new(), None),
    };
    let products = record(&request.products, &request.record, "products", &mut notes)?;
    let link = Link {
        name: request.step.clone(),
        command,
        materials,
        products,
        byproducts,
        environment: notes.environment(&request.record),
    };
    Ok((link, return_value, notes))
}

/// Records materials, runs the command, records products, signs the link and writes it as
/// `STEP.KEYID8.link`. A command that fails still gets its link, with its return value; one
/// that cannot be started gets none.
pub fn run(
    request: &RunRequest,
    key: &PrivateKey,
    output: &Output<'_>,
) -> Result<Outcome, StepError> {
    let (link, return_value, notes) = execute(request)?;
    let path = output
        .folder
        .join(link_file_name(&link.name, Some(&key.public_key().keyid())));
    write_as(&link, Some(key), output, &path, output.overwrite)?;
    Ok(Outcome {
        link,
        path,
        return_value,
        notes,
    })
}

/// `record start`: records the materials and writes a signed unfinished link,
/// `.STEP.KEYID8.link-unfinished`, into the output folder: the working folder unless told
/// otherwise, as the reference does.
pub fn start(
    step: &StepName,
    materials: &[String],
    options: &RecordOptions,
    key: &PrivateKey,
    output: &Output<'_>,
) -> Result<Outcome, StepError> {
    let mut notes = Notes::default();
    let materials = record(materials, options, "materials", &mut notes)?;
    let link = Link {
        name: step.clone(),
        command: Vec::new(),
        materials,
        products: Artifacts::new(),
        byproducts: Map::new(),
        environment: notes.environment(options),
    };
    let path = output
        .folder
        .join(unfinished_file_name(step, &key.public_key().keyid()));
    // A new start replaces an abandoned one.
    write(&link, Some(key), output.format, &path, true)?;
    Ok(Outcome {
        link,
        path,
        return_value: None,
        notes,
    })
}

/// `record stop`: reads the unfinished link, which this key must have signed, records the
/// products, writes the final link into the output folder and removes the unfinished one.
///
/// The unfinished link is looked for where the reference keeps it, in the working folder
/// (`in-toto-record start` has no output folder, and `in-toto-record stop -d DIR` writes only
/// the final link into DIR), and then in the output folder, where `record start -d DIR` put it.
/// Both holding one is refused: which is current cannot be told.
pub fn stop(
    step: &StepName,
    products: &[String],
    options: &RecordOptions,
    key: &PrivateKey,
    output: &Output<'_>,
) -> Result<Outcome, StepError> {
    let keyid = key.public_key().keyid();
    let name = unfinished_file_name(step, &keyid);
    let here = PathBuf::from(&name);
    let there = output.folder.join(&name);
    let same_folder = match (
        std::fs::canonicalize("."),
        std::fs::canonicalize(output.folder),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => output.folder.as_os_str().is_empty() || output.folder == Path::new("."),
    };
    let unfinished = match (here.exists(), !same_folder && there.exists()) {
        (true, true) => {
            return Err(StepError::TwoUnfinished {
                path: there,
                other: here,
                step: step.clone(),
            });
        }
        (false, true) => there,
        _ => here,
    };
    let invalid = |source: UnfinishedError| StepError::UnfinishedInvalid {
        path: unfinished.clone(),
        source,
    };
    let bytes = fsio::read_capped(
        &unfinished,
        options.limits.max_metadata_bytes,
        Limit::MetadataBytes,
    )
    .map_err(|e| match e {
        FsError::Io { ref source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            let finished = output.folder.join(link_file_name(step, Some(&keyid)));
            StepError::NoUnfinished {
                path: unfinished.clone(),
                step: step.clone(),
                also_looked_in: (!same_folder).then(|| output.folder.to_owned()),
                finished: finished.exists().then_some(finished),
            }
        }
        other => invalid(UnfinishedError::Read(other)),
    })?;
    let ring = KeyRing::from_keys([key.public_key().clone()])
        .map_err(|e| invalid(UnfinishedError::Key(e)))?;
    let verified = Envelope::from_bytes(&bytes, &options.limits)
        .and_then(|envelope| envelope.verify(&ring, 1))
        .map_err(|e| invalid(UnfinishedError::Signature(e)))?;
    let started = Link::from_value(verified.payload(), &options.limits)
        .map_err(|e: LinkError| invalid(UnfinishedError::Link(e)))?;
    if started.name != *step {
        return Err(StepError::OtherStep {
            path: unfinished.clone(),
            found: started.name.clone(),
            step: step.clone(),
        });
    }
    let mut notes = Notes::default();
    let products = record(products, options, "products", &mut notes)?;
    let mut environment = notes.environment(options);
    // The revision `start` recorded for the materials, kept from the signed unfinished link.
    let started_git = started
        .environment
        .get("tollgate")
        .and_then(|t| t.get("git"))
        .and_then(|g| g.get("materials"))
        .cloned();
    if let (Some(materials), Some(Value::Object(tollgate))) =
        (started_git, environment.get_mut("tollgate"))
    {
        match tollgate.get_mut("git") {
            Some(Value::Object(git)) => {
                git.insert("materials".into(), materials);
            }
            _ => {
                tollgate.insert("git".into(), serde_json::json!({ "materials": materials }));
            }
        }
    }
    let link = Link {
        products,
        environment,
        ..started
    };
    let path = output.folder.join(link_file_name(step, Some(&keyid)));
    write_as(&link, Some(key), output, &path, output.overwrite)?;
    std::fs::remove_file(&unfinished).map_err(|source| {
        StepError::Write(FsError::Io {
            path: unfinished.clone(),
            action: "remove",
            source,
        })
    })?;
    Ok(Outcome {
        link,
        path,
        return_value: None,
        notes,
    })
}

/// `mock`: runs the command, records `.` as materials and products with its streams, and writes
/// an unsigned `STEP.link`, to try a layout out before any key exists.
pub fn mock(
    step: &StepName,
    command: &[String],
    options: &RecordOptions,
    output: &Output<'_>,
) -> Result<Outcome, StepError> {
    let request = RunRequest {
        step: step.clone(),
        materials: vec![".".into()],
        products: vec![".".into()],
        command: Some(command.to_vec()),
        record: options.clone(),
        run: CommandOptions {
            record_streams: true,
            ..CommandOptions::default()
        },
    };
    let (link, return_value, notes) = execute(&request)?;
    let path = output.folder.join(link_file_name(step, None));
    write_as(&link, None, output, &path, output.overwrite)?;
    Ok(Outcome {
        link,
        path,
        return_value,
        notes,
    })
}

/// Writes a link in the envelope `output` asks for: a Statement in DSSE, or a plain link.
fn write_as(
    link: &Link,
    key: Option<&PrivateKey>,
    output: &Output<'_>,
    path: &Path,
    overwrite: bool,
) -> Result<(), StepError> {
    if !output.statement {
        return write(link, key, output.format, path, overwrite);
    }
    let statement = crate::model::statement::from_link(link).map_err(StepError::Statement)?;
    let keys: Vec<&PrivateKey> = key.into_iter().collect();
    let bytes = Envelope::seal(&statement, Format::Dsse, &keys).map_err(StepError::Sign)?;
    write_bytes(&bytes, path, overwrite)
}

fn write_bytes(bytes: &[u8], path: &Path, overwrite: bool) -> Result<(), StepError> {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|source| FsError::Io {
            path: folder.to_owned(),
            action: "create the folder",
            source,
        })?;
    }
    fsio::write_atomic(path, bytes, Mode::Public, overwrite)?;
    Ok(())
}

/// Signs (unless `key` is `None`) and writes a link atomically.
pub fn write(
    link: &Link,
    key: Option<&PrivateKey>,
    format: Format,
    path: &Path,
    overwrite: bool,
) -> Result<(), StepError> {
    let keys: Vec<&PrivateKey> = key.into_iter().collect();
    let bytes = Envelope::seal(link, format, &keys).map_err(StepError::Sign)?;
    write_bytes(&bytes, path, overwrite)
}
