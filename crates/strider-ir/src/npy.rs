//! Reading `.npy` files into f32 tensors of a declared shape. Everything that decides an allocation is
//! checked first: only regular files are opened (a FIFO would block), the header is at most
//! [`MAX_HEADER`] bytes and must fit the file, its shape and element type must be the ones declared,
//! and the data must be exactly as long as that shape says; the data buffer is then reserved with
//! `try_reserve`, so a failed allocation is an error rather than an abort.

use std::fs::File;
use std::io::{Cursor, Read};
use std::path::Path;

use ndarray::{ArrayD, IxDyn, ShapeBuilder};
use ndarray_npy::npy::header::{Header, Layout};

/// Longest header accepted: numpy writes a few hundred bytes at most (64 KiB is its own v1 limit).
pub const MAX_HEADER: usize = 1 << 16;

/// Magic string and version: the fixed start of every `.npy` file.
const PREFIX: usize = 8;

/// Reads `path` as a little-endian f32 array of exactly `shape`; the error says what was found instead.
pub fn read_f32(path: &Path, shape: &[usize]) -> Result<ArrayD<f32>, String> {
    let shown = path.display();
    // Checked before opening: opening a FIFO for reading blocks until a writer appears.
    let meta = std::fs::metadata(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("cannot open {shown}: not a regular file"));
    }
    let mut file = File::open(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
    let size = file.metadata().map_err(|e| format!("cannot open {shown}: {e}"))?.len();
    let not_npy = |why: String| format!("{shown} is not a .npy file: {why}");
    let mut head = vec![0u8; PREFIX];
    file.read_exact(&mut head).map_err(|e| not_npy(e.to_string()))?;
    let len_bytes = if head[6] == 1 { 2 } else { 4 };
    let mut len = [0u8; 4];
    file.read_exact(&mut len[..len_bytes]).map_err(|e| not_npy(e.to_string()))?;
    head.extend_from_slice(&len[..len_bytes]);
    let header_len = u32::from_le_bytes(len) as usize;
    let data_offset = (PREFIX + len_bytes + header_len) as u64;
    if header_len > MAX_HEADER || data_offset > size {
        return Err(not_npy(format!(
            "its header claims {header_len} bytes (the file has {size} bytes; at most {MAX_HEADER} are accepted)"
        )));
    }
    head.resize(head.len() + header_len, 0);
    file.read_exact(&mut head[PREFIX + len_bytes..]).map_err(|e| not_npy(e.to_string()))?;
    let header = Header::from_reader(&mut Cursor::new(&head)).map_err(|e| not_npy(e.to_string()))?;
    if header.shape != shape {
        return Err(format!("{shown} has shape {:?}, expected {shape:?}", header.shape));
    }
    let descr = header.type_descriptor.to_string();
    if descr != "'<f4'" {
        return Err(format!("{shown} holds elements of type {descr}, expected '<f4' (little-endian float32)"));
    }
    let n = shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let expected = n.and_then(|n| n.checked_mul(4)).map(|b| b as u64);
    if expected != Some(size - data_offset) {
        return Err(format!(
            "{shown} holds {} bytes of data, but shape {shape:?} of float32 needs {}",
            size - data_offset,
            expected.map_or("more than can be counted".to_string(), |b| b.to_string())
        ));
    }
    let n = n.unwrap_or(0);
    let mut data: Vec<f32> = Vec::new();
    data.try_reserve_exact(n).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let mut chunk = vec![0u8; 1 << 16];
    while data.len() < n {
        let take = ((n - data.len()) * 4).min(chunk.len());
        file.read_exact(&mut chunk[..take]).map_err(|e| format!("cannot read {shown}: {e}"))?;
        data.extend(chunk[..take].chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
    }
    let array = match header.layout {
        Layout::Standard => ArrayD::from_shape_vec(IxDyn(shape), data),
        Layout::Fortran => ArrayD::from_shape_vec(IxDyn(shape).f(), data).map(|a| a.as_standard_layout().into_owned()),
    };
    array.map_err(|e| format!("cannot read {shown}: {e}"))
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
        assert!(err.contains("its header claims 4294967280 bytes (the file has 13 bytes"), "{err}");
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
}
