//! Criterion benches of the backend layer: the ridge solve and an f32 matmul of GPT-2-small
//! MLP shape on burn's CPU backend, next to the `gemm` crate on the same shape.
//!
//! `cargo bench -p emsedit-tensor --bench numerics` (add `--features ndarray` to include burn's
//! deprecated ndarray backend in the matmul comparison).

use std::hint::black_box;
use std::time::Duration;

use burn::tensor::{Distribution, Tensor};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use emsedit_tensor::{Device, RidgeForm, cpu, ridge_solve};

/// GPT-2 small `mlp.c_proj`: a = 3072 inputs, b = 768 outputs.
const A: usize = 3072;
const B: usize = 768;

fn random(shape: [usize; 2], device: &Device) -> Tensor<2> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

fn ridge(c: &mut Criterion) {
    let device = cpu();
    device.seed(0);
    let mut group = c.benchmark_group("ridge_solve");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(8));
    for n in [64usize, 256, 1024, 4096] {
        let k = random([n, A], &device);
        let v = random([n, B], &device);
        let gamma = random([A, B], &device);
        group.bench_with_input(BenchmarkId::new("forward", n), &n, |bch, _| {
            bch.iter(|| {
                let r = ridge_solve(&k, &v, 1.0, RidgeForm::Auto).unwrap();
                black_box(r.delta().clone().into_data());
            })
        });
        let solved = ridge_solve(&k, &v, 1.0, RidgeForm::Auto).unwrap();
        group.bench_with_input(BenchmarkId::new("backward_v_lambda", n), &n, |bch, _| {
            bch.iter(|| {
                let g = solved.backward(&gamma, false).unwrap();
                black_box(g.values.into_data());
            })
        });
    }
    group.finish();
}

const M: usize = 128;
const K: usize = 768;
const N: usize = 3072;

fn matmul_on(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    device: &Device,
) {
    let x = random([M, K], device);
    let w = random([K, N], device);
    group.bench_function(name, |bch| {
        bch.iter(|| black_box(x.clone().matmul(w.clone()).into_data()))
    });
}

fn matmul(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul_128x768x3072");
    group.throughput(Throughput::Elements((2 * M * K * N) as u64));
    matmul_on(&mut group, "burn_flex", &cpu());
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    matmul_on(&mut group, "burn_ndarray", &Device::ndarray());

    let x: Vec<f32> = (0..M * K).map(|i| (i % 7) as f32 * 0.1).collect();
    let w: Vec<f32> = (0..K * N).map(|i| (i % 5) as f32 * 0.1).collect();
    let mut out = vec![0f32; M * N];
    group.bench_function("gemm_crate", |bch| {
        bch.iter(|| {
            // SAFETY: row-major buffers of the stated sizes.
            unsafe {
                gemm::gemm(
                    M,
                    N,
                    K,
                    out.as_mut_ptr(),
                    1,
                    N as isize,
                    false,
                    x.as_ptr(),
                    1,
                    K as isize,
                    w.as_ptr(),
                    1,
                    N as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::Rayon(0),
                );
            }
            black_box(&out);
        })
    });
    group.finish();

    // The machine's practical f32 peak: a large square gemm.
    let mut peak = c.benchmark_group("peak_gemm_2048");
    const S: usize = 2048;
    peak.throughput(Throughput::Elements((2 * S * S * S) as u64))
        .sample_size(10);
    let a = vec![1.0f32; S * S];
    let mut o = vec![0f32; S * S];
    peak.bench_function("gemm_crate", |bch| {
        bch.iter(|| {
            // SAFETY: row-major square buffers.
            unsafe {
                gemm::gemm(
                    S,
                    S,
                    S,
                    o.as_mut_ptr(),
                    1,
                    S as isize,
                    false,
                    a.as_ptr(),
                    1,
                    S as isize,
                    a.as_ptr(),
                    1,
                    S as isize,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    gemm::Parallelism::Rayon(0),
                );
            }
            black_box(&o);
        })
    });
    peak.finish();
}

criterion_group!(benches, ridge, matmul);
criterion_main!(benches);
