//! Small reproducible inputs that ship in `fixtures/`, made by `cargo xtask fixtures`.

use std::path::{Path, PathBuf};

use burn::tensor::backend::Backend;
use burn::tensor::{Tensor, TensorData};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Errors reading a fixture file.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    /// The file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid JSON of the expected shape.
    #[error("{path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause, with line and column.
        source: serde_json::Error,
    },
    /// A field whose length disagrees with the stated dimensions.
    #[error("{path}: field `{field}` has {got} entries, expected {expected}")]
    Length {
        /// The file.
        path: PathBuf,
        /// The field.
        field: &'static str,
        /// Entries found.
        got: usize,
        /// Entries implied by `n`, `a`, `b`.
        expected: usize,
    },
}

/// A ridge system `(K, V, λ)` of N key rows of width a and value rows of width b.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RidgeSystem {
    /// Seed it was generated from.
    pub seed: u64,
    /// Rows N.
    pub n: usize,
    /// Key width a.
    pub a: usize,
    /// Value width b.
    pub b: usize,
    /// Ridge coefficient λ.
    pub lambda: f64,
    /// K, row-major N×a.
    pub keys: Vec<f32>,
    /// V, row-major N×b.
    pub values: Vec<f32>,
}

impl RidgeSystem {
    /// Where the committed fixture lives, relative to the repository root.
    pub const PATH: &'static str = "fixtures/ridge/system.json";

    /// The committed fixture's absolute path in this source tree.
    pub fn default_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(Self::PATH)
    }

    /// A seeded system: keys N(0,1)-like with a low-rank structure, values uniform.
    pub fn generate(seed: u64, n: usize, a: usize, b: usize, lambda: f64) -> Self {
        let mut rng = emsedit_tensor::host_rng(seed);
        let basis: Vec<f32> = (0..4 * a).map(|_| rng.random_range(-1.0..1.0)).collect();
        let keys = (0..n)
            .flat_map(|_| {
                let mix: [f32; 4] = std::array::from_fn(|_| rng.random_range(-1.0..1.0));
                let noise: Vec<f32> = (0..a).map(|_| rng.random_range(-0.1..0.1)).collect();
                (0..a)
                    .map(|j| (0..4).map(|r| mix[r] * basis[r * a + j]).sum::<f32>() + noise[j])
                    .collect::<Vec<_>>()
            })
            .collect();
        let values = (0..n * b).map(|_| rng.random_range(-1.0..1.0)).collect();
        Self {
            seed,
            n,
            a,
            b,
            lambda,
            keys,
            values,
        }
    }

    /// The committed fixture's parameters.
    pub fn standard() -> Self {
        Self::generate(20260425, 32, 96, 8, 0.5)
    }

    /// Reads and checks a system file.
    pub fn load(path: &Path) -> Result<Self, FixtureError> {
        let text = std::fs::read_to_string(path).map_err(|source| FixtureError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let sys: Self = serde_json::from_str(&text).map_err(|source| FixtureError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        for (field, got, expected) in [
            ("keys", sys.keys.len(), sys.n * sys.a),
            ("values", sys.values.len(), sys.n * sys.b),
        ] {
            if got != expected {
                return Err(FixtureError::Length {
                    path: path.to_path_buf(),
                    field,
                    got,
                    expected,
                });
            }
        }
        Ok(sys)
    }

    /// The file text: one line of JSON and a newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string(self).expect("plain data serializes");
        s.push('\n');
        s
    }

    /// K and V as tensors.
    pub fn tensors<B: Backend>(&self, device: &B::Device) -> (Tensor<B, 2>, Tensor<B, 2>) {
        let k = TensorData::new(self.keys.clone(), [self.n, self.a]);
        let v = TensorData::new(self.values.clone(), [self.n, self.b]);
        (Tensor::from_data(k, device), Tensor::from_data(v, device))
    }
}
