//! Independent pieces of work spread over every core, their results kept in input order.

use std::sync::atomic::{AtomicUsize, Ordering};

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
            .filter_map(|_| std::thread::Builder::new().spawn_scoped(scope, take).ok())
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
    // Should no thread be available, it is freed here.
    let _ = std::thread::Builder::new().spawn(move || drop(value));
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
}
