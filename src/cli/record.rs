//! `tollgate run`, `tollgate record start|stop` and `tollgate mock`: recording a step. The
//! reference's flag spellings are accepted too, so a pipeline calling `in-toto-run` can switch
//! by changing the program name.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tollgate::base::parallel;
use tollgate::envelope::Format;
use tollgate::keys::PrivateKey;
use tollgate::limits::Limits;
use tollgate::name::StepName;
use tollgate::record::{
    self, CommandError, CommandOptions, Outcome, Output, Progress, RecordOptions, RunRequest,
    StepError,
};

use super::failure::{Failure, INTERNAL, USAGE};
use super::keyfile::{self, GpgArgs, KeyTypeArgs, PasswordArgs};

/// How artifacts are recorded (shared by every recording command).
#[derive(Debug, Clone, clap::Args)]
pub struct ArtifactArgs {
    /// Record artifact names relative to DIR instead of the working directory
    /// [in-toto: --base-path].
    #[arg(long, alias = "base-dir", value_name = "DIR")]
    base_path: Option<PathBuf>,
    /// Strip this prefix from artifact names (the first that matches) [in-toto: --lstrip-paths].
    #[arg(long, value_name = "PREFIX", num_args = 1..)]
    lstrip_paths: Vec<String>,
    /// Gitignore-style patterns of files not to record; replaces the defaults
    /// (*.link*, .git, *.pyc, *~) [in-toto: --exclude].
    #[arg(long, value_name = "PATTERN", num_args = 1..)]
    exclude: Option<Vec<String>>,
    /// Also leave out what the tree's .gitignore files ignore.
    #[arg(long)]
    use_gitignore: bool,
    /// Follow symlinks to folders (never out of the recording root).
    #[arg(long)]
    follow_symlink_dirs: bool,
    /// Hash text with CRLF and CR line endings read as LF.
    #[arg(long)]
    normalize_line_endings: bool,
    /// Skip material and product paths that do not exist, instead of failing.
    #[arg(long)]
    allow_missing: bool,
    #[command(flatten)]
    uris: UriArgs,
    /// Hashing threads [default: one per core].
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// No progress display and no report of what was written; errors are still shown
    /// [in-toto: -q/--quiet].
    #[arg(short = 'q', long, conflicts_with = "verbose")]
    quiet: bool,
    /// Accepted for in-toto's command lines; Tollgate always reports what it wrote
    /// [in-toto: -v/--verbose].
    #[arg(short = 'v', long)]
    verbose: bool,
}

/// How `git:` and `oci:` artifacts are resolved (recording, and `match-products`).
#[derive(Debug, Clone, clap::Args)]
pub struct UriArgs {
    /// The git repository that `git:REV` paths read [default: the base path, else the working
    /// directory].
    #[arg(long, value_name = "DIR")]
    repo: Option<PathBuf>,
    /// With `git:REV`, also record every file tracked at that revision (`git:file/PATH`).
    #[arg(long)]
    git_files: bool,
    /// Read `git:REV` even though the working tree has changes (a link then says so).
    #[arg(long)]
    allow_dirty: bool,
    /// The platform (os/arch[/variant], e.g. linux/amd64) to pick from an `oci:` image index
    /// that lists several images.
    #[arg(long, value_name = "PLATFORM")]
    platform: Option<String>,
}

impl UriArgs {
    /// Sets these choices in `options`.
    pub fn apply(&self, options: &mut RecordOptions) {
        options.git_repo = self.repo.clone();
        options.git_files = self.git_files;
        options.allow_dirty = self.allow_dirty;
        options.platform = self.platform.clone();
    }
}

/// The signing key and where the link goes.
#[derive(Debug, Clone, clap::Args)]
pub struct KeyArgs {
    /// The functionary's private key (PEM) [in-toto: --signing-key].
    #[arg(
        short = 'k',
        long = "key",
        alias = "signing-key",
        value_name = "KEY",
        required_unless_present_any = ["gpg", "gpg_home"]
    )]
    key: Option<PathBuf>,
    /// Use a private key file that others can read.
    #[arg(long)]
    insecure_key_permissions: bool,
    #[command(flatten)]
    password: PasswordArgs,
    #[command(flatten)]
    gpg: GpgArgs,
    #[command(flatten)]
    key_type: KeyTypeArgs,
}

