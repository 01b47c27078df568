//! `TensorProto` ↔ ndarray: float32 data for initializers, inputs and outputs, and int64 data for the
//! constant inputs that become attributes. Every size read from a file (dims, byte lengths, external
//! offsets) is checked against the data actually present and the element limit before anything is
//! allocated.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

use ndarray::{ArrayD, IxDyn};
use prost::Message;
use strider_ir::alloc::{self, OutOfMemory};
use strider_ir::{Limits, Shape};

use crate::error::{Error, Result};
use crate::proto::{DataLocation, StringStringEntryProto, TensorProto, data_type};

/// Where a tensor's external data may be read from, and how large a tensor may be.
#[derive(Clone, Copy, Debug)]
pub struct TensorSource<'a> {
    /// Directory of the model file; `None` refuses external data (tensor files carry their data).
    pub base_dir: Option<&'a Path>,
    /// The element cap.
    pub limits: &'a Limits,
}

/// The tensor's shape, each dimension checked to be non-negative and the element count within the limit.
pub fn dims(t: &TensorProto, name: &str, limits: &Limits) -> Result<Vec<usize>> {
    let dims = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| Error::tensor(name, format!("has a negative dimension {d}"))))
        .collect::<Result<Vec<_>>>()?;
    limits.check(name, &Shape(dims.clone()))?;
    Ok(dims)
}

/// Reads a float32 tensor.
pub fn to_f32(t: &TensorProto, name: &str, source: TensorSource<'_>) -> Result<ArrayD<f32>> {
    if t.data_type() != data_type::FLOAT {
        return Err(Error::ElementType { tensor: name.to_string(), found: data_type::name(t.data_type()) });
    }
    let shape = dims(t, name, source.limits)?;
    let n: usize = shape.iter().product();
    let values = match bytes(t, name, source, n, 4)? {
        Some(raw) => raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        None => typed(name, &t.float_data, n, "float_data")?.to_vec(),
    };
    Ok(ArrayD::from_shape_vec(IxDyn(&shape), values).expect("the element count was checked against the shape"))
}

/// Reads an INT64 or INT32 tensor (shapes, axes, pads, slice bounds) as a flat list.
pub fn to_i64(t: &TensorProto, name: &str, source: TensorSource<'_>) -> Result<Vec<i64>> {
    let shape = dims(t, name, source.limits)?;
    let n: usize = shape.iter().product();
    match t.data_type() {
        data_type::INT64 => Ok(match bytes(t, name, source, n, 8)? {
            Some(raw) => raw.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes"))).collect(),
            None => typed(name, &t.int64_data, n, "int64_data")?.to_vec(),
        }),
        data_type::INT32 => Ok(match bytes(t, name, source, n, 4)? {
            Some(raw) => {
                raw.chunks_exact(4).map(|b| i64::from(i32::from_le_bytes(b.try_into().expect("4 bytes")))).collect()
            }
            None => typed(name, &t.int32_data, n, "int32_data")?.iter().map(|&v| i64::from(v)).collect(),
        }),
        other => Err(Error::tensor(name, format!("has element type {}, expected INT64", data_type::name(other)))),
    }
}

/// The typed field when it holds exactly `n` elements.
fn typed<'a, T>(name: &str, values: &'a [T], n: usize, field: &str) -> Result<&'a [T]> {
    if values.len() != n {
        return Err(Error::tensor(name, format!("{field} holds {} elements, but its shape holds {n}", values.len())));
    }
    Ok(values)
}

/// The data as little-endian bytes when it is stored raw or externally (`None`: in the typed field).
fn bytes(t: &TensorProto, name: &str, source: TensorSource<'_>, n: usize, width: usize) -> Result<Option<Vec<u8>>> {
    let expected = n * width; // n is within the element limit, so this cannot overflow
    if t.data_location() == DataLocation::External {
        let base = source.base_dir.ok_or_else(|| Error::tensor(name, "external data is not allowed here"))?;
        return external(&t.external_data, name, base, expected).map(Some);
    }
    match &t.raw_data {
        Some(raw) if raw.len() != expected => Err(Error::tensor(
            name,
            format!("raw data holds {} bytes, but shape {:?} needs {expected}", raw.len(), t.dims),
        )),
        Some(raw) => Ok(Some(raw.clone())),
        None => Ok(None),
    }
}

