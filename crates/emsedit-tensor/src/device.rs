//! Device choice and seeding.
//!
//! burn 0.22 carries the backend in a runtime [`Device`] rather than in a type parameter, so
//! the "backend aliases" of this layer are device constructors: [`cpu`] (burn's Flex backend,
//! pure Rust with `gemm` matmuls) and, with the `cuda` feature, [`DeviceKind::Cuda`] (burn's
//! CubeCL CUDA backend, the `burn-cuda` crate). [`autodiff`] adds gradient tracking; every
//! pass that is never followed by a backward must run on the plain device (see
//! `docs/architecture.md`).

use std::fmt;
use std::str::FromStr;

use burn::tensor::Device;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::TensorError;

/// Which backend to run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceKind {
    /// burn's Flex CPU backend (multi-threaded with rayon).
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
    /// The burn device for this kind, without autodiff.
    pub fn device(self) -> Result<Device, TensorError> {
        match self {
            Self::Cpu => Ok(cpu()),
            Self::Cuda(index) => cuda(index),
        }
    }
}

/// The default CPU device (burn Flex).
pub fn cpu() -> Device {
    Device::flex()
}

#[cfg(feature = "cuda")]
fn cuda(index: usize) -> Result<Device, TensorError> {
    Ok(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda(index: usize) -> Result<Device, TensorError> {
    Err(TensorError::Device {
        name: DeviceKind::Cuda(index).to_string(),
        reason: "this build lacks the `cuda` cargo feature".to_string(),
    })
}

/// The same device with gradient tracking.
pub fn autodiff(device: &Device) -> Device {
    device.clone().autodiff()
}

/// The same device without gradient tracking: where every no-grad pass belongs.
pub fn plain(device: &Device) -> Device {
    device.clone().inner()
}

/// Seeds the device's random generator and returns a host generator with the same seed.
///
/// The host generator (ChaCha8) gives the same stream on every platform and crate version.
pub fn seed(device: &Device, seed: u64) -> ChaCha8Rng {
    device.seed(seed);
    host_rng(seed)
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
        let err = DeviceKind::Cuda(0).device().unwrap_err();
        assert!(err.to_string().contains("cuda"), "{err}");
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