/// Where the link goes.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// The folder to write the link into (created if missing) [default: the working folder]
    /// [in-toto: -d/--metadata-directory].
    #[arg(short = 'd', long = "metadata-directory", value_name = "DIR")]
    metadata_directory: Option<PathBuf>,
    /// Write a DSSE envelope instead of a classic one [in-toto: --use-dsse].
    #[arg(long = "dsse", alias = "use-dsse")]
    dsse: bool,
    /// Replace an existing link of the same name, as in-toto does (by default Tollgate refuses,
    /// so that a step recorded twice is noticed): pass it when a CI job is retried.
    #[arg(long)]
    overwrite: bool,
    /// Write the link as an in-toto Statement v1 (link predicate v0.3) in a DSSE envelope,
    /// for tools of the in-toto Attestation Framework; `tollgate verify` reads it as a link.
    #[arg(long)]
    statement: bool,
}

/// Arguments of `tollgate run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The step's name, as the layout names it [in-toto: -n/--step-name].
    #[arg(short = 'n', long = "step", alias = "step-name", value_name = "NAME")]
    step: String,
    /// Files and folders the step reads, hashed before the command runs [in-toto: -m].
    #[arg(short = 'm', long, value_name = "PATH", num_args = 1..)]
    materials: Vec<String>,
    /// Files and folders the step writes, hashed after the command runs [in-toto: -p].
    #[arg(short = 'p', long, value_name = "PATH", num_args = 1..)]
    products: Vec<String>,
    /// Also record the command's stdout and stderr in the link [in-toto: -s].
    #[arg(short = 's', long)]
    record_streams: bool,
    /// The most bytes of each stream recorded; the rest still reaches the console.
    #[arg(long, value_name = "BYTES", default_value_t = Limits::DEFAULT.max_byproduct_bytes)]
    max_stream_bytes: usize,
    /// Record without running a command [in-toto: -x].
    #[arg(short = 'x', long, conflicts_with = "command")]
    no_command: bool,
    /// Kill the command after SECS seconds [default: no limit; in-toto-run's --run-timeout
    /// kills it after 10 s] [in-toto: --run-timeout].
    #[arg(long, alias = "run-timeout", value_name = "SECS")]
    timeout: Option<u64>,
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    artifacts: ArtifactArgs,
    /// The command to run, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    command: Vec<String>,
}

/// The `record` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum RecordCommand {
    /// Hash the materials and write a signed unfinished link.
    Start(StartArgs),
    /// Hash the products and turn the unfinished link into the step's link.
    Stop(StopArgs),
}

/// What `record start` and `record stop` share.
#[derive(Debug, clap::Args)]
pub struct StageArgs {
    /// The step's name [in-toto: -n/--step-name].
    #[arg(short = 'n', long = "step", alias = "step-name", value_name = "NAME")]
    step: String,
    #[command(flatten)]
    key: KeyArgs,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    artifacts: ArtifactArgs,
}

/// Arguments of `tollgate record start`.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Files and folders the step reads [in-toto: -m].
    #[arg(short = 'm', long, value_name = "PATH", num_args = 1..)]
    materials: Vec<String>,
    #[command(flatten)]
    stage: StageArgs,
}

/// Arguments of `tollgate record stop`.
#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// Files and folders the step wrote [in-toto: -p].
    #[arg(short = 'p', long, value_name = "PATH", num_args = 1..)]
    products: Vec<String>,
    #[command(flatten)]
    stage: StageArgs,
}

/// Arguments of `tollgate mock`.
#[derive(Debug, clap::Args)]
pub struct MockArgs {
    /// The step's name [in-toto: -n/--step-name].
    #[arg(short = 'n', long = "step", alias = "step-name", value_name = "NAME")]
    step: String,
    #[command(flatten)]
    output: OutputArgs,
    #[command(flatten)]
    artifacts: ArtifactArgs,
    /// The command to run, after `--`.
    #[arg(last = true, required = true, value_name = "COMMAND")]
    command: Vec<String>,
}

fn step_name(name: &str) -> Result<StepName, Failure> {
    StepName::new(name).map_err(|e| Failure::new(USAGE, format!("--step: {e}")))
}

pub(super) fn load_key(args: &KeyArgs) -> Result<PrivateKey, Failure> {
    args.gpg
        .refuse("a PEM private key with --signing-key KEY (or --key KEY)")?;
    args.key_type.note();
    let path = args
        .key
        .as_ref()
        .ok_or_else(|| Failure::new(USAGE, "no signing key given: pass --signing-key KEY"))?;
    keyfile::private_key(path, &args.password, args.insecure_key_permissions)
}

impl ArtifactArgs {
    /// Whether `-q/--quiet` was given.
    pub(super) fn quiet(&self) -> bool {
        self.quiet
    }

