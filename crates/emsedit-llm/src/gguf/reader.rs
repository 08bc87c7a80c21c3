//! The GGUF container: header, metadata, tensor directory and tensor data.
//!
//! Layout (little-endian, versions 2 and 3): `GGUF`, version u32, tensor count u64, metadata
//! count u64; the metadata entries (key string, value type u32, value); the tensor infos
//! (name string, dimension count u32, dimensions u64 with the fastest-varying first, type u32,
//! offset u64 into the data section); then the data section, aligned to `general.alignment`
//! (32 by default). Every length is checked against the file before anything is allocated.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::GgufError;
use super::quant::{self, GgmlType};

/// A metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `UINT8`.
    U8(u8),
    /// `INT8`.
    I8(i8),
    /// `UINT16`.
    U16(u16),
    /// `INT16`.
    I16(i16),
    /// `UINT32`.
    U32(u32),
    /// `INT32`.
    I32(i32),
    /// `FLOAT32`.
    F32(f32),
    /// `BOOL`.
    Bool(bool),
    /// `STRING` (UTF-8).
    String(String),
    /// `ARRAY` of one element type.
    Array(Array),
    /// `UINT64`.
    U64(u64),
    /// `INT64`.
    I64(i64),
    /// `FLOAT64`.
    F64(f64),
}

/// A metadata array, stored compactly: numbers and booleans as the file's bytes (so a long
/// array costs what the file does), strings as strings.
#[derive(Debug, Clone, PartialEq)]
pub enum Array {
    /// Items of a scalar value type `ty`, little-endian, `size(ty)` bytes each.
    Scalars {
        /// The GGUF value type of the items.
        ty: u32,
        /// Their bytes.
        bytes: Vec<u8>,
    },
    /// `STRING` items.
    Strings(Vec<String>),
}

/// Bytes of one item of a scalar GGUF value type.
fn scalar_size(ty: u32) -> Option<usize> {
    match ty {
        0 | 1 | 7 => Some(1),
        2 | 3 => Some(2),
        4..=6 => Some(4),
        10..=12 => Some(8),
        _ => None,
    }
}

/// Decodes one scalar of type `ty` from exactly `scalar_size(ty)` bytes.
fn scalar(ty: u32, b: &[u8]) -> Option<Value> {
    let a = |n: usize| -> Option<[u8; 8]> {
        let mut out = [0u8; 8];
        out[..n].copy_from_slice(b.get(..n)?);
        Some(out)
    };
    Some(match ty {
        0 => Value::U8(b[0]),
        1 => Value::I8(b[0] as i8),
        2 => Value::U16(u16::from_le_bytes(a(2)?[..2].try_into().ok()?)),
        3 => Value::I16(i16::from_le_bytes(a(2)?[..2].try_into().ok()?)),
        4 => Value::U32(u32::from_le_bytes(a(4)?[..4].try_into().ok()?)),
        5 => Value::I32(i32::from_le_bytes(a(4)?[..4].try_into().ok()?)),
        6 => Value::F32(f32::from_le_bytes(a(4)?[..4].try_into().ok()?)),
        7 => match b.first()? {
            0 => Value::Bool(false),
            1 => Value::Bool(true),
            _ => return None,
        },
        10 => Value::U64(u64::from_le_bytes(a(8)?)),
        11 => Value::I64(i64::from_le_bytes(a(8)?)),
        12 => Value::F64(f64::from_le_bytes(a(8)?)),
        _ => return None,
    })
}

impl Array {
    /// Number of items.
    pub fn len(&self) -> usize {
        match self {
            Self::Scalars { ty, bytes } => bytes.len() / scalar_size(*ty).unwrap_or(1),
            Self::Strings(v) => v.len(),
        }
    }

