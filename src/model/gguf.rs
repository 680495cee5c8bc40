//! Reading and writing GGUF files in Rust.
//!
//! llama.cpp aborts or prints to stderr on some malformed files, so every file is checked here
//! first: magic, version, the key-value and tensor-info sections, and that the tensor data the
//! header promises is really in the file. The rules follow `ggml/src/gguf.cpp` of the vendored
//! llama.cpp; the byte layout is described in `ggml/include/gguf.h`.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;

const MAGIC: &[u8; 4] = b"GGUF";
/// The newest GGUF version the vendored llama.cpp reads; version 1 it no longer reads.
const MAX_VERSION: u32 = 3;
const WRITE_VERSION: u32 = 3;
pub const DEFAULT_ALIGNMENT: u64 = 32;
const ALIGNMENT_KEY: &str = "general.alignment";
/// `GGML_MAX_NAME`: tensor names must be shorter than this.
const MAX_TENSOR_NAME: usize = 64;
/// `GGML_MAX_DIMS`.
const MAX_DIMS: u32 = 4;

/// What can go wrong reading or writing a GGUF file; every variant names the file.
#[derive(Debug, Error)]
pub enum GgufError {
    #[error("{}: cannot open: {cause}", path.display())]
    Open { path: PathBuf, cause: io::Error },
    #[error("{}: not a regular file", path.display())]
    NotAFile { path: PathBuf },
    #[error("{}: read failed: {cause}", path.display())]
    Read { path: PathBuf, cause: io::Error },
    #[error("{}: not a GGUF file ({found})", path.display())]
    NotGguf { path: PathBuf, found: String },
    #[error("{}: unsupported GGUF version {version} ({why})", path.display())]
    Version {
        path: PathBuf,
        version: u32,
        why: &'static str,
    },
    #[error(
        "{}: file is truncated: {what} needs at least {needed} bytes but the file has {size}",
        path.display()
    )]
    Truncated {
        path: PathBuf,
        what: String,
        needed: u64,
        size: u64,
    },
    #[error("{}: malformed GGUF at byte {offset}: {what}", path.display())]
    Malformed {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    #[error("{}: cannot write: {cause}", path.display())]
    Write { path: PathBuf, cause: io::Error },
    #[error("{}: cannot write tensor {name}: {what}", path.display())]
    BadTensor {
        path: PathBuf,
        name: String,
        what: String,
    },
}

/// The type tag of a metadata value (`enum gguf_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    Str,
    Array,
    U64,
    I64,
    F64,
}

impl ValueType {
    fn from_tag(tag: u32) -> Option<Self> {
        use ValueType::*;
        Some(match tag {
            0 => U8,
            1 => I8,
            2 => U16,
            3 => I16,
            4 => U32,
            5 => I32,
            6 => F32,
            7 => Bool,
            8 => Str,
            9 => Array,
            10 => U64,
            11 => I64,
            12 => F64,
            _ => return None,
        })
    }

    fn tag(self) -> u32 {
        use ValueType::*;
        match self {
            U8 => 0,
            I8 => 1,
            U16 => 2,
            I16 => 3,
            U32 => 4,
            I32 => 5,
            F32 => 6,
            Bool => 7,
            Str => 8,
            Array => 9,
            U64 => 10,
            I64 => 11,
            F64 => 12,
        }
    }

    /// Bytes per element for fixed-size types; strings are at least their 8-byte length.
    fn min_size(self) -> u64 {
        use ValueType::*;
        match self {
            U8 | I8 | Bool => 1,
            U16 | I16 => 2,
            U32 | I32 | F32 => 4,
            U64 | I64 | F64 | Str => 8,
            Array => 12,
        }
    }
}

