//! Running a step's command: directly from its argv (never through a shell), its output still
//! reaching the console, and, when asked, recorded up to a limit.

use std::io::{Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::base::limits::Limits;
use crate::base::parallel::{self, SpawnError};

/// How to run the command.
#[derive(Debug, Clone)]
pub struct CommandOptions {
    /// Record stdout and stderr as byproducts.
    pub record_streams: bool,
    /// The most bytes recorded of each stream; the rest still reaches the console. Default
    /// [`Limits::max_byproduct_bytes`].
    pub stream_limit: usize,
    /// Kill the command after this long (no limit by default).
    pub timeout: Option<Duration>,
    /// Run it in this folder (default: the working directory).
    pub current_dir: Option<PathBuf>,
    /// Record the streams without passing them on to the console.
    pub silent: bool,
    /// Run it with only these variables of the environment (and nothing else), when set.
    pub keep_env: Option<Vec<String>>,
}

impl Default for CommandOptions {
    fn default() -> Self {
        CommandOptions {
            record_streams: false,
            stream_limit: Limits::DEFAULT.max_byproduct_bytes,
            timeout: None,
            current_dir: None,
            silent: false,
            keep_env: None,
        }
    }
}

/// What the command did.
#[derive(Debug, Clone, Default)]
pub struct CommandOutcome {
    /// The exit code, or minus the signal number that killed it (Python's convention).
    pub return_value: i64,
    /// Recorded stdout (empty unless recording streams).
    pub stdout: String,
    /// Recorded stderr (empty unless recording streams).
    pub stderr: String,
    /// The streams that were cut at the limit.
    pub truncated: Vec<&'static str>,
}

/// Why the command could not be run to the end. No link is written after these.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The command line to run is empty. (The command line refuses that before it gets here,
    /// with the flags that fix it.)
    #[error("no command given: the command line to run is empty")]
    Empty,
    /// The command could not be started.
    #[error("cannot run {program:?}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The command ran longer than the timeout and was killed.
    #[error("the command ran longer than {0} s and was killed")]
    Timeout(u64),
    /// No thread could be started to pass on the command's output; the command was killed.
    #[error("{0}; the command was killed")]
    Thread(#[source] SpawnError),
    /// Waiting for the command failed.
    #[error("waiting for the command failed: {0}")]
    Wait(#[source] std::io::Error),
}

/// Runs `argv` and waits for it.
pub fn run_command(
    argv: &[String],
    options: &CommandOptions,
) -> Result<CommandOutcome, CommandError> {
    let (program, args) = argv.split_first().ok_or(CommandError::Empty)?;
    let mut command = Command::new(program);
    command.args(args).stdin(Stdio::inherit());
    if let Some(keep) = &options.keep_env {
        command.env_clear();
        for name in keep {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
    }
    if let Some(dir) = &options.current_dir {
        command.current_dir(dir);
    }
    if options.record_streams {
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let mut child = command.spawn().map_err(|source| CommandError::Spawn {
        program: program.clone(),
        source,
    })?;
    let limit = options.stream_limit;
    let silent = options.silent;
    let stdout = child
        .stdout
        .take()
        .map(|pipe| {
            parallel::spawn("command stdout", move || match silent {
                true => tee(pipe, std::io::sink(), limit),
                false => tee(pipe, std::io::stdout(), limit),
            })
        })
        .transpose();
    let stderr = child
        .stderr
        .take()
        .map(|pipe| {
            parallel::spawn("command stderr", move || match silent {
                true => tee(pipe, std::io::sink(), limit),
                false => tee(pipe, std::io::stderr(), limit),
            })
        })
        .transpose();
    let (stdout, stderr) = match (stdout, stderr) {
        (Ok(stdout), Ok(stderr)) => (stdout, stderr),
        // Its output would go unread, and the command would block once a pipe is full.
        (Err(error), _) | (_, Err(error)) => {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CommandError::Thread(error));
        }
    };

    let status = match options.timeout {
        None => child.wait().map_err(CommandError::Wait)?,
        Some(timeout) => wait_with_timeout(&mut child, timeout)?,
    };
    let mut outcome = CommandOutcome {
        return_value: return_value(status),
        ..CommandOutcome::default()
    };
    for (name, handle, slot) in [
        ("stdout", stdout, &mut outcome.stdout),
        ("stderr", stderr, &mut outcome.stderr),
    ] {
        if let Some(handle) = handle {
            let (text, cut) = handle.join().unwrap_or_default();
            *slot = text;
            if cut {
                outcome.truncated.push(name);
            }
        }
    }
    Ok(outcome)
}

fn wait_with_timeout(
    child: &mut std::process::Child,
    timeout: Duration,
) -> Result<ExitStatus, CommandError> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(CommandError::Wait)? {
            return Ok(status);
        }
        if start.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CommandError::Timeout(timeout.as_secs()));
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn return_value(status: ExitStatus) -> i64 {
    match (status.code(), status.signal()) {
        (Some(code), _) => i64::from(code),
        (None, Some(signal)) => -i64::from(signal),
        (None, None) => -1,
    }
}

/// Copies `pipe` to `console` as it comes, keeping the first `limit` bytes. Returns the kept
/// text (invalid UTF-8 replaced) and whether anything was cut.
fn tee(mut pipe: impl Read, console: impl Write, limit: usize) -> (String, bool) {
    let mut console = console;
    let mut kept = Vec::new();
    let mut cut = false;
    let mut buffer = [0u8; 8192];
    loop {
        let n = match pipe.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let _ = console.write_all(&buffer[..n]);
        let _ = console.flush();
        let room = limit.saturating_sub(kept.len());
        if n > room {
            cut = true;
        }
        kept.extend_from_slice(&buffer[..n.min(room)]);
    }
    (String::from_utf8_lossy(&kept).into_owned(), cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An empty command line is refused before anything starts, in words for a library
    /// caller (who has no `--` or --no-command to pass).
    #[test]
    fn an_empty_command_line_is_refused_without_naming_flags() {
        match run_command(&[], &CommandOptions::default()) {
            Err(e @ CommandError::Empty) => assert!(!e.to_string().contains("--"), "{e}"),
            other => panic!("{:?}", other.map(|o| o.return_value)),
        }
    }

    /// With no thread to read its output, a command whose streams are recorded is killed at
    /// once and the failure reported; one whose streams are not needs no thread.
    #[test]
    fn without_threads_a_recorded_command_is_killed_and_reported() {
        let recorded = CommandOptions {
            record_streams: true,
            silent: true,
            ..CommandOptions::default()
        };
        let started = Instant::now();
        let argv = ["sleep".to_owned(), "30".to_owned()];
        match parallel::without_threads(|| run_command(&argv, &recorded)) {
            Err(CommandError::Thread(SpawnError { name, .. })) => {
                assert_eq!(name, "command stdout")
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(20), "it was killed");
        let outcome = parallel::without_threads(|| {
            run_command(&["true".to_owned()], &CommandOptions::default())
        })
        .expect("runs");
        assert_eq!(outcome.return_value, 0);
    }
}
