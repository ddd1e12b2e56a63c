//! The one place that starts threads, and independent pieces of work spread over every core,
//! their results kept in input order.
//!
//! `std::thread::spawn` (and a scope's `spawn`) panic when the system cannot start a thread;
//! nothing in Tollgate calls them. [`spawn`] (and the crate's `spawn_scoped`) return a
//! [`SpawnError`] instead, and each caller either reports it or does the work on its own thread.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::{JoinHandle, Scope, ScopedJoinHandle};

/// The system could not start a thread (too many threads, or no memory for its stack).
#[derive(Debug, thiserror::Error)]
#[error("cannot start a thread for {name}: {source}")]
pub struct SpawnError {
    /// What the thread was for.
    pub name: &'static str,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// Starts `work` on a thread of its own, named `name`.
pub fn spawn<T, F>(name: &'static str, work: F) -> Result<JoinHandle<T>, SpawnError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    refused(name)?;
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(work)
        .map_err(|source| SpawnError { name, source })
}

/// Starts `work` on a thread of `scope`, named `name`.
pub(crate) fn spawn_scoped<'scope, 'env, T, F>(
    scope: &'scope Scope<'scope, 'env>,
    name: &'static str,
    work: F,
) -> Result<ScopedJoinHandle<'scope, T>, SpawnError>
where
    T: Send + 'scope,
    F: FnOnce() -> T + Send + 'scope,
{
    refused(name)?;
    std::thread::Builder::new()
        .name(name.to_owned())
        .spawn_scoped(scope, work)
        .map_err(|source| SpawnError { name, source })
}

#[cfg(not(test))]
fn refused(_name: &'static str) -> Result<(), SpawnError> {
    Ok(())
}

#[cfg(test)]
thread_local! {
    /// Set by [`without_threads`] on the thread that runs a test.
    static REFUSE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// In tests, fails as the system would when it cannot start a thread, while
/// [`without_threads`] runs on this thread.
#[cfg(test)]
fn refused(name: &'static str) -> Result<(), SpawnError> {
    match REFUSE.with(std::cell::Cell::get) {
        true => Err(SpawnError {
            name,
            source: std::io::Error::other("no thread for this test"),
        }),
        false => Ok(()),
    }
}

/// Runs `f` as if the system could start no thread (from this thread), so that tests can
/// check what each caller does then.
#[cfg(test)]
pub(crate) fn without_threads<R>(f: impl FnOnce() -> R) -> R {
    REFUSE.with(|refuse| refuse.set(true));
    let result = f();
    REFUSE.with(|refuse| refuse.set(false));
    result
}

/// Applies `work` to each item on as many threads as there are cores (and items), and returns
/// the results in the items' order. Threads take the next item as they finish one, so uneven
/// items still keep every core busy. A panic in `work` is raised again here: no result is
/// ever silently missing.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], work: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .min(items.len());
    if threads <= 1 {
        return items.iter().map(work).collect();
    }
    let next = AtomicUsize::new(0);
    let take = || {
        let mut done = Vec::new();
        loop {
            let index = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(index) else { break };
            done.push((index, work(item)));
        }
        done
    };
    let mut done: Vec<(usize, R)> = std::thread::scope(|scope| {
        // This thread works too; a thread the system cannot start leaves its share to the
        // others.
        let helpers: Vec<_> = (1..threads)
            .filter_map(|_| spawn_scoped(scope, "parallel map", take).ok())
            .collect();
        let mut done = take();
        for helper in helpers {
            match helper.join() {
                Ok(more) => done.extend(more),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        done
    });
    done.sort_unstable_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, result)| result).collect()
}

/// Frees `value` on a thread of its own, so that the caller need not wait for a large
/// structure (a chain of links holding a million artifacts) to be taken apart.
pub(crate) fn drop_in_background<T: Send + 'static>(value: T) {
    // Should no thread be available, the closure (and `value` with it) is dropped here.
    let _ = spawn("drop in background", move || drop(value));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_keep_the_order_of_the_items_whatever_finishes_first() {
        let items: Vec<u64> = (0..200).collect();
        // Early items take longest, so that they finish last.
        let results = map(&items, |&n| {
            std::thread::sleep(std::time::Duration::from_micros(200 - n));
            n * n
        });
        assert_eq!(results, items.iter().map(|n| n * n).collect::<Vec<_>>());
        assert!(map(&[] as &[u8], |_| 1).is_empty());
    }

    #[test]
    fn spawned_threads_carry_their_name_and_result() {
        let handle = spawn("a test", || {
            std::thread::current().name().map(str::to_owned)
        })
        .expect("a thread starts");
        assert_eq!(handle.join().ok().flatten().as_deref(), Some("a test"));
        let got = std::thread::scope(|scope| {
            spawn_scoped(scope, "a scoped test", || 7)
                .expect("a thread starts")
                .join()
                .ok()
        });
        assert_eq!(got, Some(7));
    }

    #[test]
    fn without_threads_nothing_starts_and_a_map_still_does_all_its_work() {
        without_threads(|| {
            match spawn("a test", || 1) {
                Err(SpawnError { name, .. }) => assert_eq!(name, "a test"),
                Ok(_) => panic!("a thread started"),
            }
            let items: Vec<u64> = (0..50).collect();
            assert_eq!(
                map(&items, |&n| n + 1),
                (1..51).collect::<Vec<_>>(),
                "done on this thread"
            );
        });
        assert!(
            spawn("a test", || 1).is_ok(),
            "threads start again afterwards"
        );
    }
}