/// One metadata value. Strings are kept as bytes: GGUF does not promise UTF-8, and tokenizer
/// entries must survive a copy unchanged.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    F32(f32),
    Bool(bool),
    Str(Vec<u8>),
    /// Element type and elements; GGUF has no arrays of arrays.
    Array(ValueType, Vec<Value>),
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Value {
    pub fn str(s: &str) -> Self {
        Value::Str(s.as_bytes().to_vec())
    }

    pub fn value_type(&self) -> ValueType {
        match self {
            Value::U8(_) => ValueType::U8,
            Value::I8(_) => ValueType::I8,
            Value::U16(_) => ValueType::U16,
            Value::I16(_) => ValueType::I16,
            Value::U32(_) => ValueType::U32,
            Value::I32(_) => ValueType::I32,
            Value::F32(_) => ValueType::F32,
            Value::Bool(_) => ValueType::Bool,
            Value::Str(_) => ValueType::Str,
            Value::Array(..) => ValueType::Array,
            Value::U64(_) => ValueType::U64,
            Value::I64(_) => ValueType::I64,
            Value::F64(_) => ValueType::F64,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }

    /// Any non-negative integer, whatever its width.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Value::U8(v) => Some(v.into()),
            Value::U16(v) => Some(v.into()),
            Value::U32(v) => Some(v.into()),
            Value::U64(v) => Some(v),
            Value::I8(v) => u64::try_from(v).ok(),
            Value::I16(v) => u64::try_from(v).ok(),
            Value::I32(v) => u64::try_from(v).ok(),
            Value::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }
}

/// Where a tensor lies in the file and what it holds.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// `ne`: the first dimension is the row length.
    pub dims: Vec<u64>,
    /// A `ggml_type` value.
    pub ggml_type: u32,
    /// Offset from the start of the data section.
    pub offset: u64,
    pub n_bytes: u64,
}

impl TensorInfo {
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }

    pub fn type_name(&self) -> &'static str {
        ggml_type_layout(self.ggml_type).map_or("unknown", |l| l.name)
    }
}

/// A parsed GGUF header whose tensor data has been checked to be present.
#[derive(Clone, Debug)]
pub struct GgufFile {
    pub path: PathBuf,
    pub version: u32,
    pub alignment: u64,
    pub metadata: Vec<(String, Value)>,
    pub tensors: Vec<TensorInfo>,
    /// Absolute offset of the tensor data section.
    pub data_offset: u64,
    pub file_size: u64,
}

impl GgufFile {
    /// Reads and checks the header of `path`; tensor data is not read, only bounds-checked.
    pub fn open(path: &Path) -> Result<Self, GgufError> {
        let file = File::open(path).map_err(|cause| GgufError::Open {
            path: path.to_path_buf(),
            cause,
        })?;
        let meta = file.metadata().map_err(|cause| GgufError::Open {
            path: path.to_path_buf(),
            cause,
        })?;
        if !meta.is_file() {
            return Err(GgufError::NotAFile {
                path: path.to_path_buf(),
            });
        }
        let mut r = Reader {
            path,
            inner: BufReader::with_capacity(1 << 20, file),
            pos: 0,
            size: meta.len(),
        };
        r.parse()
    }

    /// Reads and checks a GGUF header from `bytes`, the whole file, as [`GgufFile::open`] does;
    /// `path` only names it in errors. The entry point for fuzzing the reader.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, GgufError> {
        let mut r = Reader {
            path,
            inner: bytes,
            pos: 0,
            size: bytes.len() as u64,
        };
        r.parse()
    }

    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    pub fn get_u64(&self, key: &str) -> Option<u64> {
        self.get(key).and_then(Value::as_u64)
    }

    pub fn array_len(&self, key: &str) -> Option<usize> {
        match self.get(key) {
            Some(Value::Array(_, items)) => Some(items.len()),
            _ => None,
        }
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }
}

/// Block size, bytes per block and name of a `ggml_type`, as the vendored ggml defines them;
/// `None` for values out of range and for types removed from GGUF files.
#[derive(Clone, Copy, Debug)]
pub struct TypeLayout {
    pub name: &'static str,
    pub block: u64,
    pub block_bytes: u64,
}

