//! The prefix cache: hidden states entering the lowest edited block, per batch.
//!
//! An editor changes only its edited modules, so the blocks below the lowest of them compute
//! the same hidden states on every pass over the same prompts (the K steps, the meta-loss
//! passes, RLEdit's backtracking, FT's Adam steps). With the cache on, a pass over a batch seen
//! before starts at that block from the saved state: the same numbers, bit for bit, for less
//! work. Setting a weight below the cached block empties the cache.
//!
//! The scoring cache ([`crate::CausalLm::start_scoring_cache`]) is a second one of these for
//! scoring passes across a whole run: the evaluation prompts, scored before editing and after
//! every edit, start from their saved states; when full it keeps what it holds.

use std::collections::HashMap;
use std::sync::Mutex;

use burn::tensor::Tensor;
use burn::tensor::backend::Backend;

use crate::batch::Batch;

/// Largest total size of the saved states; past it the cache starts again empty.
pub const MAX_PREFIX_BYTES: usize = 256 << 20;

/// Largest total size of the scoring cache's states; past it no more are saved (the first
/// prompts scored, a run's evaluation records, keep theirs).
pub const MAX_SCORING_BYTES: usize = 128 << 20;

struct Saved<B: Backend> {
    layer: usize,
    bytes: usize,
    /// Most bytes held.
    cap: usize,
    /// When full: keep the states held (true) or start again empty.
    keep: bool,
    states: HashMap<Vec<i64>, Tensor<B, 3>>,
}

/// Saved hidden states entering block `layer`, keyed by a batch's ids and mask.
pub(crate) struct PrefixCache<B: Backend> {
    saved: Mutex<Option<Saved<B>>>,
}

impl<B: Backend> PrefixCache<B> {
    pub(crate) fn off() -> Self {
        Self {
            saved: Mutex::new(None),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Saved<B>>> {
        // A panic while holding the lock leaves a consistent map (inserts are single calls).
        self.saved.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Caches states entering `layer` from now on (layer 0 turns the cache off: no gain); when
    /// full it starts again empty.
    pub(crate) fn start(&self, layer: usize) {
        self.start_with(layer, MAX_PREFIX_BYTES, false);
    }

    /// As [`PrefixCache::start`], at most `cap` bytes; when full, `keep` keeps what it holds.
    pub(crate) fn start_with(&self, layer: usize, cap: usize, keep: bool) {
        *self.lock() = (layer > 0).then(|| Saved {
            layer,
            bytes: 0,
            cap,
            keep,
            states: HashMap::new(),
        });
    }

    /// Turns the cache off and frees its states.
    pub(crate) fn stop(&self) {
        *self.lock() = None;
    }

    /// The cached block, when the cache is on.
    pub(crate) fn layer(&self) -> Option<usize> {
        self.lock().as_ref().map(|s| s.layer)
    }

    /// Forgets the states when a weight of block `layer` changes below the cached block.
    pub(crate) fn weight_changed(&self, layer: usize) {
        if let Some(saved) = self.lock().as_mut()
            && layer < saved.layer
        {
            saved.states.clear();
            saved.bytes = 0;
        }
    }

    pub(crate) fn get(&self, batch: &Batch) -> Option<Tensor<B, 3>> {
        self.lock().as_ref()?.states.get(&key(batch)).cloned()
    }

    pub(crate) fn put(&self, batch: &Batch, state: Tensor<B, 3>) {
        let mut guard = self.lock();
        let Some(saved) = guard.as_mut() else {
            return;
        };
        let bytes = state.shape().num_elements() * size_of::<f32>();
        if saved.bytes.saturating_add(bytes) > saved.cap {
            if saved.keep {
                return;
            }
            saved.states.clear();
            saved.bytes = 0;
        }
        if bytes <= saved.cap && saved.states.insert(key(batch), state).is_none() {
            saved.bytes += bytes;
        }
    }
}

fn key(batch: &Batch) -> Vec<i64> {
    let mut k = Vec::with_capacity(2 + 2 * batch.input_ids.len());
    k.extend([batch.batch as i64, batch.time as i64]);
    k.extend(&batch.input_ids);
    k.extend(&batch.attention_mask);
    k
}

impl<B: Backend> Clone for PrefixCache<B> {
    /// A copy starts with the cache off: it is a property of one editing session.
    fn clone(&self) -> Self {
        Self::off()
    }
}

impl<B: Backend> std::fmt::Debug for PrefixCache<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.lock().as_ref() {
            Some(s) => write!(
                f,
                "PrefixCache(layer {}, {} states, {} bytes)",
                s.layer,
                s.states.len(),
                s.bytes
            ),
            None => write!(f, "PrefixCache(off)"),
        }
    }
}
