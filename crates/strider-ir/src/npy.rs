//! Reading `.npy` files into f32 tensors of a declared shape, refusing a wrong shape or element type from
//! the header alone, before any data is allocated.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use ndarray::ArrayD;
use ndarray_npy::ReadNpyExt;
use ndarray_npy::npy::header::Header;

/// Reads `path` as a little-endian f32 array of exactly `shape`; the error says what was found instead.
pub fn read_f32(path: &Path, shape: &[usize]) -> Result<ArrayD<f32>, String> {
    let open = || File::open(path).map(BufReader::new).map_err(|e| format!("cannot open {}: {e}", path.display()));
    let header =
        Header::from_reader(&mut open()?).map_err(|e| format!("{} is not a .npy file: {e}", path.display()))?;
    if header.shape != shape {
        return Err(format!("{} has shape {:?}, expected {shape:?}", path.display(), header.shape));
    }
    let descr = header.type_descriptor.to_string();
    if descr != "'<f4'" {
        return Err(format!(
            "{} holds elements of type {descr}, expected '<f4' (little-endian float32)",
            path.display()
        ));
    }
    ArrayD::<f32>::read_npy(open()?).map_err(|e| format!("cannot read {}: {e}", path.display()))
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
}