    /// True when there are no items.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The items, decoded one by one.
    pub fn iter(&self) -> Box<dyn Iterator<Item = Value> + '_> {
        match self {
            Self::Scalars { ty, bytes } => {
                let size = scalar_size(*ty).unwrap_or(1);
                Box::new(bytes.chunks_exact(size).filter_map(move |b| scalar(*ty, b)))
            }
            Self::Strings(v) => Box::new(v.iter().cloned().map(Value::String)),
        }
    }
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Self::U8(_) => "u8",
            Self::I8(_) => "i8",
            Self::U16(_) => "u16",
            Self::I16(_) => "i16",
            Self::U32(_) => "u32",
            Self::I32(_) => "i32",
            Self::F32(_) => "f32",
            Self::Bool(_) => "bool",
            Self::String(_) => "string",
            Self::Array(_) => "array",
            Self::U64(_) => "u64",
            Self::I64(_) => "i64",
            Self::F64(_) => "f64",
        }
    }

    /// The value as an unsigned integer, when it is a non-negative integer of any width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::U8(v) => Some(v.into()),
            Self::U16(v) => Some(v.into()),
            Self::U32(v) => Some(v.into()),
            Self::U64(v) => Some(v),
            Self::I8(v) => u64::try_from(v).ok(),
            Self::I16(v) => u64::try_from(v).ok(),
            Self::I32(v) => u64::try_from(v).ok(),
            Self::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// The value as a float, when it is a float or an integer.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::F32(v) => Some(v.into()),
            Self::F64(v) => Some(v),
            Self::I8(v) => Some(v.into()),
            Self::I16(v) => Some(v.into()),
            Self::I32(v) => Some(v.into()),
            Self::I64(v) => Some(v as f64),
            _ => self.as_u64().map(|v| v as f64),
        }
    }
}

/// One entry of the tensor directory.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    /// The llama.cpp name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Dimensions, fastest-varying first (GGML's `ne`): a b×a HF matrix is `[a, b]` here.
    pub dims: Vec<u64>,
    /// The element type.
    pub ty: GgmlType,
    /// Byte offset from the start of the data section.
    pub offset: u64,
}

impl TensorInfo {
    /// Number of values.
    pub fn len(&self) -> u64 {
        self.dims.iter().product()
    }

    /// True when the tensor has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The shape in PyTorch / safetensors order (slowest-varying first).
    pub fn shape(&self) -> Vec<usize> {
        self.dims.iter().rev().map(|&d| d as usize).collect()
    }
}

/// A GGUF file held in memory, its metadata parsed and its tensor directory checked.
#[derive(Debug)]
pub struct GgufFile {
    path: PathBuf,
    /// The format version (2 or 3).
    pub version: u32,
    metadata: Vec<(String, Value)>,
    index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    data_start: usize,
    bytes: Vec<u8>,
}

/// Largest number of tensor dimensions GGML has.
const MAX_DIMS: u32 = 4;

