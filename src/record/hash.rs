//! Hashing the walked files with SHA-256 on every core, each file read once.
//!
//! Each file is opened without following a symlink, checked to be the regular file the walk
//! saw (same inode), hashed in chunks, and checked again afterwards (same size, modification
//! time and inode, and as many bytes read as it holds). Any difference means the file changed
//! while it was recorded, and recording fails (THREATS G5, G6). SHA-256 runs on the CPU's SHA
//! extensions where it has them (the `sha2` crate detects them at run time).

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use rustix::fs::{FileType, Mode, OFlags, Stat};
use sha2::{Digest, Sha256};

use super::RecordError;
use super::walk::{Emit, FileJob, WalkNotes};
use crate::base::limits::Limit;
use crate::base::parallel;

/// One file's digest, or why it has none: the error boxed, so that the result of each of
/// (possibly millions of) files takes 48 bytes, not the size of the largest error.
type FileResult = Result<[u8; 32], Box<RecordError>>;

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

/// Files handed to a hashing thread at a time.
const BATCH: usize = 64;

/// What [`walk_and_hash`] found: each file's name (as `name_of` made it) and digest, in walk
/// order, and the walk's notes.
pub struct Hashed<N> {
    /// Names and digests.
    pub files: Vec<(N, [u8; 32])>,
    /// What the walk passed over.
    pub notes: WalkNotes,
}

/// Runs `walk` on this thread and hashes the files it finds on `threads` other threads as they
/// come, so that walking and hashing overlap. `name_of` turns each file's artifact name into
/// the caller's name type, and may refuse it; at most `max_files` files are accepted.
///
/// Errors are reported deterministically: a walk error first, else the hashing error of the
/// earliest file in walk order.
pub fn walk_and_hash<N, W, F>(
    walk: W,
    name_of: F,
    max_files: usize,
    threads: usize,
    normalize_line_endings: bool,
    progress: Option<&Arc<Progress>>,
) -> Result<Hashed<N>, RecordError>
where
    N: Send,
    W: FnOnce(&mut Emit<'_>) -> Result<WalkNotes, RecordError>,
    F: Fn(&str) -> Result<N, RecordError>,
{
    let threads = threads.max(1);
    let (sender, receiver) = mpsc::sync_channel::<Vec<(usize, FileJob)>>(threads * 4);
    let receiver = Mutex::new(receiver);
    let failed = AtomicBool::new(false);
    // Hashes one batch of files into `done`, stopping at the first failure anywhere.
    let hash_batch =
        |batch: Vec<(usize, FileJob)>, buffer: &mut [u8], done: &mut Vec<(usize, FileResult)>| {
            for (index, job) in batch {
                if failed.load(Ordering::Relaxed) {
                    break;
                }
                let result =
                    hash_file(&job, normalize_line_endings, buffer, progress).map_err(Box::new);
                if result.is_err() {
                    failed.store(true, Ordering::Relaxed);
                }
                done.push((index, result));
            }
        };
    std::thread::scope(|scope| {
        // A thread the system cannot start leaves its share to the others; with none at all,
        // the files are hashed here, between the steps of the walk.
        let workers: Vec<_> = (0..threads)
            .filter_map(|_| {
                parallel::spawn_scoped(scope, "hashing", || {
                    let mut buffer = vec![0u8; CHUNK];
                    let mut done = Vec::new();
                    loop {
                        let batch = match receiver.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => break,
                        };
                        let Ok(batch) = batch else { break };
                        hash_batch(batch, &mut buffer, &mut done);
                    }
                    done
                })
                .ok()
            })
            .collect();
        let here = workers.is_empty();
        let mut buffer_here = if here { vec![0u8; CHUNK] } else { Vec::new() };
        let mut done_here = Vec::new();

        let mut names = Vec::new();
        let mut batch = Vec::with_capacity(BATCH);
        let walked = {
            let mut emit = |job: FileJob| -> Result<(), RecordError> {
                if failed.load(Ordering::Relaxed) {
                    return Err(RecordError::Internal("hashing stopped the walk".into()));
                }
                if names.len() >= max_files {
                    return Err(RecordError::TooManyArtifacts {
                        count: names.len() + 1,
                        max: max_files,
                        limit: Limit::Artifacts,
                    });
                }
                names.push(name_of(&job.name)?);
                batch.push((names.len() - 1, job));
                if let Some(p) = progress {
                    p.files_total.fetch_add(1, Ordering::Relaxed);
                }
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if here {
                        hash_batch(full, &mut buffer_here, &mut done_here);
                    } else {
                        sender.send(full).map_err(|_| {
                            RecordError::Internal("the hashing threads stopped".into())
                        })?;
                    }
                }
                Ok(())
            };
            walk(&mut emit)
        };
        if walked.is_ok() && !batch.is_empty() {
            if here {
                hash_batch(batch, &mut buffer_here, &mut done_here);
            } else {
                let _ = sender.send(batch);
            }
        }
        if walked.is_err() {
            failed.store(true, Ordering::Relaxed);
        }
        drop(sender);
        let mut results: Vec<(usize, FileResult)> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .chain(done_here)
            .collect();
        results.sort_by_key(|(index, _)| *index);

        let hash_error = results.iter().position(|(_, r)| r.is_err());
        let notes = match (walked, hash_error) {
            (Err(RecordError::Internal(_)), Some(at)) | (Ok(_), Some(at)) => {
                return match results.swap_remove(at).1 {
                    Err(error) => Err(*error),
                    Ok(_) => Err(RecordError::Internal("lost a hashing error".into())),
                };
            }
            (Err(error), _) => return Err(error),
            (Ok(notes), None) => notes,
        };
        if results.len() != names.len() {
            return Err(RecordError::Internal(
                "a hashing thread stopped early".into(),
            ));
        }
        let files = names
            .into_iter()
            .zip(results)
            .map(|(name, (_, digest))| digest.map(|d| (name, d)).map_err(|e| *e))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Hashed { files, notes })
    })
}

