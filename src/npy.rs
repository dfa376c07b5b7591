//! `.npy` files (NumPy format 1.0) of `f32` and `i64` arrays.
//!
//! Written by hand because the format is a magic string, a version, a padded Python-dict
//! header (`descr`, `fortran_order`, `shape`) and raw little-endian data; a crate would
//! bring more than that.

use std::path::Path;

use crate::error::{Error, Result};

/// An element type that `.npy` can hold.
pub trait Element: Copy {
    /// NumPy's type string, little-endian.
    const DESCR: &'static str;
    /// The value's little-endian bytes.
    fn le_bytes(self) -> Vec<u8>;
}

impl Element for f32 {
    const DESCR: &'static str = "<f4";
    fn le_bytes(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}

impl Element for i64 {
    const DESCR: &'static str = "<i8";
    fn le_bytes(self) -> Vec<u8> {
        self.to_le_bytes().to_vec()
    }
}

/// The bytes of a C-order `.npy` file of `data` with `shape`.
pub fn encode<T: Element>(data: &[T], shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        T::DESCR
    );
    // magic (6) + version (2) + header length (2) + header, padded to 64 bytes with '\n' last
    let total = (10 + header.len() + 1).div_ceil(64) * 64;
    header.push_str(&" ".repeat(total - 10 - header.len() - 1));
    header.push('\n');
    let mut out = Vec::with_capacity(total + data.len() * 8);
    out.extend_from_slice(b"\x93NUMPY\x01\x00");
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in data {
        out.extend(v.le_bytes());
    }
    out
}

/// Writes `data` with `shape` to `path` as `.npy`.
pub fn write<T: Element>(path: &Path, data: &[T], shape: &[usize]) -> Result<()> {
    if shape.iter().product::<usize>() != data.len() {
        return Err(Error::Output {
            path: path.to_path_buf(),
            msg: format!("{} values do not fill shape {shape:?}", data.len()),
        });
    }
    std::fs::write(path, encode(data, shape)).map_err(|e| Error::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_padded_to_64_bytes() {
        let b = encode(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3]);
        assert_eq!(&b[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([b[8], b[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&b[10..10 + hlen]).unwrap();
        assert!(header.contains("'shape': (2, 3)") && header.ends_with('\n'));
        assert_eq!(b.len(), 10 + hlen + 24);
        let one = encode(&[7i64], &[1]);
        assert!(std::str::from_utf8(&one[10..64]).unwrap().contains("(1,)"));
    }
}
