//! Work split across threads where each piece runs burn's autodiff.
//!
//! burn-autodiff holds a graph's lock for the whole of its backward pass, products included,
//! and after every backward pass locks every live graph in turn. A backward pass run on one of
//! rayon's workers can therefore block that worker on another graph's lock while the thread
//! holding it waits for rayon's workers to finish its product: a deadlock (seen with two
//! editors trained at once by the test harness). [`scoped_map`] runs each piece on a plain
//! scoped thread instead, so rayon's workers only ever run products and never wait on a lock.

/// `f` of every item, in order, on up to `rayon::current_num_threads()` scoped threads at once
/// (not rayon's workers: see the module's comment); one after another on the calling thread
/// when rayon has one thread or there is one item. A panic in `f` is resumed here.
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
        let done = std::thread::scope(|s| {
            let handles: Vec<_> = wave.into_iter().map(|x| s.spawn(move || f(x))).collect();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_come_in_order() {
        let got = scoped_map((0..7).collect(), |x: i32| x * x);
        assert_eq!(got, vec![0, 1, 4, 9, 16, 25, 36]);
        assert_eq!(scoped_map(Vec::<i32>::new(), |x| x), Vec::<i32>::new());
    }
}
