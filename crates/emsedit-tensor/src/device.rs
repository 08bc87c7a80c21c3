//! Backends, devices and seeding.
//!
//! burn 0.21 carries the backend in the type: code is generic over `B: Backend`, and this
//! module names the concrete choices. [`Cpu`] is the default (burn's Flex backend, see
//! `docs/performance.md` for why not ndarray), [`CpuTrain`] adds autodiff; with the `cuda`
//! feature, [`Cuda`] / [`CudaTrain`] are burn's CubeCL CUDA backend (the `burn-cuda` crate).
//! Every pass that is never followed by a backward belongs on the plain backend
//! (`Tensor::inner`), not the autodiff one.

use std::fmt;
use std::str::FromStr;

use burn::backend::Autodiff;
use burn::tensor::Device;
use burn::tensor::backend::Backend;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::TensorError;

/// The default CPU backend.
pub type Cpu = burn::backend::Flex;
/// The default CPU backend with autodiff.
pub type CpuTrain = Autodiff<Cpu>;
/// burn's ndarray CPU backend (kept for comparison; see `docs/performance.md`).
pub type NdArrayCpu = burn::backend::NdArray<f32>;
/// The CUDA backend.
#[cfg(feature = "cuda")]
pub type Cuda = burn::backend::Cuda<f32, i32>;
/// The CUDA backend with autodiff.
#[cfg(feature = "cuda")]
pub type CudaTrain = Autodiff<Cuda>;

/// The default CPU device.
pub fn cpu() -> Device<Cpu> {
    Default::default()
}

/// Which backend to run on, as chosen on a command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceKind {
    /// The CPU backend [`Cpu`].
    #[default]
    Cpu,
    /// A CUDA GPU by index (needs the `cuda` feature).
    Cuda(usize),
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cpu => f.write_str("cpu"),
            Self::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl FromStr for DeviceKind {
    type Err = TensorError;

    /// Parses `cpu`, `cuda` or `cuda:N`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason: &str| TensorError::Device {
            name: s.to_string(),
            reason: reason.to_string(),
        };
        match s.trim() {
            "cpu" => Ok(Self::Cpu),
            "cuda" => Ok(Self::Cuda(0)),
            other => match other.strip_prefix("cuda:") {
                Some(i) => i
                    .parse()
                    .map(Self::Cuda)
                    .map_err(|_| bad("expected `cuda:N` with N a GPU index")),
                None => Err(bad("expected `cpu`, `cuda` or `cuda:N`")),
            },
        }
    }
}

impl DeviceKind {
    /// Checks that this build can provide the device.
    pub fn ensure_available(self) -> Result<Self, TensorError> {
        match self {
            Self::Cuda(_) if !cfg!(feature = "cuda") => Err(TensorError::Device {
                name: self.to_string(),
                reason: "this build lacks the `cuda` cargo feature".to_string(),
            }),
            other => Ok(other),
        }
    }
}

/// The CUDA device with this index.
#[cfg(feature = "cuda")]
pub fn cuda(index: usize) -> Device<Cuda> {
    burn::backend::cuda::CudaDevice::new(index)
}

/// Seeds the backend's random generator and returns a host generator with the same seed.
///
/// The host generator (ChaCha8) gives the same stream on every platform and crate version.
pub fn seed<B: Backend>(device: &B::Device, seed: u64) -> ChaCha8Rng {
    B::seed(device, seed);
    host_rng(seed)
}

/// Serialises users of the backend's global random generator within one process.
///
/// `B::seed` and `Tensor::random` share one generator per backend, so two threads that seed
/// and draw (parallel tests, say) interleave their draws. Hold this guard from `seed` to the
/// last draw to make the draws reproducible.
pub fn rng_lock() -> std::sync::MutexGuard<'static, ()> {
    static RNG: std::sync::Mutex<()> = std::sync::Mutex::new(());
    RNG.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A reproducible host random generator.
pub fn host_rng(seed: u64) -> ChaCha8Rng {
    ChaCha8Rng::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn parses_device_names() {
        assert_eq!("cpu".parse::<DeviceKind>().unwrap(), DeviceKind::Cpu);
        assert_eq!("cuda".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda(0));
        assert_eq!("cuda:3".parse::<DeviceKind>().unwrap(), DeviceKind::Cuda(3));
        assert!("cuda:x".parse::<DeviceKind>().is_err());
        assert!("tpu".parse::<DeviceKind>().is_err());
        assert_eq!(DeviceKind::Cuda(2).to_string(), "cuda:2");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_feature_is_an_error() {
        let err = DeviceKind::Cuda(0).ensure_available().unwrap_err();
        assert!(err.to_string().contains("cuda"), "{err}");
        assert_eq!(DeviceKind::Cpu.ensure_available().unwrap(), DeviceKind::Cpu);
    }

    #[test]
    fn host_rng_is_reproducible() {
        let a: Vec<u32> = host_rng(7).random_iter().take(4).collect();
        let b: Vec<u32> = host_rng(7).random_iter().take(4).collect();
        let c: Vec<u32> = host_rng(8).random_iter().take(4).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}