fn changed(job: &FileJob, what: &'static str) -> RecordError {
    RecordError::Changed {
        path: job.name.clone(),
        what,
    }
}

fn same_file(a: &Stat, b: &Stat) -> bool {
    a.st_ino == b.st_ino
        && a.st_dev == b.st_dev
        && a.st_size == b.st_size
        && a.st_mtime == b.st_mtime
        && a.st_mtime_nsec == b.st_mtime_nsec
}

/// Hashes one file (see the module docs for the checks).
pub fn hash_file(
    job: &FileJob,
    normalize_line_endings: bool,
    buffer: &mut [u8],
    progress: Option<&Arc<Progress>>,
) -> Result<[u8; 32], RecordError> {
    let io = |e: rustix::io::Errno| RecordError::Io {
        path: PathBuf::from(&job.name),
        action: "read",
        source: e.into(),
    };
    // Without following a symlink in the last component, and without blocking should a FIFO
    // have appeared there.
    let fd = rustix::fs::openat(
        &*job.folder,
        job.file.as_c_str(),
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::LOOP => changed(job, "it was replaced by a symlink"),
        rustix::io::Errno::NOENT => changed(job, "it was removed"),
        other => io(other),
    })?;
    let before = rustix::fs::fstat(&fd).map_err(io)?;
    if FileType::from_raw_mode(before.st_mode) != FileType::RegularFile {
        return Err(changed(job, "it is no longer a regular file"));
    }
    if before.st_ino != job.inode {
        return Err(changed(job, "another file took its place"));
    }
    let size = u64::try_from(before.st_size).unwrap_or(0);
    let mut hasher = Sha256::new();
    let mut normaliser = normalize_line_endings.then(LineEndings::default);
    let mut total: u64 = 0;
    let mut file = File::from(fd);
    // Read as many bytes as the file holds and no more: a file that grows shows in the second
    // stat, one that shrinks in a short count; either way the extra read for EOF is saved.
    while total < size {
        let want = buffer
            .len()
            .min(usize::try_from(size - total).unwrap_or(usize::MAX));
        let n = match file.read(&mut buffer[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(RecordError::Io {
                    path: PathBuf::from(&job.name),
                    action: "read",
                    source,
                });
            }
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
    let after = rustix::fs::fstat(&file).map_err(io)?;
    if !same_file(&before, &after) || total != size {
        return Err(changed(job, "it changed while it was hashed"));
    }
    if let Some(p) = progress {
        p.files_done.fetch_add(1, Ordering::Relaxed);
    }
    Ok(hasher.finalize().into())
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

    fn job(dir: &std::path::Path, file: &str, inode: u64) -> FileJob {
        let folder = rustix::fs::open(dir, OFlags::DIRECTORY | OFlags::RDONLY, Mode::empty())
            .expect("open folder");
        FileJob {
            name: file.to_owned(),
            folder: Arc::new(folder),
            file: std::ffi::CString::new(file).expect("name"),
            inode,
        }
    }

    /// With no thread to spare, the files are hashed on the walking thread, batch by batch,
    /// to the same digests.
    #[test]
    fn without_threads_the_files_are_hashed_on_this_thread() {
        let dir = tempfile::tempdir().expect("tempdir");
        // More than one batch, and a part of one.
        for i in 0..(BATCH * 2 + 5) {
            std::fs::write(dir.path().join(format!("f{i:03}")), i.to_string()).expect("write");
        }
        let options = crate::record::RecordOptions {
            base_path: Some(dir.path().to_owned()),
            ..crate::record::RecordOptions::default()
        };
        let paths = [".".to_owned()];
        let threaded = crate::record::record_artifacts(&paths, &options)
            .expect("records")
            .artifacts;
        let alone = parallel::without_threads(|| crate::record::record_artifacts(&paths, &options))
            .expect("records without threads")
            .artifacts;
        assert_eq!(alone, threaded);
        assert_eq!(alone.len(), BATCH * 2 + 5);
    }

    #[test]
    fn g5_g6_a_file_removed_replaced_or_swapped_after_the_walk_is_refused() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let mut buffer = vec![0u8; 1024];
        // Removed between the walk and the hashing.
        match hash_file(&job(dir.path(), "gone", 1), false, &mut buffer, None) {
            Err(RecordError::Changed { what, .. }) => assert_eq!(what, "it was removed"),
            other => panic!("{other:?}"),
        }
        // Another file now stands under the name the walk saw.
        std::fs::write(dir.path().join("swapped"), "x").expect("write");
        let inode = std::fs::metadata(dir.path().join("swapped"))
            .expect("stat")
            .ino();
        match hash_file(
            &job(dir.path(), "swapped", inode + 1),
            false,
            &mut buffer,
            None,
        ) {
            Err(RecordError::Changed { what, .. }) => {
                assert_eq!(what, "another file took its place")
            }
            other => panic!("{other:?}"),
        }
        // A symlink now stands where a file was.
        std::os::unix::fs::symlink("swapped", dir.path().join("link")).expect("symlink");
        match hash_file(&job(dir.path(), "link", inode), false, &mut buffer, None) {
            Err(RecordError::Changed { what, .. }) => {
                assert_eq!(what, "it was replaced by a symlink")
            }
            other => panic!("{other:?}"),
        }
        // The file itself hashes.
        let digest = hash_file(&job(dir.path(), "swapped", inode), false, &mut buffer, None)
            .expect("hashes");
        assert_eq!(hex::encode(digest), sha(b"x"));
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