struct Cursor<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn truncated(&self, at: usize, what: &dyn Fn() -> String) -> GgufError {
        GgufError::Truncated {
            path: self.path.to_path_buf(),
            offset: at as u64,
            what: what(),
        }
    }

    fn take(&mut self, n: u64, what: &dyn Fn() -> String) -> Result<&'a [u8], GgufError> {
        let start = self.pos;
        let end = usize::try_from(n)
            .ok()
            .and_then(|n| start.checked_add(n))
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| self.truncated(start, what))?;
        self.pos = end;
        Ok(&self.bytes[start..end])
    }

    fn array<const N: usize>(&mut self, what: &dyn Fn() -> String) -> Result<[u8; N], GgufError> {
        let b = self.take(N as u64, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    fn u32(&mut self, what: &dyn Fn() -> String) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &dyn Fn() -> String) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &dyn Fn() -> String) -> Result<String, GgufError> {
        let start = self.pos;
        let len = self.u64(what)?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::Utf8 {
            path: self.path.to_path_buf(),
            offset: start as u64,
            what: what(),
        })
    }

    /// A value of GGUF value type `ty` for metadata key `key`.
    fn value(&mut self, ty: u32, key: &str, depth: usize) -> Result<Value, GgufError> {
        let what = || format!("the value of metadata key `{key}`");
        Ok(match ty {
            0 => Value::U8(u8::from_le_bytes(self.array(&what)?)),
            1 => Value::I8(i8::from_le_bytes(self.array(&what)?)),
            2 => Value::U16(u16::from_le_bytes(self.array(&what)?)),
            3 => Value::I16(i16::from_le_bytes(self.array(&what)?)),
            4 => Value::U32(self.u32(&what)?),
            5 => Value::I32(i32::from_le_bytes(self.array(&what)?)),
            6 => Value::F32(f32::from_le_bytes(self.array(&what)?)),
            7 => {
                let [b] = self.array(&what)?;
                match b {
                    0 => Value::Bool(false),
                    1 => Value::Bool(true),
                    other => return Err(self.bad(key, format!("bool byte {other} is not 0 or 1"))),
                }
            }
            8 => Value::String(self.string(&what)?),
            9 => {
                if depth > 0 {
                    return Err(self.bad(key, "nested arrays are not supported".into()));
                }
                let item_ty = self.u32(&what)?;
                let count = self.u64(&what)?;
                let elements = || format!("the {count} elements of metadata key `{key}`");
                if item_ty == 9 {
                    return Err(self.bad(key, "nested arrays are not supported".into()));
                }
                if item_ty == 8 {
                    // Every string takes at least its 8-byte length: a count beyond the file
                    // is malformed, and refusing it here bounds the allocation.
                    let left = (self.bytes.len() - self.pos) as u64;
                    if count > left / 8 {
                        return Err(self.truncated(self.pos, &elements));
                    }
                    let mut items = Vec::with_capacity(count as usize);
                    for _ in 0..count {
                        items.push(self.string(&what)?);
                    }
                    Value::Array(Array::Strings(items))
                } else {
                    let size = scalar_size(item_ty)
                        .ok_or_else(|| self.bad(key, format!("unknown value type {item_ty}")))?;
                    let n = count
                        .checked_mul(size as u64)
                        .ok_or_else(|| self.truncated(self.pos, &elements))?;
                    let bytes = self.take(n, &elements)?.to_vec();
                    if item_ty == 7
                        && let Some(b) = bytes.iter().find(|&&b| b > 1)
                    {
                        return Err(self.bad(key, format!("bool byte {b} is not 0 or 1")));
                    }
                    Value::Array(Array::Scalars { ty: item_ty, bytes })
                }
            }
            10 => Value::U64(self.u64(&what)?),
            11 => Value::I64(i64::from_le_bytes(self.array(&what)?)),
            12 => Value::F64(f64::from_le_bytes(self.array(&what)?)),
            other => return Err(self.bad(key, format!("unknown value type {other}"))),
        })
    }

    fn bad(&self, key: &str, detail: String) -> GgufError {
        GgufError::Metadata {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            detail,
        }
    }
}

impl GgufFile {
    /// Reads and parses `path`.
    pub fn open(path: &Path) -> Result<Self, GgufError> {
        let bytes = std::fs::read(path).map_err(|source| GgufError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, bytes)
    }