pub fn ggml_type_layout(ggml_type: u32) -> Option<TypeLayout> {
    use llama_cpp_sys_2 as sys;
    if ggml_type >= sys::GGML_TYPE_COUNT {
        return None;
    }
    // SAFETY: pure lookups in ggml's static type table, index checked above.
    let (block, block_bytes, name) = unsafe {
        (
            sys::ggml_blck_size(ggml_type),
            sys::ggml_type_size(ggml_type),
            sys::ggml_type_name(ggml_type),
        )
    };
    if block <= 0 || block_bytes == 0 || name.is_null() {
        return None;
    }
    // SAFETY: ggml's type names are static NUL-terminated strings.
    let name = unsafe { std::ffi::CStr::from_ptr(name) }
        .to_str()
        .unwrap_or("unknown");
    Some(TypeLayout {
        name,
        block: block as u64,
        block_bytes: block_bytes as u64,
    })
}

/// Bytes a tensor of this type and shape occupies, or why it cannot exist.
pub fn tensor_n_bytes(ggml_type: u32, dims: &[u64]) -> Result<u64, String> {
    let layout =
        ggml_type_layout(ggml_type).ok_or_else(|| format!("invalid ggml type {ggml_type}"))?;
    let row = dims.first().copied().unwrap_or(1);
    if !row.is_multiple_of(layout.block) {
        return Err(format!(
            "{row} elements per row is not a multiple of the {} block size {}",
            layout.name, layout.block
        ));
    }
    let n_elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(|| format!("shape {dims:?} overflows"))?;
    (n_elements / layout.block)
        .checked_mul(layout.block_bytes)
        .ok_or_else(|| format!("shape {dims:?} overflows"))
}

fn pad(n: u64, alignment: u64) -> u64 {
    n.div_ceil(alignment) * alignment
}

struct Reader<'a, R: Read> {
    path: &'a Path,
    inner: R,
    pos: u64,
    size: u64,
}

