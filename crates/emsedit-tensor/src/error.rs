//! The error type of the backend layer.

/// Errors of the numerical core. Each names the operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum TensorError {
    /// Operands whose shapes do not fit together.
    #[error("{op}: shape mismatch: {detail}")]
    Shape {
        /// The operation.
        op: &'static str,
        /// What did not fit.
        detail: String,
    },
    /// An operand or intermediate holds NaN or infinity.
    #[error("{op}: {what} contains a non-finite value")]
    NonFinite {
        /// The operation.
        op: &'static str,
        /// Which operand.
        what: &'static str,
    },
    /// A ridge coefficient that is negative or not finite.
    #[error("{op}: ridge coefficient λ = {lambda} must be finite and ≥ 0")]
    InvalidRidge {
        /// The operation.
        op: &'static str,
        /// The offending value.
        lambda: f64,
    },
    /// Cholesky met a pivot that is not positive.
    #[error("{op}: matrix of order {order} is not positive definite (pivot {index} is {pivot:e})")]
    NotPositiveDefinite {
        /// The operation.
        op: &'static str,
        /// Index of the failing pivot.
        index: usize,
        /// Order of the matrix.
        order: usize,
        /// The pivot value before the square root.
        pivot: f64,
    },
    /// A system too ill-conditioned for an f32 answer to mean anything.
    #[error("{op}: system is ill-conditioned (condition estimate {estimate:e} > {limit:e})")]
    IllConditioned {
        /// The operation.
        op: &'static str,
        /// Squared ratio of the extreme diagonal entries of the Cholesky factor.
        estimate: f64,
        /// The accepted maximum.
        limit: f64,
    },
    /// A device that this build cannot provide.
    #[error("device `{name}` is not available: {reason}")]
    Device {
        /// The requested device.
        name: String,
        /// Why it is unavailable.
        reason: String,
    },
    /// Reading tensor data back from a device failed.
    #[error("{op}: reading tensor data failed: {detail}")]
    Read {
        /// The operation.
        op: &'static str,
        /// The backend's message.
        detail: String,
    },
}
