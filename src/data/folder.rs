//! Folders of PNG and JPEG images, labelled by sub-folder or unlabelled.
//!
//! Two layouts:
//! - labelled: `dir/train/<class>/*` and `dir/test/<class>/*`. The classes are the
//!   sub-folders of `train`, sorted by name, and label `i` is the `i`-th of them; every
//!   test sub-folder must name a train class.
//! - unlabelled: images directly in `dir`, labels `u32::MAX`. There is no held-out set,
//!   so the same images form both the train and the test split.
//!
//! Files are taken in name order; files with other extensions and deeper folders are
//! ignored. All images must have one size. Grey images give one channel; when any image
//! has colour, every image gives three (grey ones repeated) and alpha is dropped. Values
//! are the 8-bit levels / 255 (16-bit images are reduced to 8 bits first).

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::{Dataset, Split};
use crate::error::{Error, Result};

/// File extensions read as images (compared without case).
pub const EXTENSIONS: &[&str] = &["png", "jpg", "jpeg"];

/// One decoded image, 8-bit, interleaved (`HWC`).
struct Decoded {
    pixels: Vec<u8>,
    colour: bool,
    width: u32,
    height: u32,
}

/// An image file and the split and label it belongs to.
struct Entry {
    path: PathBuf,
    test: bool,
    label: u32,
}

/// Loads the image folder `dir` (either layout), refusing images of more than
/// `max_pixels` pixels and a folder whose decoded size exceeds the memory available, both
/// before decoding.
pub fn load(dir: &Path, max_pixels: u64) -> Result<Dataset> {
    if !dir.is_dir() {
        return Err(Error::data(dir, "not found or not a folder"));
    }
    let train_dir = dir.join("train");
    let (entries, class_names) = if train_dir.is_dir() {
        labelled(&train_dir, &dir.join("test"))?
    } else {
        let files = images_in(dir)?;
        if files.is_empty() {
            return Err(Error::data(
                dir,
                "no images: expected PNG or JPEG files, or train/<class>/ and test/<class>/ folders",
            ));
        }
        let entries = files
            .into_iter()
            .map(|path| Entry {
                path,
                test: false,
                label: u32::MAX,
            })
            .collect();
        (entries, Vec::new())
    };
    let (w, h) = dimensions(&entries[0].path, max_pixels)?;
    let need = entries.len() as f64 * f64::from(w) * f64::from(h) * 3.0 * 5.0;
    if let Some(avail) = crate::host::available().filter(|&a| need > a as f64) {
        return Err(Error::data(
            dir,
            format!(
                "{} images of {w}x{h} need about {} decoded, {} is available (data.limit or \
                 smaller images)",
                entries.len(),
                crate::host::human(need),
                crate::host::human(avail as f64)
            ),
        ));
    }
    let decoded: Vec<Result<Decoded>> = entries
        .par_iter()
        .map(|e| decode(&e.path, max_pixels))
        .collect();
    let decoded = decoded.into_iter().collect::<Result<Vec<_>>>()?;
    check_sizes(&entries, &decoded)?;
    let channels = if decoded.iter().any(|d| d.colour) {
        3
    } else {
        1
    };
    let shape = [
        channels,
        decoded[0].height as usize,
        decoded[0].width as usize,
    ];
    let split = |test: bool| {
        let mut s = Split {
            data: Vec::new(),
            shape,
            labels: Vec::new(),
        };
        for (e, d) in entries.iter().zip(&decoded).filter(|(e, _)| e.test == test) {
            push_chw(&mut s.data, d, channels);
            s.labels.push(e.label);
        }
        s
    };
    let train = split(false);
    let test = if class_names.is_empty() {
        train.clone()
    } else {
        split(true)
    };
    Ok(Dataset {
        name: "folder".into(),
        train,
        test,
        classes: class_names.len(),
        class_names,
    })
}

/// The entries of the labelled layout and the sorted class names.
fn labelled(train_dir: &Path, test_dir: &Path) -> Result<(Vec<Entry>, Vec<String>)> {
    if !test_dir.is_dir() {
        return Err(Error::data(
            test_dir,
            "not found: a train/ folder of classes needs a test/ folder beside it",
        ));
    }
    let classes = sub_folders(train_dir)?;
    if classes.is_empty() {
        return Err(Error::data(
            train_dir,
            "no class sub-folders: expected train/<class>/ folders of images",
        ));
    }
    let names: Vec<String> = classes.iter().map(|(n, _)| n.clone()).collect();
    let mut entries = Vec::new();
    for (label, (_, folder)) in classes.iter().enumerate() {
        add_class(&mut entries, folder, false, label as u32)?;
    }
    let test_classes = sub_folders(test_dir)?;
    if test_classes.is_empty() {
        return Err(Error::data(
            test_dir,
            "no class sub-folders: expected test/<class>/ folders of images",
        ));
    }
    for (name, folder) in &test_classes {
        let Some(label) = names.iter().position(|n| n == name) else {
            return Err(Error::data(
                folder,
                format!("class `{name}` is not a train class ({})", names.join(", ")),
            ));
        };
        add_class(&mut entries, folder, true, label as u32)?;
    }
    Ok((entries, names))
}

