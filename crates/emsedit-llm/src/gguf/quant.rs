//! GGML tensor types and their dequantization to f32.
//!
//! Each block format is llama.cpp's (`ggml-quants.c`, `dequantize_row_*`). The arithmetic is
//! the same sequence of f32 operations as there and as in the Python `gguf` package
//! (`gguf/quants.py`), so the results agree bit for bit: scales are f16 widened to f32, a
//! super-block's sub-scale is `d · sc` rounded to f32 before it multiplies the quant, and
//! offsets are subtracted (K types) or added (Q4_1, Q5_1) after the product. No fused
//! multiply-add is used (Rust never contracts `a * b + c`).

use half::f16;

/// Values per super-block of the K types.
pub const QK_K: usize = 256;

/// The tensor types this crate dequantizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    /// 32-bit float.
    F32,
    /// 16-bit float.
    F16,
    /// bfloat16.
    BF16,
    /// 32 values: f16 scale, 4-bit quants, offset −8.
    Q4_0,
    /// 32 values: f16 scale and minimum, 4-bit quants.
    Q4_1,
    /// 32 values: f16 scale, 5-bit quants (high bits packed in a u32), offset −16.
    Q5_0,
    /// 32 values: f16 scale and minimum, 5-bit quants.
    Q5_1,
    /// 32 values: f16 scale, 8-bit signed quants.
    Q8_0,
    /// 256 values: f16 scale and minimum, eight 6-bit sub-scales and sub-minima, 4-bit quants.
    Q4_K,
    /// 256 values: as Q4_K with a fifth bit per quant.
    Q5_K,
    /// 256 values: f16 scale, sixteen 8-bit sub-scales, 6-bit quants, offset −32.
    Q6_K,
}

/// The names of every GGML type id (for messages about the ones not dequantized here).
const NAMES: [&str; 40] = [
    "F32",
    "F16",
    "Q4_0",
    "Q4_1",
    "Q4_2",
    "Q4_3",
    "Q5_0",
    "Q5_1",
    "Q8_0",
    "Q8_1",
    "Q2_K",
    "Q3_K",
    "Q4_K",
    "Q5_K",
    "Q6_K",
    "Q8_K",
    "IQ2_XXS",
    "IQ2_XS",
    "IQ3_XXS",
    "IQ1_S",
    "IQ4_NL",
    "IQ3_S",
    "IQ2_S",
    "IQ4_XS",
    "I8",
    "I16",
    "I32",
    "I64",
    "F64",
    "IQ1_M",
    "BF16",
    "Q4_0_4_4",
    "Q4_0_4_8",
    "Q4_0_8_8",
    "TQ1_0",
    "TQ2_0",
    "IQ4_NL_4_4",
    "IQ4_NL_4_8",
    "IQ4_NL_8_8",
    "MXFP4",
];