impl<R: Read> Reader<'_, R> {
    fn parse(&mut self) -> Result<GgufFile, GgufError> {
        let mut magic = [0u8; 4];
        if self.size < 4 {
            return Err(self.not_gguf(format!("only {} bytes long", self.size)));
        }
        self.bytes(&mut magic, "magic")?;
        if &magic != MAGIC {
            return Err(self.not_gguf(format!(
                "starts with {:?}, expected \"GGUF\"",
                String::from_utf8_lossy(&magic)
            )));
        }
        let version = self.u32("version")?;
        let bad_version = |why| GgufError::Version {
            path: self.path.to_path_buf(),
            version,
            why,
        };
        if version == 0 {
            return Err(bad_version("version 0 does not exist"));
        }
        if version & 0xFFFF == 0 {
            return Err(bad_version(
                "the file looks written for the other byte order",
            ));
        }
        if version == 1 {
            return Err(bad_version("GGUF v1 is no longer read by llama.cpp"));
        }
        if version > MAX_VERSION {
            return Err(bad_version("newer than this llama.cpp reads (3)"));
        }

        let n_tensors = self.count("tensor count")?;
        let n_kv = self.count("key-value count")?;
        let mut metadata: Vec<(String, Value)> = Vec::with_capacity(n_kv.min(4096) as usize);
        for i in 0..n_kv {
            let at = self.pos;
            let key = self.utf8_string(&format!("key of entry {i}"))?;
            if key.is_empty() {
                return Err(self.malformed_at(at, format!("key of entry {i} is empty")));
            }
            if metadata.iter().any(|(k, _)| *k == key) {
                return Err(self.malformed_at(at, format!("duplicate key {key:?}")));
            }
            let value = self.value(&key)?;
            metadata.push((key, value));
        }

        let alignment = match metadata.iter().find(|(k, _)| k == ALIGNMENT_KEY) {
            None => DEFAULT_ALIGNMENT,
            Some((_, Value::U32(a))) if a.is_power_of_two() => u64::from(*a),
            Some((_, v)) => {
                return Err(self.malformed(format!(
                    "{ALIGNMENT_KEY} must be a power of two stored as u32, found {v:?}"
                )));
            }
        };

        let mut tensors: Vec<TensorInfo> = Vec::with_capacity(n_tensors.min(4096) as usize);
        let mut names = HashSet::new();
        let mut expected_offset = 0u64;
        for i in 0..n_tensors {
            let at = self.pos;
            let name = self.utf8_string(&format!("name of tensor {i}"))?;
            if name.len() >= MAX_TENSOR_NAME {
                return Err(self.malformed_at(
                    at,
                    format!(
                        "tensor name {name:?} is longer than {}",
                        MAX_TENSOR_NAME - 1
                    ),
                ));
            }
            if !names.insert(name.clone()) {
                return Err(self.malformed_at(at, format!("duplicate tensor {name:?}")));
            }
            let n_dims = self.u32(&format!("dimension count of tensor {name}"))?;
            if n_dims > MAX_DIMS {
                return Err(self.malformed(format!("tensor {name} has {n_dims} dimensions")));
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                let d = self.i64(&format!("shape of tensor {name}"))?;
                let d = u64::try_from(d).map_err(|_| {
                    self.malformed(format!("tensor {name} has a negative dimension {d}"))
                })?;
                dims.push(d);
            }
            let ggml_type = self.u32(&format!("type of tensor {name}"))?;
            let n_bytes = tensor_n_bytes(ggml_type, &dims)
                .map_err(|why| self.malformed(format!("tensor {name}: {why}")))?;
            let offset = self.u64(&format!("offset of tensor {name}"))?;
            // gguf.cpp insists tensors are laid out in order, each padded to the alignment.
            if offset != expected_offset {
                return Err(self.malformed(format!(
                    "tensor {name} has data offset {offset}, expected {expected_offset}"
                )));
            }
            expected_offset = n_bytes
                .checked_next_multiple_of(alignment)
                .and_then(|n| offset.checked_add(n))
                .ok_or_else(|| self.malformed(format!("tensor {name} is too large")))?;
            tensors.push(TensorInfo {
                name,
                dims,
                ggml_type,
                offset,
                n_bytes,
            });
        }

        let data_offset = if tensors.is_empty() {
            self.pos
        } else {
            pad(self.pos, alignment)
        };
        for t in &tensors {
            let end = data_offset
                .saturating_add(t.offset)
                .saturating_add(t.n_bytes);
            if end > self.size {
                return Err(GgufError::Truncated {
                    path: self.path.to_path_buf(),
                    what: format!("tensor data (up to the end of {})", t.name),
                    needed: data_offset.saturating_add(last_end(&tensors)),
                    size: self.size,
                });
            }
        }

        Ok(GgufFile {
            path: self.path.to_path_buf(),
            version,
            alignment,
            metadata,
            tensors,
            data_offset,
            file_size: self.size,
        })
    }

    fn value(&mut self, key: &str) -> Result<Value, GgufError> {
        let at = self.pos;
        let tag = self.u32(&format!("type of {key}"))?;
        let ty = ValueType::from_tag(tag)
            .ok_or_else(|| self.malformed_at(at, format!("{key} has invalid type {tag}")))?;
        if ty != ValueType::Array {
            return self.scalar(ty, key);
        }
        let at = self.pos;
        let elem_tag = self.u32(&format!("element type of {key}"))?;
        let elem = ValueType::from_tag(elem_tag)
            .filter(|t| *t != ValueType::Array)
            .ok_or_else(|| {
                self.malformed_at(at, format!("{key} has invalid element type {elem_tag}"))
            })?;
        let n = self.u64(&format!("length of {key}"))?;
        let needed = n.saturating_mul(elem.min_size());
        if needed > self.remaining() {
            return Err(self.truncated(&format!("array {key}"), needed));
        }
        // `needed` fits in the file, so this allocation is bounded by the file size.
        let mut items = Vec::with_capacity(n as usize);
        for _ in 0..n {
            items.push(self.scalar(elem, key)?);
        }
        Ok(Value::Array(elem, items))
    }

    fn scalar(&mut self, ty: ValueType, key: &str) -> Result<Value, GgufError> {
        Ok(match ty {
            ValueType::U8 => Value::U8(self.array::<1>(key)?[0]),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array(key)?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(key)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(key)?)),
            ValueType::U32 => Value::U32(self.u32(key)?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(key)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(key)?)),
            ValueType::Bool => Value::Bool(self.array::<1>(key)?[0] != 0),
            ValueType::Str => Value::Str(self.string(key)?),
            ValueType::U64 => Value::U64(self.u64(key)?),
            ValueType::I64 => Value::I64(self.i64(key)?),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(key)?)),
            ValueType::Array => unreachable!("arrays are read by value()"),
        })
    }

    fn remaining(&self) -> u64 {
        self.size - self.pos
    }

    fn bytes(&mut self, buf: &mut [u8], what: &str) -> Result<(), GgufError> {
        if buf.len() as u64 > self.remaining() {
            return Err(self.truncated(what, buf.len() as u64));
        }
        self.inner.read_exact(buf).map_err(|cause| {
            if cause.kind() == io::ErrorKind::UnexpectedEof {
                // The file shrank while we read it.
                self.truncated(what, buf.len() as u64)
            } else {
                GgufError::Read {
                    path: self.path.to_path_buf(),
                    cause,
                }
            }
        })?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], GgufError> {
        let mut buf = [0u8; N];
        self.bytes(&mut buf, what)?;
        Ok(buf)
    }

    fn u32(&mut self, what: &str) -> Result<u32, GgufError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64, GgufError> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn i64(&mut self, what: &str) -> Result<i64, GgufError> {
        Ok(i64::from_le_bytes(self.array(what)?))
    }

    fn count(&mut self, what: &str) -> Result<u64, GgufError> {
        let n = self.i64(what)?;
        u64::try_from(n).map_err(|_| self.malformed(format!("{what} is negative ({n})")))
    }

    fn string(&mut self, what: &str) -> Result<Vec<u8>, GgufError> {
        let len = self.u64(what)?;
        if len > self.remaining() {
            return Err(self.truncated(what, len));
        }
        let mut buf = vec![0u8; len as usize];
        self.bytes(&mut buf, what)?;
        Ok(buf)
    }

    fn utf8_string(&mut self, what: &str) -> Result<String, GgufError> {
        let at = self.pos;
        String::from_utf8(self.string(what)?)
            .map_err(|_| self.malformed_at(at, format!("{what} is not UTF-8")))
    }

    fn truncated(&self, what: &str, len: u64) -> GgufError {
        GgufError::Truncated {
            path: self.path.to_path_buf(),
            what: format!("{what} at byte {}", self.pos),
            needed: self.pos.saturating_add(len),
            size: self.size,
        }
    }

    fn not_gguf(&self, found: String) -> GgufError {
        GgufError::NotGguf {
            path: self.path.to_path_buf(),
            found,
        }
    }

    fn malformed(&self, what: String) -> GgufError {
        self.malformed_at(self.pos, what)
    }

    fn malformed_at(&self, offset: u64, what: String) -> GgufError {
        GgufError::Malformed {
            path: self.path.to_path_buf(),
            offset,
            what,
        }
    }
}