    /// Parses the bytes of a GGUF file; `path` names it in errors.
    pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<Self, GgufError> {
        let mut c = Cursor {
            path,
            bytes: &bytes,
            pos: 0,
        };
        let magic: [u8; 4] = c.array(&|| "the magic number".into())?;
        if &magic != b"GGUF" {
            return Err(GgufError::BadMagic {
                path: path.to_path_buf(),
                found: String::from_utf8_lossy(&magic).into_owned(),
            });
        }
        let version = c.u32(&|| "the version".into())?;
        if !(2..=3).contains(&version) {
            return Err(GgufError::Version {
                path: path.to_path_buf(),
                version,
            });
        }
        let n_tensors = c.u64(&|| "the tensor count".into())?;
        let n_kv = c.u64(&|| "the metadata count".into())?;
        let mut metadata = Vec::new();
        let mut index = HashMap::new();
        for i in 0..n_kv {
            let key = c.string(&|| format!("the key of metadata entry {i}"))?;
            let ty = c.u32(&|| format!("the value type of metadata key `{key}`"))?;
            let value = c.value(ty, &key, 0)?;
            if index.insert(key.clone(), metadata.len()).is_some() {
                return Err(c.bad(&key, "the key appears twice".into()));
            }
            metadata.push((key, value));
        }
        let mut tensors: Vec<TensorInfo> = Vec::new();
        let mut tensor_index = HashMap::new();
        for i in 0..n_tensors {
            let name = c.string(&|| format!("the name of tensor {i}"))?;
            let what = || format!("the directory entry of tensor `{name}`");
            let n_dims = c.u32(&what)?;
            let bad = |detail: String| GgufError::Tensor {
                path: path.to_path_buf(),
                tensor: name.clone(),
                detail,
            };
            if n_dims == 0 || n_dims > MAX_DIMS {
                return Err(bad(format!(
                    "{n_dims} dimensions (1 to {MAX_DIMS} allowed)"
                )));
            }
            let dims = (0..n_dims)
                .map(|_| c.u64(&what))
                .collect::<Result<Vec<_>, _>>()?;
            let ty_id = c.u32(&what)?;
            let offset = c.u64(&what)?;
            let ty = GgmlType::from_id(ty_id).map_err(|detail| GgufError::TensorType {
                path: path.to_path_buf(),
                tensor: name.clone(),
                detail,
            })?;
            dims.iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
            if tensor_index.insert(name.clone(), tensors.len()).is_some() {
                return Err(bad("the name appears twice".into()));
            }
            tensors.push(TensorInfo {
                name,
                dims,
                ty,
                offset,
            });
        }
        let alignment = match index.get("general.alignment") {
            None => 32,
            Some(&i) => match metadata[i].1.as_u64() {
                Some(a) if a > 0 && a.is_power_of_two() && a <= 1 << 20 => a as usize,
                _ => {
                    return Err(c.bad(
                        "general.alignment",
                        format!("{:?} is not a power of two", metadata[i].1),
                    ));
                }
            },
        };
        let data_start = c.pos.div_ceil(alignment) * alignment;
        let data_len = bytes.len().saturating_sub(data_start) as u64;
        for t in &tensors {
            let bad = |detail: String| GgufError::Tensor {
                path: path.to_path_buf(),
                tensor: t.name.clone(),
                detail,
            };
            let size = t.ty.bytes_for(t.len()).ok_or_else(|| {
                bad(format!(
                    "{} values are not a whole number of {} blocks of {}",
                    t.len(),
                    t.ty.name(),
                    t.ty.block_size()
                ))
            })?;
            if !t.offset.is_multiple_of(alignment as u64) {
                return Err(bad(format!(
                    "data offset {} is not aligned to {alignment}",
                    t.offset
                )));
            }
            if t.offset.checked_add(size).is_none_or(|end| end > data_len) {
                return Err(GgufError::Truncated {
                    path: path.to_path_buf(),
                    offset: data_start as u64 + t.offset,
                    what: format!("the {size} data bytes of tensor `{}`", t.name),
                });
            }
        }
        Ok(Self {
            path: path.to_path_buf(),
            version,
            metadata,
            index,
            tensors,
            tensor_index,
            data_start,
            bytes,
        })
    }