impl GgmlType {
    /// The type with GGML id `id`: `Ok(type)`, or `Err(message)` naming the id (and the type
    /// when it is known but not dequantized here).
    pub fn from_id(id: u32) -> Result<Self, String> {
        Ok(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            12 => Self::Q4_K,
            13 => Self::Q5_K,
            14 => Self::Q6_K,
            30 => Self::BF16,
            _ => {
                return Err(match NAMES.get(id as usize) {
                    Some(name) => format!(
                        "type {name} (id {id}) cannot be dequantized (supported: {})",
                        Self::SUPPORTED
                    ),
                    None => format!("unknown tensor type id {id}"),
                });
            }
        })
    }

    /// The supported types, for messages.
    pub const SUPPORTED: &'static str =
        "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K";

    /// The GGML id.
    pub fn id(self) -> u32 {
        match self {
            Self::F32 => 0,
            Self::F16 => 1,
            Self::Q4_0 => 2,
            Self::Q4_1 => 3,
            Self::Q5_0 => 6,
            Self::Q5_1 => 7,
            Self::Q8_0 => 8,
            Self::Q4_K => 12,
            Self::Q5_K => 13,
            Self::Q6_K => 14,
            Self::BF16 => 30,
        }
    }

    /// The name llama.cpp uses.
    pub fn name(self) -> &'static str {
        NAMES[self.id() as usize]
    }

    /// Values per block.
    pub fn block_size(self) -> usize {
        match self {
            Self::F32 | Self::F16 | Self::BF16 => 1,
            Self::Q4_0 | Self::Q4_1 | Self::Q5_0 | Self::Q5_1 | Self::Q8_0 => 32,
            Self::Q4_K | Self::Q5_K | Self::Q6_K => QK_K,
        }
    }

    /// Bytes per block.
    pub fn type_size(self) -> usize {
        match self {
            Self::F32 => 4,
            Self::F16 | Self::BF16 => 2,
            Self::Q4_0 => 18,
            Self::Q4_1 => 20,
            Self::Q5_0 => 22,
            Self::Q5_1 => 24,
            Self::Q8_0 => 34,
            Self::Q4_K => 144,
            Self::Q5_K => 176,
            Self::Q6_K => 210,
        }
    }

    /// Bytes taken by `n` values, or `None` when `n` is not a whole number of blocks (or the
    /// size overflows).
    pub fn bytes_for(self, n: u64) -> Option<u64> {
        let block = self.block_size() as u64;
        n.is_multiple_of(block)
            .then(|| (n / block).checked_mul(self.type_size() as u64))
            .flatten()
    }
}

fn half(b: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([b[at], b[at + 1]]).to_f32()
}

/// Dequantizes whole blocks of type `ty` to f32; `None` when `bytes` is not a whole number of
/// blocks.
pub fn dequantize(ty: GgmlType, bytes: &[u8]) -> Option<Vec<f32>> {
    let size = ty.type_size();
    if !bytes.len().is_multiple_of(size) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / size * ty.block_size());
    for block in bytes.chunks_exact(size) {
        match ty {
            GgmlType::F32 => out.push(f32::from_le_bytes([block[0], block[1], block[2], block[3]])),
            GgmlType::F16 => out.push(half(block, 0)),
            GgmlType::BF16 => out.push(half::bf16::from_le_bytes([block[0], block[1]]).to_f32()),
            GgmlType::Q4_0 => q4_0(block, &mut out),
            GgmlType::Q4_1 => q4_1(block, &mut out),
            GgmlType::Q5_0 => q5_0(block, &mut out),
            GgmlType::Q5_1 => q5_1(block, &mut out),
            GgmlType::Q8_0 => q8_0(block, &mut out),
            GgmlType::Q4_K => q4_k(block, &mut out),
            GgmlType::Q5_K => q5_k(block, &mut out),
            GgmlType::Q6_K => q6_k(block, &mut out),
        }
    }
    Some(out)
}

/// The 4-bit quants of a 32-value block: the low nibbles of `qs` are values 0..16, the high
/// nibbles values 16..32.
fn nibbles(qs: &[u8]) -> [u8; 32] {
    std::array::from_fn(|i| {
        if i < 16 {
            qs[i] & 0x0F
        } else {
            qs[i - 16] >> 4
        }
    })
}

/// The fifth bits of a Q5 block: bit `i` of the little-endian u32 is value `i`'s.
fn fifth_bits(qh: &[u8]) -> [u8; 32] {
    let bits = u32::from_le_bytes([qh[0], qh[1], qh[2], qh[3]]);
    std::array::from_fn(|i| ((bits >> i) & 1) as u8)
}

fn q4_0(b: &[u8], out: &mut Vec<f32>) {
    let d = half(b, 0);
    out.extend(nibbles(&b[2..18]).map(|q| d * (q as i32 - 8) as f32));
}

fn q4_1(b: &[u8], out: &mut Vec<f32>) {
    let (d, m) = (half(b, 0), half(b, 2));
    out.extend(nibbles(&b[4..20]).map(|q| d * q as f32 + m));
}

fn q5_0(b: &[u8], out: &mut Vec<f32>) {
    let d = half(b, 0);
    let (low, high) = (nibbles(&b[6..22]), fifth_bits(&b[2..6]));
    out.extend((0..32).map(|i| d * ((low[i] | high[i] << 4) as i32 - 16) as f32));
}

