//! IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed.
//!
//! Layout: a big-endian magic `0x0000_08DD` (type code 0x08 = unsigned byte, DD = number
//! of dimensions), DD big-endian u32 sizes, then the bytes in row-major order.

use std::io::Read;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use crate::error::{Error, Result};

/// An IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads `path`, or `path.gz` when `path` itself does not exist. A compressed file is
/// decompressed as it is parsed, and never past the size its header declares (a small
/// gzip bomb stops at its header's promise plus one byte).
pub fn read(path: &Path) -> Result<IdxArray> {
    let path = resolve(path)?;
    let file = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
    let mut file = std::io::BufReader::new(file);
    let mut head = [0u8; 2];
    let n = read_up_to(&mut file, &mut head).map_err(|e| Error::io(&path, e))?;
    let rest = head[..n].chain(file);
    if head[..n] == [0x1f, 0x8b] {
        read_from(&path, GzDecoder::new(rest), "corrupt gzip stream: ")
    } else {
        read_from(&path, rest, "")
    }
}

/// Fills as much of `buf` as the reader has; returns how much.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Picks `path` or `path.gz`, whichever exists.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    if path.exists() {
        return Ok(path.to_path_buf());
    }
    let mut gz = path.as_os_str().to_owned();
    gz.push(".gz");
    let gz = PathBuf::from(gz);
    if gz.exists() {
        Ok(gz)
    } else {
        Err(Error::data(path, "not found (nor with .gz)"))
    }
}

/// Parses the bytes of an IDX file; `path` only names it in errors.
pub fn parse(path: &Path, bytes: Vec<u8>) -> Result<IdxArray> {
    read_from(path, bytes.as_slice(), "")
}

/// Parses an IDX stream: the header first, then exactly the data bytes it declares and
/// one more to tell that the stream goes on; `path` only names it in errors.
pub fn read_stream(path: &Path, r: impl Read) -> Result<IdxArray> {
    read_from(path, r, "")
}

/// [`read_stream`]; `io` prefixes the message of a read error (the stream's own failure,
/// e.g. bad gzip).
fn read_from(path: &Path, mut r: impl Read, io: &str) -> Result<IdxArray> {
    let read_err = |e: std::io::Error| Error::data(path, format!("{io}{e}"));
    let mut magic = [0u8; 4];
    let got = read_up_to(&mut r, &mut magic).map_err(read_err)?;
    if got < 4 {
        return Err(Error::data(
            path,
            format!("truncated: {got} bytes, no IDX header"),
        ));
    }
    let magic = u32::from_be_bytes(magic);
    let (kind, ndim) = ((magic >> 8) & 0xff, (magic & 0xff) as usize);
    if magic >> 16 != 0 || kind != 0x08 || ndim == 0 || ndim > 4 {
        return Err(Error::data(
            path,
            format!("wrong magic number 0x{magic:08x}: expected 0x0000080N (unsigned bytes, N dimensions)"),
        ));
    }
    let header = 4 + 4 * ndim;
    let mut sizes = vec![0u8; 4 * ndim];
    let got = read_up_to(&mut r, &mut sizes).map_err(read_err)?;
    if got < sizes.len() {
        return Err(Error::data(
            path,
            format!("truncated header: {} of {header} bytes", 4 + got),
        ));
    }
    let dims: Vec<usize> = sizes
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize)
        .collect();
    let expected = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    let Some(expected) = expected else {
        return Err(Error::data(path, format!("dimensions {dims:?} overflow")));
    };
    let mut data = Vec::new();
    r.take(expected as u64 + 1)
        .read_to_end(&mut data)
        .map_err(read_err)?;
    let have = data.len();
    if have < expected {
        return Err(Error::data(
            path,
            format!("truncated: dimensions {dims:?} need {expected} data bytes, file has {have}"),
        ));
    }
    if have > expected {
        return Err(Error::data(
            path,
            format!("trailing bytes after the {expected} that dimensions {dims:?} need"),
        ));
    }
    Ok(IdxArray { dims, data })
}

/// Images `[n, rows, cols]` and their labels `[n]`, checked against each other.
pub fn read_pair(images: &Path, labels: &Path) -> Result<(IdxArray, Vec<u32>)> {
    let img = read(images)?;
    if img.dims.len() != 3 {
        return Err(Error::data(
            images,
            format!(
                "expected 3 dimensions [n, rows, cols], found {:?}",
                img.dims
            ),
        ));
    }
    let lab = read(labels)?;
    if lab.dims.len() != 1 {
        return Err(Error::data(
            labels,
            format!("expected 1 dimension [n], found {:?}", lab.dims),
        ));
    }
    if lab.dims[0] != img.dims[0] {
        return Err(Error::data(
            labels,
            format!(
                "{} labels but {} has {} images",
                lab.dims[0],
                images.display(),
                img.dims[0]
            ),
        ));
    }
    Ok((img, lab.data.iter().map(|&b| u32::from(b)).collect()))
}

/// Serialises `dims` and `data` as an IDX file (used by tests and the data tools).
pub fn encode(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let bytes = encode(&[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let a = parse(Path::new("x"), bytes).unwrap();
        assert_eq!(a.dims, vec![2, 2, 3]);
        assert_eq!(a.data[11], 12);
    }

    #[test]
    fn truncated_data_names_sizes() {
        let mut bytes = encode(&[2, 2, 2], &[0; 8]);
        bytes.truncate(bytes.len() - 3);
        let e = parse(Path::new("f.idx"), bytes).unwrap_err().to_string();
        assert!(
            e.contains("f.idx") && e.contains("truncated") && e.contains("need 8"),
            "{e}"
        );
    }

    #[test]
    fn wrong_magic() {
        let mut bytes = encode(&[1], &[0]);
        bytes[2] = 0x0d;
        let e = parse(Path::new("f"), bytes).unwrap_err().to_string();
        assert!(e.contains("wrong magic number 0x00000d01"), "{e}");
    }
}
