//! Reading `.npy` files into f32 tensors of a declared shape. Everything that decides an allocation is
//! checked first: only regular files are opened (a FIFO would block), the header is at most
//! [`MAX_HEADER`] bytes and must fit the file, its shape and element type must be the ones declared,
//! and the data must be exactly as long as that shape says; the data buffer is then reserved with
//! `try_reserve`, so a failed allocation is an error rather than an abort.

use std::fs::File;
use std::io::{BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use ndarray_npy::npy::header::{Header, Layout};

/// Longest header accepted, in bytes: numpy's own reader refuses headers over 10,000 bytes, and a
/// header is read whole into memory before it can be checked.
pub const MAX_HEADER: usize = 10_000;

/// Magic string and version: the fixed start of every `.npy` file.
const PREFIX: usize = 8;

/// Deepest bracket nesting accepted in a header: the dict, the shape tuple, and a structured type's
/// list of field tuples.
const MAX_HEADER_NESTING: usize = 4;

/// Reads `path` as a little-endian f32 array of exactly `shape`; the error says what was found instead.
pub fn read_f32(path: &Path, shape: &[usize]) -> Result<ArrayD<f32>, String> {
    let (file, shown) = open(path)?;
    read_f32_from(BufReader::new(file), &shown, shape)
}

/// Checks that `path` holds a little-endian f32 array of exactly `shape` (its header, and the data's
/// length from the file size) without reading the data.
pub fn check_f32(path: &Path, shape: &[usize]) -> Result<(), String> {
    let (file, shown) = open(path)?;
    checked_header(&mut BufReader::new(file), &shown, shape).map(|_| ())
}

/// `path` opened for reading, and its name for errors: only a regular file (checked before opening,
/// since opening a FIFO for reading blocks until a writer appears).
fn open(path: &Path) -> Result<(File, String), String> {
    let shown = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("cannot open {shown}: not a regular file"));
    }
    let file = File::open(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
    Ok((file, shown))
}

