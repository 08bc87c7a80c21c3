//! Work split across threads where each piece runs burn's autodiff.
//!
//! burn-autodiff holds a graph's lock for the whole of its backward pass, products included,
//! and after every backward pass locks every live graph in turn. A backward pass run on one of
//! rayon's shared workers can therefore block that worker on another graph's lock while the
//! thread holding it waits for rayon's workers to finish its product: a deadlock (seen with two
//! editors trained at once by the test harness). [`scoped_map`] runs each piece in a rayon pool
//! of its own, made for that call and shared with no other work, so a piece's products run on
//! its own threads (one core each on 2 cores, where the pieces no longer queue on the same two
//! workers) and nothing waits on a worker that another piece's lock holds.
/// `f` of every item, in order, `rayon::current_num_threads()` items at once, each on a scoped
/// thread in a rayon pool of its own with an equal share of those threads (see the module's
/// comment); one after another on the calling thread when rayon has one thread or there is
/// one item. A panic in `f` is resumed here.
pub fn scoped_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    let threads = rayon::current_num_threads().max(1);
    if threads == 1 || items.len() < 2 {
        return items.into_iter().map(f).collect();
    }
    let f = &f;
    let mut out = Vec::with_capacity(items.len());
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        let wave: Vec<T> = items.by_ref().take(threads).collect();
        let shares = shares(threads, wave.len());
        let done = std::thread::scope(|s| {
            let handles: Vec<_> = wave
                .into_iter()
                .zip(shares)
                .map(|(x, share)| s.spawn(move || in_own_pool(share, || f(x))))
                .collect();
            handles.into_iter().map(|h| h.join()).collect::<Vec<_>>()
        });
        for r in done {
            match r {
                Ok(r) => out.push(r),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    }
    out
}

/// `threads` split into `pieces` near-equal shares, each at least one.
fn shares(threads: usize, pieces: usize) -> Vec<usize> {
    let pieces = pieces.max(1);
    (0..pieces)
        .map(|i| (threads / pieces + usize::from(i < threads % pieces)).max(1))
        .collect()
}

/// `f` in a new rayon pool of `threads` threads; on the calling thread (rayon's products then
/// go to the global pool) if the pool cannot be made.
fn in_own_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool.install(f),
        Err(_) => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_order() {
        let got = scoped_map((0..7).collect(), |x: i32| x * x);
        assert_eq!(got, vec![0, 1, 4, 9, 16, 25, 36]);
        assert_eq!(scoped_map(Vec::<i32>::new(), |x| x), Vec::<i32>::new());
    }

    #[test]
    fn each_piece_gets_its_share_of_threads() {
        assert_eq!(shares(2, 2), vec![1, 1]);
        assert_eq!(shares(16, 3), vec![6, 5, 5]);
        assert_eq!(shares(2, 5), vec![1, 1, 1, 1, 1]);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(4)
            .build()
            .unwrap();
        let seen = pool.install(|| scoped_map(vec![(); 2], |()| rayon::current_num_threads()));
        assert_eq!(seen, vec![2, 2]);
    }
}