fn last_end(tensors: &[TensorInfo]) -> u64 {
    tensors
        .iter()
        .map(|t| t.offset.saturating_add(t.n_bytes))
        .max()
        .unwrap_or(0)
}

/// Builds a GGUF file in memory order: metadata, then tensors, written in one pass.
#[derive(Default)]
pub struct GgufWriter {
    metadata: Vec<(String, Value)>,
    tensors: Vec<(TensorInfo, Vec<u8>)>,
}

impl GgufWriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `key`, replacing an earlier value in place.
    pub fn set(&mut self, key: &str, value: Value) {
        match self.metadata.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.metadata.push((key.to_owned(), value)),
        }
    }

    /// Adds a tensor whose raw little-endian bytes are `data`; checked when written.
    pub fn add_tensor(&mut self, name: &str, dims: &[u64], ggml_type: u32, data: Vec<u8>) {
        let info = TensorInfo {
            name: name.to_owned(),
            dims: dims.to_vec(),
            ggml_type,
            offset: 0,
            n_bytes: data.len() as u64,
        };
        self.tensors.push((info, data));
    }

    /// Writes the file to `path` through a temporary file in the same folder, so a reader
    /// never sees half a file.
    pub fn write(&self, path: &Path) -> Result<(), GgufError> {
        let write_err = |cause| GgufError::Write {
            path: path.to_path_buf(),
            cause,
        };
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let tmp = super::public_tempfile(".leap-gguf-")
            .tempfile_in(dir)
            .map_err(write_err)?;
        {
            let mut w = BufWriter::new(tmp.as_file());
            self.write_to(path, &mut w)?;
            w.flush().map_err(write_err)?;
        }
        tmp.as_file().sync_all().map_err(write_err)?;
        tmp.persist(path).map_err(|e| write_err(e.error))?;
        Ok(())
    }

    fn write_to(&self, path: &Path, w: &mut impl Write) -> Result<(), GgufError> {
        let alignment = DEFAULT_ALIGNMENT;
        let mut offsets = Vec::with_capacity(self.tensors.len());
        let mut next = 0u64;
        for (info, data) in &self.tensors {
            let bad = |what: String| GgufError::BadTensor {
                path: path.to_path_buf(),
                name: info.name.clone(),
                what,
            };
            if info.name.len() >= MAX_TENSOR_NAME {
                return Err(bad("name is too long".into()));
            }
            let n_bytes = tensor_n_bytes(info.ggml_type, &info.dims).map_err(bad)?;
            if n_bytes != data.len() as u64 {
                return Err(bad(format!(
                    "shape needs {n_bytes} bytes, got {}",
                    data.len()
                )));
            }
            offsets.push(next);
            next += pad(n_bytes, alignment);
        }

        let mut out = CountingWriter {
            inner: w,
            written: 0,
        };
        let io = |cause| GgufError::Write {
            path: path.to_path_buf(),
            cause,
        };
        out.put(MAGIC).map_err(io)?;
        out.put(&WRITE_VERSION.to_le_bytes()).map_err(io)?;
        out.put(&(self.tensors.len() as i64).to_le_bytes())
            .map_err(io)?;
        out.put(&(self.metadata.len() as i64).to_le_bytes())
            .map_err(io)?;
        for (key, value) in &self.metadata {
            put_str(&mut out, key.as_bytes()).map_err(io)?;
            put_value(&mut out, value).map_err(io)?;
        }
        for ((info, _), offset) in self.tensors.iter().zip(&offsets) {
            put_str(&mut out, info.name.as_bytes()).map_err(io)?;
            out.put(&(info.dims.len() as u32).to_le_bytes())
                .map_err(io)?;
            for d in &info.dims {
                out.put(&(*d as i64).to_le_bytes()).map_err(io)?;
            }
            out.put(&info.ggml_type.to_le_bytes()).map_err(io)?;
            out.put(&offset.to_le_bytes()).map_err(io)?;
        }
        if !self.tensors.is_empty() {
            out.pad_to(alignment).map_err(io)?;
        }
        for (_, data) in &self.tensors {
            out.put(data).map_err(io)?;
            out.pad_to(alignment).map_err(io)?;
        }
        Ok(())
    }
}

