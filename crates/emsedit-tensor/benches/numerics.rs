//! Criterion benches of the backend layer: the ridge solve, and an f32 matmul of GPT-2-small
//! MLP shape on burn's two CPU backends next to the `gemm` crate called directly.
//!
//! `cargo bench -p emsedit-tensor --bench numerics`. Matmul throughput is reported as
//! elements/s where one element is one floating-point operation (so Gelem/s = GFLOP/s).

use std::hint::black_box;
use std::time::Duration;

use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor};
use criterion::measurement::WallTime;
use criterion::{
    BenchmarkGroup, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main,
};
use emsedit_tensor::{Cpu, NdArrayCpu, RidgeForm, cpu, ridge_solve};

/// GPT-2 small `mlp.c_proj`: a = 3072 inputs, b = 768 outputs.
const A: usize = 3072;
const B: usize = 768;

fn random<Be: Backend>(shape: [usize; 2], device: &Be::Device) -> Tensor<Be, 2> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

fn ridge(c: &mut Criterion) {
    let device = cpu();
    emsedit_tensor::seed::<Cpu>(&device, 0);
    let mut group = c.benchmark_group("ridge_solve_a3072_b768");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for n in [64usize, 256, 1024, 4096] {
        let k = random::<Cpu>([n, A], &device);
        let v = random::<Cpu>([n, B], &device);
        let gamma = random::<Cpu>([A, B], &device);
        group.bench_with_input(BenchmarkId::new("forward", n), &n, |bch, _| {
            bch.iter(|| black_box(ridge_solve(&k, &v, 1.0, RidgeForm::Auto).unwrap()))
        });
        let solved = ridge_solve(&k, &v, 1.0, RidgeForm::Auto).unwrap();
        group.bench_with_input(BenchmarkId::new("backward_v_lambda", n), &n, |bch, _| {
            bch.iter(|| black_box(solved.backward(&gamma, false).unwrap()))
        });
    }
    group.finish();
}

const M: usize = 128;
const K: usize = 768;
const N: usize = 3072;

fn burn_matmul<Be: Backend>(group: &mut BenchmarkGroup<'_, WallTime>, name: &str) {
    let device = Be::Device::default();
    let x = random::<Be>([M, K], &device);
    let w = random::<Be>([K, N], &device);
    group.bench_function(name, |bch| {
        bch.iter(|| black_box(x.clone().matmul(w.clone()).into_data()))
    });
}

/// `gemm::gemm` on row-major f32 buffers: out (m×n) = lhs (m×k) · rhs (k×n).
fn sgemm(m: usize, n: usize, k: usize, lhs: &[f32], rhs: &[f32], out: &mut [f32]) {
    assert!(lhs.len() == m * k && rhs.len() == k * n && out.len() == m * n);
    // SAFETY: the asserted extents match the row-major strides passed.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            1,
            k as isize,
            rhs.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::Rayon(0),
        );
    }
}

fn matmul(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul_128x768x3072");
    group.throughput(Throughput::Elements((2 * M * K * N) as u64));
    burn_matmul::<Cpu>(&mut group, "burn_flex");
    burn_matmul::<NdArrayCpu>(&mut group, "burn_ndarray");
    let x: Vec<f32> = (0..M * K).map(|i| (i % 7) as f32 * 0.1).collect();
    let w: Vec<f32> = (0..K * N).map(|i| (i % 5) as f32 * 0.1).collect();
    let mut out = vec![0f32; M * N];
    group.bench_function("gemm_crate", |bch| {
        bch.iter(|| {
            sgemm(M, N, K, &x, &w, &mut out);
            black_box(&out);
        })
    });
    group.finish();

    // The machine's practical f32 peak: a large square product.
    let mut peak = c.benchmark_group("peak_sgemm_2048");
    const S: usize = 2048;
    peak.throughput(Throughput::Elements((2 * S * S * S) as u64))
        .sample_size(10);
    let a = vec![1.0f32; S * S];
    let mut o = vec![0f32; S * S];
    peak.bench_function("gemm_crate", |bch| {
        bch.iter(|| {
            sgemm(S, S, S, &a, &a, &mut o);
            black_box(&o);
        })
    });
    peak.finish();
}

criterion_group!(benches, ridge, matmul);
criterion_main!(benches);
