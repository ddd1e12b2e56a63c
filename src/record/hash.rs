//! Hashing the walked files with SHA-256 on every core, each file read once.
//!
//! Each file is opened without following a symlink, checked to be the regular file the walk
//! saw (same inode), hashed in chunks, and checked again afterwards (same size, modification
//! time and inode, and as many bytes read as it holds). Any difference means the file changed
//! while it was recorded, and recording fails (THREATS G5, G6). SHA-256 runs on the CPU's SHA
//! extensions where it has them (the `sha2` crate detects them at run time).

use std::fs::{File, Metadata, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use sha2::{Digest, Sha256};

use super::RecordError;
use super::walk::FileJob;

/// Bytes read from a file at a time.
const CHUNK: usize = 256 * 1024;

/// Counters a caller may watch while recording runs (for a progress display).
#[derive(Debug, Default)]
pub struct Progress {
    /// Files found by the walk.
    pub files_total: AtomicU64,
    /// Files hashed so far.
    pub files_done: AtomicU64,
    /// Bytes hashed so far.
    pub bytes_done: AtomicU64,
}

/// Hashes every job on `threads` threads; returns the SHA-256 digests in job order. On
/// failure, the error of the first failing job (in job order) is returned.
pub fn hash_all(
    jobs: &[FileJob],
    normalize_line_endings: bool,
    threads: usize,
    progress: Option<&Arc<Progress>>,
) -> Result<Vec<[u8; 32]>, RecordError> {
    if let Some(p) = progress {
        p.files_total.store(jobs.len() as u64, Ordering::Relaxed);
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let threads = threads.clamp(1, jobs.len().max(1));
    let mut results: Vec<(usize, Result<[u8; 32], RecordError>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut buffer = vec![0u8; CHUNK];
                    let mut done = Vec::new();
                    while !failed.load(Ordering::Relaxed) {
                        let index = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(index) else { break };
                        let result = hash_file(job, normalize_line_endings, &mut buffer, progress);
                        if result.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        done.push((index, result));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    results.sort_by_key(|(index, _)| *index);
    if results.len() != jobs.len() || results.iter().any(|(_, r)| r.is_err()) {
        // The first error in job order, so the report does not depend on thread timing.
        return match results.into_iter().find_map(|(_, r)| r.err()) {
            Some(error) => Err(error),
            None => Err(RecordError::Internal(
                "a hashing thread stopped early".into(),
            )),
        };
    }
    results.into_iter().map(|(_, r)| r).collect()
}

fn changed(job: &FileJob, what: &'static str) -> RecordError {
    RecordError::Changed {
        path: job.name.clone(),
        what,
    }
}

fn same_file(a: &Metadata, b: &Metadata) -> bool {
    a.ino() == b.ino()
        && a.dev() == b.dev()
        && a.len() == b.len()
        && a.mtime() == b.mtime()
        && a.mtime_nsec() == b.mtime_nsec()
}

/// Hashes one file (see the module docs for the checks).
pub fn hash_file(
    job: &FileJob,
    normalize_line_endings: bool,
    buffer: &mut [u8],
    progress: Option<&Arc<Progress>>,
) -> Result<[u8; 32], RecordError> {
    let file = open_no_follow(&job.path).map_err(|e| match e.raw_os_error() {
        // A symlink now stands where the walk saw a file.
        Some(libc::ELOOP) => changed(job, "it was replaced by a symlink"),
        _ if e.kind() == ErrorKind::NotFound => changed(job, "it was removed"),
        _ => RecordError::Io {
            path: job.path.clone(),
            action: "read",
            source: e,
        },
    })?;
    let io = |source| RecordError::Io {
        path: job.path.clone(),
        action: "read",
        source,
    };
    let before = file.metadata().map_err(io)?;
    if !before.is_file() {
        return Err(changed(job, "it is no longer a regular file"));
    }
    if before.ino() != job.inode {
        return Err(changed(job, "another file took its place"));
    }
    let mut hasher = Sha256::new();
    let mut normaliser = normalize_line_endings.then(LineEndings::default);
    let mut total: u64 = 0;
    let mut reader = &file;
    // Read as many bytes as the file holds and no more: a file that grows shows in the second
    // stat, one that shrinks in a short count; either way the extra read for EOF is saved.
    while total < before.len() {
        let want = buffer
            .len()
            .min((before.len() - total).try_into().unwrap_or(usize::MAX));
        let n = match reader.read(&mut buffer[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        total += n as u64;
        match &mut normaliser {
            Some(lines) => lines.feed(&buffer[..n], &mut hasher),
            None => hasher.update(&buffer[..n]),
        }
        if let Some(p) = progress {
            p.bytes_done.fetch_add(n as u64, Ordering::Relaxed);
        }
    }
    if let Some(lines) = &mut normaliser {
        lines.finish(&mut hasher);
    }
    let after = file.metadata().map_err(io)?;
    if !same_file(&before, &after) || total != before.len() {
        return Err(changed(job, "it changed while it was hashed"));
    }
    if let Some(p) = progress {
        p.files_done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(hasher.finalize().into())
}

/// Opens a file for reading without following a symlink in its last component, and without
/// blocking should a FIFO have appeared there.
fn open_no_follow(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
}

/// Line-ending normalisation as securesystemslib does it: `\r\n` becomes `\n`, then any other
/// `\r` becomes `\n`. A `\r` at the end of one chunk waits for the next, so that where the
/// chunks split never changes the digest (THREATS G8).
#[derive(Debug, Default)]
pub struct LineEndings {
    pending_cr: bool,
}

impl LineEndings {
    /// Feeds `data`, writing the normalised bytes into `hasher`.
    pub fn feed(&mut self, mut data: &[u8], hasher: &mut Sha256) {
        if self.pending_cr && !data.is_empty() {
            self.pending_cr = false;
            hasher.update(b"\n");
            if data[0] == b'\n' {
                data = &data[1..];
            }
        }
        while let Some(at) = data.iter().position(|&b| b == b'\r') {
            hasher.update(&data[..at]);
            match data.get(at + 1) {
                Some(b'\n') => {
                    hasher.update(b"\n");
                    data = &data[at + 2..];
                }
                Some(_) => {
                    hasher.update(b"\n");
                    data = &data[at + 1..];
                }
                None => {
                    self.pending_cr = true;
                    data = &[];
                }
            }
        }
        hasher.update(data);
    }

    /// Ends the input: a final `\r` becomes `\n`.
    pub fn finish(&mut self, hasher: &mut Sha256) {
        if std::mem::take(&mut self.pending_cr) {
            hasher.update(b"\n");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalised(chunks: &[&[u8]]) -> String {
        let mut hasher = Sha256::new();
        let mut lines = LineEndings::default();
        for chunk in chunks {
            lines.feed(chunk, &mut hasher);
        }
        lines.finish(&mut hasher);
        hex::encode(hasher.finalize())
    }

    fn sha(data: &[u8]) -> String {
        hex::encode(Sha256::digest(data))
    }

    #[test]
    fn g8_line_endings_normalise_like_securesystemslib_across_any_split() {
        let input = b"a\r\nb\rc\n\r\r\nd\r";
        // Python: data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        let expected = sha(b"a\nb\nc\n\n\nd\n");
        for split in 0..=input.len() {
            let (x, y) = input.split_at(split);
            assert_eq!(normalised(&[x, y]), expected, "split at {split}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(normalised(&bytes), expected);
        // Binary without carriage returns is untouched.
        assert_eq!(normalised(&[b"\x00\x01\n\xff"]), sha(b"\x00\x01\n\xff"));
    }
}