struct CountingWriter<'a, W: Write> {
    inner: &'a mut W,
    written: u64,
}

impl<W: Write> CountingWriter<'_, W> {
    fn put(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.inner.write_all(bytes)?;
        self.written += bytes.len() as u64;
        Ok(())
    }

    fn pad_to(&mut self, alignment: u64) -> io::Result<()> {
        let zeros = pad(self.written, alignment) - self.written;
        self.put(&vec![0u8; zeros as usize])
    }
}

fn put_str<W: Write>(out: &mut CountingWriter<'_, W>, s: &[u8]) -> io::Result<()> {
    out.put(&(s.len() as u64).to_le_bytes())?;
    out.put(s)
}

fn put_value<W: Write>(out: &mut CountingWriter<'_, W>, value: &Value) -> io::Result<()> {
    out.put(&value.value_type().tag().to_le_bytes())?;
    match value {
        Value::Array(elem, items) => {
            out.put(&elem.tag().to_le_bytes())?;
            out.put(&(items.len() as u64).to_le_bytes())?;
            for item in items {
                put_scalar(out, item)?;
            }
            Ok(())
        }
        scalar => put_scalar(out, scalar),
    }
}

fn put_scalar<W: Write>(out: &mut CountingWriter<'_, W>, value: &Value) -> io::Result<()> {
    match value {
        Value::U8(v) => out.put(&[*v]),
        Value::I8(v) => out.put(&v.to_le_bytes()),
        Value::U16(v) => out.put(&v.to_le_bytes()),
        Value::I16(v) => out.put(&v.to_le_bytes()),
        Value::U32(v) => out.put(&v.to_le_bytes()),
        Value::I32(v) => out.put(&v.to_le_bytes()),
        Value::F32(v) => out.put(&v.to_le_bytes()),
        Value::Bool(v) => out.put(&[u8::from(*v)]),
        Value::Str(s) => put_str(out, s),
        Value::U64(v) => out.put(&v.to_le_bytes()),
        Value::I64(v) => out.put(&v.to_le_bytes()),
        Value::F64(v) => out.put(&v.to_le_bytes()),
        Value::Array(..) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "GGUF has no arrays of arrays",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F32: u32 = 0;

    #[test]
    fn written_file_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gguf");
        let mut w = GgufWriter::new();
        w.set("general.architecture", Value::str("llama"));
        w.set("a.count", Value::U32(7));
        w.set(
            "a.list",
            Value::Array(ValueType::Str, vec![Value::str("x"), Value::str("yz")]),
        );
        w.add_tensor("t0", &[3], F32, vec![0; 12]);
        w.add_tensor("t1", &[2, 2], F32, vec![1; 16]);
        w.write(&path).unwrap();

        let f = GgufFile::open(&path).unwrap();
        assert_eq!(f.version, 3);
        assert_eq!(f.get_str("general.architecture"), Some("llama"));
        assert_eq!(f.get_u64("a.count"), Some(7));
        assert_eq!(f.array_len("a.list"), Some(2));
        assert_eq!(f.tensors.len(), 2);
        assert_eq!(f.tensors[1].offset, 32);
        assert_eq!(f.tensors[1].n_bytes, 16);
        assert_eq!(f.data_offset % 32, 0);
        assert_eq!(f.file_size, f.data_offset + 64);
    }

    #[test]
    fn bytes_read_as_the_file_does() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gguf");
        let mut w = GgufWriter::new();
        w.set("general.architecture", Value::str("llama"));
        w.add_tensor("t0", &[3], F32, vec![0; 12]);
        w.write(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let from_file = GgufFile::open(&path).unwrap();
        let from_bytes = GgufFile::from_bytes(&path, &bytes).unwrap();
        assert_eq!(from_bytes.metadata, from_file.metadata);
        assert_eq!(from_bytes.tensors, from_file.tensors);
        assert_eq!(from_bytes.data_offset, from_file.data_offset);
        // One byte of the tensor's 12 missing (the padding after it is not needed).
        let cut = from_file.data_offset as usize + 11;
        let err = GgufFile::from_bytes(&path, &bytes[..cut]).unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }

    #[test]
    fn wrong_tensor_size_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gguf");
        let mut w = GgufWriter::new();
        w.add_tensor("t", &[4], F32, vec![0; 15]);
        let err = w.write(&path).unwrap_err().to_string();
        assert!(err.contains("cannot write tensor t"), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn huge_counts_are_refused_without_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.gguf");
        let mut bytes = b"GGUF".to_vec();
        bytes.extend(3u32.to_le_bytes());
        bytes.extend(0i64.to_le_bytes());
        bytes.extend(i64::MAX.to_le_bytes());
        std::fs::write(&path, bytes).unwrap();
        let err = GgufFile::open(&path).unwrap_err().to_string();
        assert!(err.contains("truncated"), "{err}");
    }
}