fn q5_1(b: &[u8], out: &mut Vec<f32>) {
    let (d, m) = (half(b, 0), half(b, 2));
    let (low, high) = (nibbles(&b[8..24]), fifth_bits(&b[4..8]));
    out.extend((0..32).map(|i| d * (low[i] | high[i] << 4) as f32 + m));
}

fn q8_0(b: &[u8], out: &mut Vec<f32>) {
    let d = half(b, 0);
    out.extend(b[2..34].iter().map(|&q| d * (q as i8) as f32));
}

/// Sub-block `j`'s 6-bit scale and minimum from the 12 packed bytes of a Q4_K/Q5_K block
/// (llama.cpp's `get_scale_min_k4`).
fn scale_min_k4(j: usize, s: &[u8]) -> (u8, u8) {
    if j < 4 {
        (s[j] & 63, s[j + 4] & 63)
    } else {
        (
            (s[j + 4] & 0x0F) | ((s[j - 4] >> 6) << 4),
            (s[j + 4] >> 4) | ((s[j] >> 6) << 4),
        )
    }
}

/// The eight (scale, minimum) pairs of a Q4_K/Q5_K block as f32 `d · sc` and `dmin · m`.
fn k_scales(b: &[u8]) -> [(f32, f32); 8] {
    let (d, dmin) = (half(b, 0), half(b, 2));
    std::array::from_fn(|j| {
        let (sc, m) = scale_min_k4(j, &b[4..16]);
        (d * sc as f32, dmin * m as f32)
    })
}

fn q4_k(b: &[u8], out: &mut Vec<f32>) {
    let scales = k_scales(b);
    let qs = &b[16..144];
    // Four chunks of 32 bytes: low nibbles are sub-block 2c, high nibbles sub-block 2c + 1.
    for (c, q) in qs.chunks_exact(32).enumerate() {
        let (d1, m1) = scales[2 * c];
        let (d2, m2) = scales[2 * c + 1];
        out.extend(q.iter().map(|&x| d1 * (x & 0x0F) as f32 - m1));
        out.extend(q.iter().map(|&x| d2 * (x >> 4) as f32 - m2));
    }
}

fn q5_k(b: &[u8], out: &mut Vec<f32>) {
    let scales = k_scales(b);
    let (qh, qs) = (&b[16..48], &b[48..176]);
    // Sub-block s takes bit s of each of the 32 `qh` bytes as its fifth bit.
    for (c, q) in qs.chunks_exact(32).enumerate() {
        for half_ in 0..2 {
            let s = 2 * c + half_;
            let (d, m) = scales[s];
            out.extend(q.iter().zip(qh).map(|(&x, &h)| {
                let low = if half_ == 0 { x & 0x0F } else { x >> 4 };
                let high = (h >> s) & 1;
                d * (low | high << 4) as f32 - m
            }));
        }
    }
}

fn q6_k(b: &[u8], out: &mut Vec<f32>) {
    let (ql, qh, sc) = (&b[0..128], &b[128..192], &b[192..208]);
    let d = half(b, 208);
    // Two halves of 128 values; in each, value 32g + l (g = 0..4, l = 0..32) has its low four
    // bits in ql[l + 32 (g % 2)] (low nibble for g < 2, high for g ≥ 2) and its top two bits
    // at bit 2g of qh[l]; the scale is sc[value / 16].
    for h in 0..2 {
        let (ql, qh) = (&ql[64 * h..64 * h + 64], &qh[32 * h..32 * h + 32]);
        for g in 0..4 {
            for l in 0..32 {
                let byte = ql[l + 32 * (g % 2)];
                let low = if g < 2 { byte & 0x0F } else { byte >> 4 };
                let high = (qh[l] >> (2 * g)) & 3;
                let q = (low | high << 4) as i32 - 32;
                let value = 128 * h + 32 * g + l;
                let scale = d * (sc[value / 16] as i8) as f32;
                out.push(scale * q as f32);
            }
        }
    }
}