    pub(super) fn options(&self, progress: Option<Arc<Progress>>) -> RecordOptions {
        let mut options = RecordOptions {
            base_path: self.base_path.clone(),
            excludes: self.exclude.clone(),
            lstrip_paths: self.lstrip_paths.clone(),
            follow_symlink_dirs: self.follow_symlink_dirs,
            normalize_line_endings: self.normalize_line_endings,
            allow_missing: self.allow_missing,
            use_gitignore: self.use_gitignore,
            threads: self.threads,
            progress,
            ..RecordOptions::default()
        };
        self.uris.apply(&mut options);
        options
    }
}

impl OutputArgs {
    fn output(&self) -> Output<'_> {
        Output {
            // The working folder as "", so that messages name `STEP.KEYID8.link`, not `./...`.
            folder: self
                .metadata_directory
                .as_deref()
                .unwrap_or(std::path::Path::new("")),
            format: if self.dsse {
                Format::Dsse
            } else {
                Format::Classic
            },
            overwrite: self.overwrite,
            statement: self.statement,
        }
    }
}

/// A progress line on stderr while hashing, shown only on a terminal and only once the work
/// has taken a moment.
struct ProgressDisplay {
    progress: Arc<Progress>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressDisplay {
    fn start(quiet: bool) -> Option<ProgressDisplay> {
        if quiet || !std::io::stderr().is_terminal() {
            return None;
        }
        let progress = Arc::new(Progress::default());
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (progress, stop) = (Arc::clone(&progress), Arc::clone(&stop));
            // Without a thread to spare, no progress is shown.
            parallel::spawn("progress display", move || {
                let begun = Instant::now();
                let mut shown = false;
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    if begun.elapsed() < Duration::from_millis(500) {
                        continue;
                    }
                    shown = true;
                    let files = progress.files_done.load(Ordering::Relaxed);
                    let total = progress.files_total.load(Ordering::Relaxed);
                    let mib = progress.bytes_done.load(Ordering::Relaxed) as f64 / 1048576.0;
                    eprint!("\rhashing: {files}/{total} files, {mib:.1} MiB   ");
                }
                if shown {
                    eprint!("\r\x1b[K");
                }
            })
            .ok()?
        };
        Some(ProgressDisplay {
            progress,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for ProgressDisplay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn step_failure(err: StepError) -> Failure {
    let code = match &err {
        StepError::Write(tollgate::fsio::FsError::Io { .. }) => INTERNAL,
        _ => USAGE,
    };
    let message = match &err {
        StepError::Record { side, source } => {
            format!(
                "recording {side}: {}",
                super::failure::record_message(source)
            )
        }
        StepError::NoUnfinished {
            path,
            step,
            also_looked_in,
            finished,
        } => {
            let nor = also_looked_in
                .as_ref()
                .map(|folder| format!(" nor in {}", folder.display()))
                .unwrap_or_default();
            let done = finished
                .as_ref()
                .map(|link| {
                    format!(
                        " ({} is there: this step's `record stop` already ran)",
                        link.display()
                    )
                })
                .unwrap_or_default();
            format!(
                "{}: no unfinished link in the working folder{nor}{done}: run `record start` for \
                 step {step} with the same key first, from the same folder",
                path.display()
            )
        }
        StepError::TwoUnfinished { .. } => {
            format!("{err}; remove the one left from an abandoned `record start`")
        }
        _ => err.to_string(),
    };
    let failure = Failure::new(code, message);
    match err {
        StepError::Command(CommandError::Spawn { .. }) => {
            failure.hint("no link was written; check the command name and PATH")
        }
        StepError::Write(tollgate::fsio::FsError::Exists(_)) => failure.hint(
            "this step was recorded here before with this key (a retried job?): pass --overwrite \
             to replace the link, as in-toto-run does, or remove the old one",
        ),
        _ => failure,
    }
}

fn report(outcome: &Outcome, quiet: bool) {
    if quiet {
        return;
    }
    for name in &outcome.notes.unfollowed_symlink_dirs {
        eprintln!("note: {name}: symlink to a folder, not followed (pass --follow-symlink-dirs)");
    }
    for name in &outcome.notes.missing {
        eprintln!("note: {name}: does not exist, skipped (--allow-missing)");
    }
    eprintln!(
        "wrote {} ({} materials, {} products)",
        outcome.path.display(),
        outcome.link.materials.len(),
        outcome.link.products.len()
    );
}

/// Runs `tollgate run`; returns the exit code to use (the command's).
pub fn run(args: RunArgs) -> Result<u8, Failure> {
    let step = step_name(&args.step)?;
    if args.command.is_empty() && !args.no_command {
        return Err(missing_command(&args));
    }
    statement_needs_products(&args.output, &args.products)?;
    let key = load_key(&args.key)?;
    let display = ProgressDisplay::start(args.artifacts.quiet);
    let request = RunRequest {
        step,
        materials: args.materials.clone(),
        products: args.products.clone(),
        command: (!args.no_command).then(|| args.command.clone()),
        record: args
            .artifacts
            .options(display.as_ref().map(|d| Arc::clone(&d.progress))),
        run: CommandOptions {
            record_streams: args.record_streams,
            stream_limit: args.max_stream_bytes,
            timeout: args.timeout.map(Duration::from_secs),
            ..CommandOptions::default()
        },
    };
    let outcome = record::run(&request, &key, &args.output.output());
    drop(display);
    let outcome = outcome.map_err(step_failure)?;
    report(&outcome, args.artifacts.quiet);
    let code = exit_code(outcome.return_value);
    // The process ends next; freeing a million-artifact link would only delay it.
    std::mem::forget(outcome);
    Ok(code)
}

/// No command after `--`. `-m` and `-p` take every word up to the next flag, so a command
/// written without `--` ends up among them: find it (the first word that is no file here but a
/// program on PATH) and show where the `--` goes.
fn missing_command(args: &RunArgs) -> Failure {
    let base = args.artifacts.base_path.clone().unwrap_or_default();
    let lists = [
        ("-m", "material", &args.materials),
        ("-p", "product", &args.products),
    ];
    for (flag, side, words) in lists {
        let found = words
            .iter()
            .position(|w| !w.contains(':') && !base.join(w).exists() && on_path(w));
        if let Some(at) = found {
            let (paths, command) = words.split_at(at);
            let command = command.join(" ");
            let before = if paths.is_empty() {
                String::new()
            } else {
                format!("{flag} {} ", paths.join(" "))
            };
            return Failure::new(
                USAGE,
                format!(
                    "no command given: `{command}` was read as {side} paths ({flag} takes every \
                     word up to the next flag)"
                ),
            )
            .hint(format!(
                "put the command after `--`: ... {before}-- {command}"
            ));
        }
    }
    Failure::new(USAGE, "no command given")
        .hint("put the command after `--`, or pass --no-command to record without one")
}

/// Whether `word` names a program on PATH.
pub(super) fn on_path(word: &str) -> bool {
    if word.contains('/') || word.is_empty() {
        return false;
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(word).is_file()))
}

/// The exit code that passes on the command's: its own, or 128 + the signal that killed it.
fn exit_code(return_value: Option<i64>) -> u8 {
    match return_value {
        None => 0,
        Some(code @ 0..=255) => code as u8,
        Some(code) if (-64..0).contains(&code) => (128 - code) as u8,
        Some(_) => 1,
    }
}

/// A Statement's subjects are the link's products: refuse `--statement` without any before
/// anything runs.
fn statement_needs_products(output: &OutputArgs, products: &[String]) -> Result<(), Failure> {
    if output.statement && products.is_empty() {
        return Err(Failure::new(
            USAGE,
            "--statement needs products: an in-toto Statement's subjects are the link's \
             products",
        )
        .hint("give the products with -p, or drop --statement to write a plain link"));
    }
    Ok(())
}

/// Runs a `record` subcommand.
pub fn record(command: RecordCommand) -> Result<u8, Failure> {
    type Stage = fn(
        &StepName,
        &[String],
        &RecordOptions,
        &PrivateKey,
        &Output<'_>,
    ) -> Result<Outcome, StepError>;
    let (args, paths, stage): (&StageArgs, &[String], Stage) = match &command {
        RecordCommand::Start(a) => (&a.stage, &a.materials, record::start),
        RecordCommand::Stop(a) => (&a.stage, &a.products, record::stop),
    };
    let step = step_name(&args.step)?;
    if let RecordCommand::Stop(_) = &command {
        statement_needs_products(&args.output, paths)?;
    }
    let key = load_key(&args.key)?;
    let display = ProgressDisplay::start(args.artifacts.quiet);
    let options = args
        .artifacts
        .options(display.as_ref().map(|d| Arc::clone(&d.progress)));
    let outcome = stage(&step, paths, &options, &key, &args.output.output());
    drop(display);
    let outcome = outcome.map_err(step_failure)?;
    report(&outcome, args.artifacts.quiet);
    Ok(0)
}

/// Runs `tollgate mock`; returns the command's exit code.
pub fn mock(args: MockArgs) -> Result<u8, Failure> {
    let step = step_name(&args.step)?;
    let options = args.artifacts.options(None);
    let outcome = record::mock(&step, &args.command, &options, &args.output.output())
        .map_err(step_failure)?;
    report(&outcome, args.artifacts.quiet);
    Ok(exit_code(outcome.return_value))
}