/// Appends the images of one class folder, which must hold at least one.
fn add_class(entries: &mut Vec<Entry>, folder: &Path, test: bool, label: u32) -> Result<()> {
    let files = images_in(folder)?;
    if files.is_empty() {
        return Err(Error::data(folder, "empty folder: no PNG or JPEG images"));
    }
    entries.extend(files.into_iter().map(|path| Entry { path, test, label }));
    Ok(())
}

/// Sub-folders of `dir` as (name, path), sorted by name; hidden ones are skipped.
fn sub_folders(dir: &Path) -> Result<Vec<(String, PathBuf)>> {
    let mut out: Vec<(String, PathBuf)> = read_dir(dir)?
        .into_iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| {
            let name = p.file_name()?.to_str()?.to_owned();
            (!name.starts_with('.')).then_some((name, p))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Image files directly in `dir`, sorted by name.
fn images_in(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = read_dir(dir)?
        .into_iter()
        .filter(|p| p.is_file() && is_image(p))
        .collect();
    out.sort();
    Ok(out)
}

/// True when `path` has one of the [`EXTENSIONS`].
pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|x| x.to_str())
        .is_some_and(|x| EXTENSIONS.iter().any(|e| x.eq_ignore_ascii_case(e)))
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .map(|e| e.map(|e| e.path()).map_err(|e| Error::io(dir, e)))
        .collect()
}

/// The width and height in `path`'s header, refused above `max_pixels`.
fn dimensions(path: &Path, max_pixels: u64) -> Result<(u32, u32)> {
    let (w, h) = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?
        .into_dimensions()
        .map_err(|e| undecodable(path, e))?;
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(Error::data(
            path,
            format!("{w}x{h} image is over data.max_pixels = {max_pixels}"),
        ));
    }
    Ok((w, h))
}

/// An image file the decoder refused, in one line.
fn undecodable(path: &Path, e: image::ImageError) -> Error {
    let msg = e.to_string();
    Error::data(
        path,
        format!(
            "cannot decode image: {}",
            msg.split_whitespace().collect::<Vec<_>>().join(" ")
        ),
    )
}

fn decode(path: &Path, max_pixels: u64) -> Result<Decoded> {
    dimensions(path, max_pixels)?;
    let corrupt = |e| undecodable(path, e);
    let img = image::ImageReader::open(path)
        .map_err(|e| Error::io(path, e))?
        .with_guessed_format()
        .map_err(|e| Error::io(path, e))?
        .decode()
        .map_err(corrupt)?;
    let colour = img.color().has_color();
    let (width, height) = (img.width(), img.height());
    let pixels = if colour {
        img.into_rgb8().into_raw()
    } else {
        img.into_luma8().into_raw()
    };
    Ok(Decoded {
        pixels,
        colour,
        width,
        height,
    })
}

/// Every image must have the size of the first; the error names both files.
fn check_sizes(entries: &[Entry], decoded: &[Decoded]) -> Result<()> {
    let (first, d0) = (&entries[0].path, &decoded[0]);
    for (e, d) in entries.iter().zip(decoded) {
        if (d.width, d.height) != (d0.width, d0.height) {
            return Err(Error::data(
                &e.path,
                format!(
                    "{}x{} pixels, but {} is {}x{}: all images must have one size",
                    d.width,
                    d.height,
                    first.display(),
                    d0.width,
                    d0.height
                ),
            ));
        }
    }
    Ok(())
}

/// Appends `d` as `[channels, h, w]` values in `[0, 1]`.
fn push_chw(out: &mut Vec<f32>, d: &Decoded, channels: usize) {
    let plane = d.pixels.len() / if d.colour { 3 } else { 1 };
    for c in 0..channels {
        out.extend((0..plane).map(|i| {
            let byte = if d.colour {
                d.pixels[3 * i + c]
            } else {
                d.pixels[i]
            };
            f32::from(byte) / 255.0
        }));
    }
}