/// Reads `.npy` bytes from `reader` as a little-endian f32 array of exactly `shape`; `source` names the
/// bytes in errors (a path, for files). The header must fit the bytes and the data must be exactly as
/// long as `shape` needs before anything is allocated for it.
pub fn read_f32_from<R: Read + Seek>(mut reader: R, source: &str, shape: &[usize]) -> Result<ArrayD<f32>, String> {
    let cannot = |e: &dyn std::fmt::Display| format!("cannot read {source}: {e}");
    let (layout, n) = checked_header(&mut reader, source, shape)?;
    let mut data: Vec<f32> = crate::alloc::try_with_capacity(n).map_err(|e| cannot(&e))?;
    let mut chunk = vec![0u8; 1 << 16];
    while data.len() < n {
        let take = ((n - data.len()) * 4).min(chunk.len());
        reader.read_exact(&mut chunk[..take]).map_err(|e| cannot(&e))?;
        data.extend(chunk[..take].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
    }
    let array = match layout {
        Layout::Standard => ArrayD::from_shape_vec(IxDyn(shape), data),
        Layout::Fortran => ArrayD::from_shape_vec(IxDyn(shape).f(), data).map(|a| a.as_standard_layout().into_owned()),
    };
    array.map_err(|e| cannot(&e))
}

/// Reads and checks the header of `.npy` bytes that should hold a little-endian f32 array of exactly
/// `shape`, and that the data after it is exactly as long; gives the data's order and element count,
/// with `reader` left at the start of the data.
fn checked_header<R: Read + Seek>(reader: &mut R, source: &str, shape: &[usize]) -> Result<(Layout, usize), String> {
    let cannot = |e: &dyn std::fmt::Display| format!("cannot read {source}: {e}");
    let size = reader.seek(SeekFrom::End(0)).map_err(|e| cannot(&e))?;
    reader.rewind().map_err(|e| cannot(&e))?;
    let header = read_header(reader, source)?;
    let data_offset = reader.stream_position().map_err(|e| cannot(&e))?;
    if header.shape != shape {
        return Err(format!("{source} has shape {:?}, expected {shape:?}", header.shape));
    }
    let descr = header.type_descriptor.to_string();
    if descr != "'<f4'" {
        return Err(format!("{source} holds elements of type {descr}, expected '<f4' (little-endian float32)"));
    }
    let n = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let expected = n.and_then(|n| n.checked_mul(4)).map(|b| b as u64);
    let present = size.saturating_sub(data_offset);
    if expected != Some(present) {
        return Err(format!(
            "{source} holds {present} bytes of data, but shape {shape:?} of float32 needs {}",
            expected.map_or("more than can be counted".to_string(), |b| b.to_string())
        ));
    }
    Ok((header.layout, n.unwrap_or(0)))
}

/// The header at the start of `reader` (shape, element type, order), which is left just past it. A
/// header longer than [`MAX_HEADER`] or than the bytes that follow is refused before it is read.
pub fn read_header<R: Read + Seek>(reader: &mut R, source: &str) -> Result<Header, String> {
    let not_npy = |why: &dyn std::fmt::Display| format!("{source} is not a .npy file: {why}");
    let start = reader.stream_position().map_err(|e| not_npy(&e))?;
    let size = reader.seek(SeekFrom::End(0)).map_err(|e| not_npy(&e))?;
    reader.seek(SeekFrom::Start(start)).map_err(|e| not_npy(&e))?;
    let mut head = vec![0u8; PREFIX];
    reader.read_exact(&mut head).map_err(|e| not_npy(&e))?;
    let len_bytes = if head[6] == 1 { 2 } else { 4 };
    let mut len = [0u8; 4];
    reader.read_exact(&mut len[..len_bytes]).map_err(|e| not_npy(&e))?;
    head.extend_from_slice(&len[..len_bytes]);
    let header_len = u32::from_le_bytes(len) as usize;
    if header_len > MAX_HEADER {
        return Err(not_npy(&format!("its header claims {header_len} bytes, more than the {MAX_HEADER} accepted")));
    }
    let end = start + (PREFIX + len_bytes + header_len) as u64;
    if end > size {
        return Err(not_npy(&format!("its header claims {header_len} bytes, but the file has only {size}")));
    }
    head.resize(head.len() + header_len, 0);
    reader.read_exact(&mut head[PREFIX + len_bytes..]).map_err(|e| not_npy(&e))?;
    // The header parser backtracks exponentially in the nesting depth: refuse deep nesting first.
    let mut depth = 0usize;
    for &byte in &head[PREFIX + len_bytes..] {
        match byte {
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_HEADER_NESTING {
                    return Err(not_npy(&format!(
                        "its header nests brackets deeper than {MAX_HEADER_NESTING} (a .npy header is a flat dict)"
                    )));
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Header::from_reader(&mut Cursor::new(&head)).map_err(|e| not_npy(&e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray_npy::write_npy;

    #[test]
    fn shape_and_type_are_checked_from_the_header() {
        let dir = tempfile::tempdir().unwrap();
        let f32_path = dir.path().join("a.npy");
        write_npy(&f32_path, &ArrayD::<f32>::from_elem(vec![2, 3], 1.5)).unwrap();
        assert_eq!(read_f32(&f32_path, &[2, 3]).unwrap().sum(), 9.0);
        let err = read_f32(&f32_path, &[3, 2]).unwrap_err();
        assert!(err.contains("has shape [2, 3], expected [3, 2]"), "{err}");
        let f64_path = dir.path().join("b.npy");
        write_npy(&f64_path, &ArrayD::<f64>::zeros(vec![2])).unwrap();
        assert!(read_f32(&f64_path, &[2]).unwrap_err().contains("'<f8'"));
    }

    #[test]
    fn fortran_order_is_read_as_row_major() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.npy");
        let a = ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1f32, 2., 3., 4., 5., 6.]).unwrap();
        write_npy(&path, &a.t().as_standard_layout().t()).unwrap();
        assert_eq!(read_f32(&path, &[2, 3]).unwrap(), a);
    }

    #[test]
    fn a_header_claiming_more_than_the_file_holds_is_refused_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("huge_header.npy");
        // 11 bytes: magic, version 2.0, header length 0xFFFFFFF0, one byte.
        std::fs::write(&path, b"\x93NUMPY\x02\x00\xf0\xff\xff").unwrap();
        let err = read_f32(&path, &[1]).unwrap_err();
        assert!(err.contains("is not a .npy file"), "{err}");
        std::fs::write(&path, b"\x93NUMPY\x02\x00\xf0\xff\xff\xff{").unwrap();
        let err = read_f32(&path, &[1]).unwrap_err();
        assert!(err.contains("its header claims 4294967280 bytes, more than the 10000 accepted"), "{err}");
    }

    #[test]
    fn data_shorter_or_longer_than_the_shape_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("short.npy");
        write_npy(&path, &ArrayD::<f32>::zeros(vec![4])).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 4);
        std::fs::write(&path, &bytes).unwrap();
        let err = read_f32(&path, &[4]).unwrap_err();
        assert!(err.contains("holds 12 bytes of data, but shape [4] of float32 needs 16"), "{err}");
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_folder_is_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo.npy");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let err = read_f32(&fifo, &[1]).unwrap_err();
            assert!(err.ends_with("fifo.npy: not a regular file"), "{err}");
        }
        let err = read_f32(dir.path(), &[1]).unwrap_err();
        assert!(err.ends_with(": not a regular file"), "{err}");
    }

    #[test]
    fn a_header_claiming_gigabytes_is_refused_before_it_is_read() {
        // Magic, version 2.0, a header length of 0xFFFFFFF0 and one byte of header: 13 bytes in all.
        let mut bytes = b"\x93NUMPY\x02\x00".to_vec();
        bytes.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
        bytes.push(b'{');
        let err = read_f32_from(std::io::Cursor::new(bytes), "huge.npy", &[1]).unwrap_err();
        assert_eq!(
            err,
            "huge.npy is not a .npy file: its header claims 4294967280 bytes, more than the 10000 accepted"
        );
    }

    #[test]
    fn bytes_read_like_the_file_they_came_from() {
        let mut bytes = Vec::new();
        ndarray_npy::WriteNpyExt::write_npy(&ArrayD::<f32>::from_elem(vec![3], 2.5), &mut bytes).unwrap();
        let array = read_f32_from(std::io::Cursor::new(&bytes), "memory", &[3]).unwrap();
        assert_eq!(array.as_slice().unwrap(), &[2.5, 2.5, 2.5]);
        let truncated = read_f32_from(std::io::Cursor::new(&bytes[..bytes.len() - 1]), "memory", &[3]).unwrap_err();
        assert!(truncated.contains("memory holds 11 bytes of data, but shape [3] of float32 needs 12"), "{truncated}");
    }
}
