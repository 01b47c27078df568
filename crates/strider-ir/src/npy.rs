//! Reading `.npy` files into f32 tensors of a declared shape, refusing a wrong shape or element type from
//! the header alone, before any data is allocated.

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use ndarray::ArrayD;
use ndarray_npy::ReadNpyExt;
use ndarray_npy::npy::header::Header;

/// Largest header accepted, in bytes: numpy's own reader refuses headers over 10,000 bytes, and a
/// header is read whole into memory before it can be checked.
const MAX_HEADER_BYTES: usize = 10_000;

/// Deepest bracket nesting accepted in a header: the dict, the shape tuple, and a structured type's
/// list of field tuples.
const MAX_HEADER_NESTING: usize = 4;

/// Reads `path` as a little-endian f32 array of exactly `shape`; the error says what was found instead.
pub fn read_f32(path: &Path, shape: &[usize]) -> Result<ArrayD<f32>, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    read_f32_from(BufReader::new(file), &path.display().to_string(), shape)
}

/// Reads `.npy` bytes from `reader` as a little-endian f32 array of exactly `shape`; `source` names the
/// bytes in errors (a path, for files).
pub fn read_f32_from<R: Read + Seek>(mut reader: R, source: &str, shape: &[usize]) -> Result<ArrayD<f32>, String> {
    let header = read_header(&mut reader, source)?;
    if header.shape != shape {
        return Err(format!("{source} has shape {:?}, expected {shape:?}", header.shape));
    }
    let descr = header.type_descriptor.to_string();
    if descr != "'<f4'" {
        return Err(format!("{source} holds elements of type {descr}, expected '<f4' (little-endian float32)"));
    }
    reader.rewind().map_err(|e| format!("cannot read {source}: {e}"))?;
    ArrayD::<f32>::read_npy(reader).map_err(|e| format!("cannot read {source}: {e}"))
}

/// The header at the start of `reader` (shape, element type, order), refusing one longer than
/// 10,000 bytes before reading it; `source` names the bytes in errors.
pub fn read_header<R: Read + Seek>(reader: &mut R, source: &str) -> Result<Header, String> {
    let not_npy = |e: &dyn std::fmt::Display| format!("{source} is not a .npy file: {e}");
    check_header_length(reader).map_err(|e| not_npy(&e))?;
    reader.rewind().map_err(|e| format!("cannot read {source}: {e}"))?;
    Header::from_reader(reader).map_err(|e| not_npy(&e))
}

/// Refuses a header longer than [`MAX_HEADER_BYTES`] from the preamble alone (magic, version and
/// header length), before the header is read, and a header nested deeper than [`MAX_HEADER_NESTING`]
/// before it is parsed (the parser backtracks exponentially in the depth). A preamble that is not
/// `.npy` is left to the header parser.
fn check_header_length(reader: &mut (impl Read + Seek)) -> Result<(), String> {
    let mut preamble = [0u8; 12];
    let mut filled = 0;
    while filled < preamble.len() {
        match reader.read(&mut preamble[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    if filled < 10 || &preamble[..6] != b"\x93NUMPY" {
        return Ok(());
    }
    let (start, length) = match preamble[6] {
        1 => (10, usize::from(u16::from_le_bytes([preamble[8], preamble[9]]))),
        2 | 3 if filled == 12 => {
            (12, u32::from_le_bytes([preamble[8], preamble[9], preamble[10], preamble[11]]) as usize)
        }
        _ => return Ok(()),
    };
    if length > MAX_HEADER_BYTES {
        return Err(format!("its header claims {length} bytes, more than the {MAX_HEADER_BYTES} accepted"));
    }
    let mut header = vec![0u8; length];
    if reader.seek(SeekFrom::Start(start)).is_err() || reader.read_exact(&mut header).is_err() {
        // A short header is the parser's to report.
        return Ok(());
    }
    let mut depth = 0usize;
    for &byte in &header {
        match byte {
            b'{' | b'[' | b'(' => {
                depth += 1;
                if depth > MAX_HEADER_NESTING {
                    return Err(format!(
                        "its header nests brackets deeper than {MAX_HEADER_NESTING} (a .npy header is a flat dict)"
                    ));
                }
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray_npy::write_npy;

    #[test]
    fn shape_and_type_are_checked_from_the_header() {
        let dir = std::env::temp_dir().join(format!("strider-npy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f32_path = dir.join("a.npy");
        write_npy(&f32_path, &ArrayD::<f32>::from_elem(vec![2, 3], 1.5)).unwrap();
        assert_eq!(read_f32(&f32_path, &[2, 3]).unwrap().sum(), 9.0);
        let err = read_f32(&f32_path, &[3, 2]).unwrap_err();
        assert!(err.contains("has shape [2, 3], expected [3, 2]"), "{err}");
        let f64_path = dir.join("b.npy");
        write_npy(&f64_path, &ArrayD::<f64>::zeros(vec![2])).unwrap();
        assert!(read_f32(&f64_path, &[2]).unwrap_err().contains("'<f8'"));
        std::fs::remove_dir_all(dir).unwrap();
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
        assert!(truncated.starts_with("cannot read memory:"), "{truncated}");
    }
}