    /// The file it was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every metadata entry, in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// The value of `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.index.get(key).map(|&i| &self.metadata[i].1)
    }

    fn require(&self, key: &str) -> Result<&Value, GgufError> {
        self.get(key).ok_or_else(|| GgufError::MissingKey {
            path: self.path.clone(),
            key: key.to_string(),
        })
    }

    fn wrong(&self, key: &str, expected: &str, found: &Value) -> GgufError {
        GgufError::Metadata {
            path: self.path.clone(),
            key: key.to_string(),
            detail: format!("expected {expected}, found {}", found.type_name()),
        }
    }

    /// The string `key`.
    pub fn str(&self, key: &str) -> Result<&str, GgufError> {
        match self.require(key)? {
            Value::String(s) => Ok(s),
            other => Err(self.wrong(key, "a string", other)),
        }
    }

    /// The non-negative integer `key` (any width).
    pub fn uint(&self, key: &str) -> Result<u64, GgufError> {
        let v = self.require(key)?;
        v.as_u64()
            .ok_or_else(|| self.wrong(key, "a non-negative integer", v))
    }

    /// The number `key`, as f64.
    pub fn float(&self, key: &str) -> Result<f64, GgufError> {
        let v = self.require(key)?;
        v.as_f64().ok_or_else(|| self.wrong(key, "a number", v))
    }

    /// The bool `key`, or `default` when absent.
    pub fn bool_or(&self, key: &str, default: bool) -> Result<bool, GgufError> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.wrong(key, "a bool", other)),
        }
    }

    /// The array `key`.
    pub fn array(&self, key: &str) -> Result<&Array, GgufError> {
        match self.require(key)? {
            Value::Array(items) => Ok(items),
            other => Err(self.wrong(key, "an array", other)),
        }
    }

    /// The array of strings `key`.
    pub fn strings(&self, key: &str) -> Result<Vec<&str>, GgufError> {
        match self.array(key)? {
            Array::Strings(v) => Ok(v.iter().map(String::as_str).collect()),
            Array::Scalars { bytes, ty } => {
                let item = scalar_size(*ty).and_then(|n| scalar(*ty, bytes.get(..n)?));
                Err(GgufError::Metadata {
                    path: self.path.clone(),
                    key: key.to_string(),
                    detail: format!(
                        "expected an array of strings, found an array of {}",
                        item.map_or("nothing", |v| v.type_name())
                    ),
                })
            }
        }
    }

    /// The array of numbers `key`, as f64.
    pub fn floats(&self, key: &str) -> Result<Vec<f64>, GgufError> {
        self.array(key)?
            .iter()
            .map(|v| {
                v.as_f64()
                    .ok_or_else(|| self.wrong(key, "an array of numbers", &v))
            })
            .collect()
    }

    /// The array of integers `key` (any width; negative values are an error).
    pub fn uints(&self, key: &str) -> Result<Vec<u64>, GgufError> {
        self.array(key)?
            .iter()
            .map(|v| {
                v.as_u64()
                    .ok_or_else(|| self.wrong(key, "an array of non-negative integers", &v))
            })
            .collect()
    }

    /// The tensor directory, in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The directory entry of `name`.
    pub fn tensor(&self, name: &str) -> Result<&TensorInfo, GgufError> {
        self.tensor_index
            .get(name)
            .map(|&i| &self.tensors[i])
            .ok_or_else(|| GgufError::MissingTensor {
                path: self.path.clone(),
                tensor: name.to_string(),
            })
    }

    /// The raw bytes of a tensor (bounds checked when the file was parsed).
    pub fn raw(&self, info: &TensorInfo) -> &[u8] {
        let start = self.data_start + info.offset as usize;
        let len = info.ty.bytes_for(info.len()).unwrap_or(0) as usize;
        &self.bytes[start..start + len]
    }

    /// A tensor dequantized to f32 (values in GGUF order, fastest dimension first).
    pub fn dequantize(&self, name: &str) -> Result<Vec<f32>, GgufError> {
        let info = self.tensor(name)?;
        quant::dequantize(info.ty, self.raw(info)).ok_or_else(|| GgufError::Tensor {
            path: self.path.clone(),
            tensor: name.to_string(),
            detail: format!("data is not a whole number of {} blocks", info.ty.name()),
        })
    }
}
