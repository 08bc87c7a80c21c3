//! Solves the committed ridge fixture in both forms and checks the answer.
//!
//! `cargo run --release --example solve_fixture [-- PATH]`
//!
//! Until the editing pipeline lands this is the main job: it loads `fixtures/ridge/system.json`,
//! solves `Δ = (KᵀK + λI)⁻¹KᵀV` by Cholesky in the a×a and the N×N (Woodbury) forms, and prints
//! the time, the residual of the normal equations and the gradient of `⟨1, Δ⟩` w.r.t. λ.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use emsedit::fixtures::RidgeSystem;
use emsedit::{Cpu, RidgeForm, Tensor, cpu, ridge_solve};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(RidgeSystem::default_path);
    let sys = RidgeSystem::load(&path)?;
    let device = cpu();
    let (k, v) = sys.tensors::<Cpu>(&device);
    let shown = path
        .strip_prefix(env!("CARGO_MANIFEST_DIR"))
        .unwrap_or(&path);
    println!(
        "{}: N = {} keys of width a = {}, values of width b = {}, λ = {}",
        shown.display(),
        sys.n,
        sys.a,
        sys.b,
        sys.lambda
    );
    println!(
        "{:<8} {:>10} {:>14} {:>14}",
        "form", "time", "residual", "∂⟨1,Δ⟩/∂λ"
    );
    let mut deltas = Vec::new();
    for form in [RidgeForm::Primal, RidgeForm::Dual] {
        let start = Instant::now();
        let ridge = ridge_solve(&k, &v, sys.lambda, form)?;
        let delta = ridge.delta().clone();
        let _ = delta.to_data();
        let elapsed = start.elapsed();
        // Residual of the normal equations: ‖(KᵀK + λI)Δ − KᵀV‖ / ‖KᵀV‖.
        let kt = k.clone().transpose();
        let rhs = kt.clone().matmul(v.clone());
        let lhs = kt.matmul(k.clone()).matmul(delta.clone()) + delta.clone().mul_scalar(sys.lambda);
        let residual = norm(lhs - rhs.clone()) / norm(rhs);
        let grads = ridge.backward(&Tensor::ones(delta.dims(), &device), false)?;
        println!(
            "{:<8} {:>8.2}ms {:>14.3e} {:>14.6e}",
            format!("{form:?}"),
            elapsed.as_secs_f64() * 1e3,
            residual,
            grads.lambda
        );
        deltas.push(delta);
    }
    let agree = norm(deltas[0].clone() - deltas[1].clone()) / norm(deltas[0].clone());
    println!("relative difference between the two forms: {agree:.3e}");
    if agree.is_nan() || agree > 1e-5 {
        return Err(format!("the forms disagree by {agree:e}").into());
    }
    Ok(())
}

fn norm(t: Tensor<Cpu, 2>) -> f64 {
    f64::from(t.powi_scalar(2).sum().into_scalar()).sqrt()
}