/// Reads `expected` bytes of external data, relative to `base`, after checking the location stays in
/// the model's directory and the range lies inside the file.
fn external(entries: &[StringStringEntryProto], name: &str, base: &Path, expected: usize) -> Result<Vec<u8>> {
    let (mut location, mut offset, mut length) = (None, 0u64, None);
    for e in entries {
        let number = |v: &str| {
            v.parse::<u64>().map_err(|_| Error::tensor(name, format!("external data {}: `{v}` is not a size", e.key())))
        };
        match e.key() {
            "location" => location = Some(e.value()),
            "offset" => offset = number(e.value())?,
            "length" => length = Some(number(e.value())?),
            _ => {}
        }
    }
    let location = location.ok_or_else(|| Error::tensor(name, "external data has no location"))?;
    let relative = Path::new(location);
    let inside = relative.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !inside || location.is_empty() {
        return Err(Error::tensor(
            name,
            format!("external data location `{location}` is outside the model's directory"),
        ));
    }
    let path = base.join(relative);
    let mut file =
        File::open(&path).map_err(|e| Error::tensor(name, format!("cannot open external data `{location}`: {e}")))?;
    let size = file.metadata().map_err(|source| Error::Io { path: path.clone(), source })?.len();
    let length = length.unwrap_or(size.saturating_sub(offset));
    if length != expected as u64 {
        return Err(Error::tensor(
            name,
            format!("external data length {length} differs from the {expected} bytes its shape needs"),
        ));
    }
    if offset.checked_add(length).is_none_or(|end| end > size) {
        return Err(Error::tensor(
            name,
            format!("external data at offset {offset}, length {length} lies outside `{location}` ({size} bytes)"),
        ));
    }
    let mut data = vec![0u8; expected];
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(&mut data))
        .map_err(|source| Error::Io { path, source })?;
    Ok(data)
}

/// A float32 tensor with its data as raw little-endian bytes: a copy as large as the data, so an
/// exported weight the system has no memory left to copy is an error naming it, not an abort.
pub fn from_f32(name: &str, data: &ArrayD<f32>) -> Result<TensorProto> {
    Ok(TensorProto {
        name: Some(name.to_string()),
        dims: data.shape().iter().map(|&d| d as i64).collect(),
        data_type: Some(data_type::FLOAT),
        raw_data: Some(le_bytes(name, data.iter().copied())?),
        ..Default::default()
    })
}

/// `values` as little-endian bytes, reserved fallibly up front (the error counts the values, as
/// [`OutOfMemory`] counts `f32`s).
fn le_bytes(name: &str, values: impl ExactSizeIterator<Item = f32>) -> Result<Vec<u8>> {
    let n = values.len();
    let refused = || Error::tensor(name, OutOfMemory { elements: n }.to_string());
    let mut raw = alloc::try_with_capacity(n.checked_mul(4).ok_or_else(refused)?).map_err(|_| refused())?;
    raw.extend(values.flat_map(f32::to_le_bytes));
    Ok(raw)
}

/// `message` encoded, into a buffer reserved fallibly: a model or tensor file is encoded whole before
/// it is written, a second copy of every weight.
pub(crate) fn encode(message: &impl Message, path: &Path, what: &'static str) -> Result<Vec<u8>> {
    let bytes = message.encoded_len();
    let mut buffer =
        alloc::try_with_capacity(bytes).map_err(|_| Error::Encode { path: path.to_path_buf(), what, bytes })?;
    message.encode(&mut buffer).expect("the buffer was reserved for the whole message");
    Ok(buffer)
}

/// A 1-D int64 tensor (shapes, pads, axes, slice bounds).
pub fn from_i64(name: &str, values: &[i64]) -> TensorProto {
    TensorProto {
        name: Some(name.to_string()),
        dims: vec![values.len() as i64],
        data_type: Some(data_type::INT64),
        raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        ..Default::default()
    }
}

/// Reads a tensor file (a serialized `TensorProto`, as in ONNX test directories): its name (possibly
/// empty) and float32 data.
pub fn read_file(path: &Path, limits: &Limits) -> Result<(String, ArrayD<f32>)> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let t = TensorProto::decode(bytes.as_slice()).map_err(|e| Error::Decode {
        path: path.to_path_buf(),
        what: "tensor",
        message: e.to_string(),
    })?;
    let name = t.name().to_string();
    let label = if name.is_empty() { path.display().to_string() } else { name.clone() };
    let data = to_f32(&t, &label, TensorSource { base_dir: None, limits })?;
    Ok((name, data))
}

/// The name a serialized `TensorProto` stores, without reading its data into an array.
pub fn name_of(bytes: &[u8]) -> Result<String, prost::DecodeError> {
    TensorProto::decode(bytes).map(|t| t.name().to_string())
}

/// Writes `data` as a tensor file named `name`.
pub fn write_file(path: &Path, name: &str, data: &ArrayD<f32>) -> Result<()> {
    let bytes = encode(&from_f32(name, data)?, path, "tensor")?;
    strider_ir::output::replace_file(path, "tensor", |out| std::io::Write::write_all(out, &bytes))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(limits: &Limits) -> TensorSource<'_> {
        TensorSource { base_dir: None, limits }
    }

    #[test]
    fn float_tensors_round_trip_through_raw_data_and_files() {
        let a = ArrayD::from_shape_vec(vec![2, 3], vec![1.0, -2.5, 3.0, 0.0, f32::MAX, 1e-30]).unwrap();
        let limits = Limits::default();
        assert_eq!(to_f32(&from_f32("a", &a).unwrap(), "a", source(&limits)).unwrap(), a);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.pb");
        write_file(&path, "a", &a).unwrap();
        assert_eq!(read_file(&path, &limits).unwrap(), ("a".to_string(), a));
    }

    #[test]
    fn exported_data_is_copied_into_memory_reserved_fallibly() {
        assert_eq!(le_bytes("t", [1.0f32, -2.0].into_iter()).unwrap(), [0, 0, 128, 63, 0, 0, 0, 192]);
        // 2⁴⁰ values (4 TiB as bytes), yielded lazily: the copy is refused before anything is produced.
        let err = le_bytes("w", std::iter::repeat_n(0.0, 1 << 40)).unwrap_err().to_string();
        assert_eq!(
            err,
            "tensor `w`: cannot allocate 1099511627776 elements (4398046511104 bytes): the system refused the memory"
        );
        let err = le_bytes("w", std::iter::repeat_n(0.0, usize::MAX / 2)).unwrap_err().to_string();
        assert!(err.starts_with(&format!("tensor `w`: cannot allocate {} elements", usize::MAX / 2)), "{err}");
    }

    #[test]
    fn typed_fields_are_read_and_counted() {
        let limits = Limits::default();
        let t = TensorProto {
            dims: vec![2],
            data_type: Some(data_type::FLOAT),
            float_data: vec![1.0, 2.0],
            ..Default::default()
        };
        assert_eq!(to_f32(&t, "t", source(&limits)).unwrap().as_slice().unwrap(), &[1.0, 2.0]);
        let short = TensorProto { float_data: vec![1.0], ..t };
        let err = to_f32(&short, "t", source(&limits)).unwrap_err().to_string();
        assert_eq!(err, "tensor `t`: float_data holds 1 elements, but its shape holds 2");
        let ints = TensorProto {
            dims: vec![3],
            data_type: Some(data_type::INT32),
            int32_data: vec![1, -2, 3],
            ..Default::default()
        };
        assert_eq!(to_i64(&ints, "i", source(&limits)).unwrap(), [1, -2, 3]);
        assert_eq!(to_i64(&from_i64("s", &[1, -1, 7]), "s", source(&limits)).unwrap(), [1, -1, 7]);
    }

    #[test]
    fn sizes_are_checked_before_allocation() {
        let limits = Limits { max_elements: 100 };
        let huge =
            TensorProto { dims: vec![1 << 40, 1 << 40], data_type: Some(data_type::FLOAT), ..Default::default() };
        assert!(matches!(to_f32(&huge, "h", source(&limits)), Err(Error::Graph(strider_ir::Error::TooLarge { .. }))));
        let negative = TensorProto { dims: vec![-3], data_type: Some(data_type::FLOAT), ..Default::default() };
        assert_eq!(
            to_f32(&negative, "n", source(&limits)).unwrap_err().to_string(),
            "tensor `n`: has a negative dimension -3"
        );
        let mismatch = TensorProto {
            dims: vec![4],
            data_type: Some(data_type::FLOAT),
            raw_data: Some(vec![0; 12]),
            ..Default::default()
        };
        assert_eq!(
            to_f32(&mismatch, "m", source(&limits)).unwrap_err().to_string(),
            "tensor `m`: raw data holds 12 bytes, but shape [4] needs 16"
        );
        let double = TensorProto {
            dims: vec![1],
            data_type: Some(data_type::DOUBLE),
            double_data: vec![1.0],
            ..Default::default()
        };
        assert_eq!(
            to_f32(&double, "d", source(&limits)).unwrap_err().to_string(),
            "`d` has element type DOUBLE; Strider computes in float32 only"
        );
    }

    #[test]
    fn external_data_stays_inside_the_directory_and_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("w.bin"), [0u8; 24]).unwrap();
        let limits = Limits::default();
        let src = TensorSource { base_dir: Some(dir.path()), limits: &limits };
        let entry = |k: &str, v: &str| StringStringEntryProto { key: Some(k.into()), value: Some(v.into()) };
        let tensor = |entries: Vec<StringStringEntryProto>| TensorProto {
            dims: vec![2],
            data_type: Some(data_type::FLOAT),
            data_location: Some(DataLocation::External as i32),
            external_data: entries,
            ..Default::default()
        };
        let ok = tensor(vec![entry("location", "w.bin"), entry("offset", "16"), entry("length", "8")]);
        assert_eq!(to_f32(&ok, "w", src).unwrap().as_slice().unwrap(), &[0.0, 0.0]);
        let past = tensor(vec![entry("location", "w.bin"), entry("offset", "20"), entry("length", "8")]);
        assert_eq!(
            to_f32(&past, "w", src).unwrap_err().to_string(),
            "tensor `w`: external data at offset 20, length 8 lies outside `w.bin` (24 bytes)"
        );
        let escape = tensor(vec![entry("location", "../w.bin")]);
        assert!(to_f32(&escape, "w", src).unwrap_err().to_string().contains("outside the model's directory"));
        let missing = tensor(vec![entry("location", "nope.bin")]);
        assert!(to_f32(&missing, "w", src).unwrap_err().to_string().contains("cannot open external data `nope.bin`"));
        assert!(to_f32(&ok, "w", source(&limits)).unwrap_err().to_string().contains("not allowed"));
    }
}
