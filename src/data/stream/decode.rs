//! Decoding one image file's bytes, and the evaluation's resize and centre crop.
//!
//! JPEG and PNG go through the `image` crate, whose JPEG decoder is `zune-jpeg`, the fastest
//! at full size. `zune-jpeg` cannot decode at a reduced scale; `jpeg-decoder` can (its IDCT
//! keeps only the coefficients of a 1/2, 1/4 or 1/8 image), and at 1/4 and 1/8 it is faster
//! than `zune-jpeg` at full size, so [`decode_reduced`] uses it there
//! (`examples/decode_bench.rs`).

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader};

/// A decoded image, 8-bit, interleaved (`HWC`) with `channels` 1 (grey) or 3 (RGB).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub pixels: Vec<u8>,
    pub width: usize,
    pub height: usize,
    pub channels: usize,
}

impl Decoded {
    /// The image as `[channels, height, width]` values in `[0, 1]`.
    pub fn chw(&self) -> Vec<f32> {
        let (c, plane) = (self.channels, self.width * self.height);
        let mut out = vec![0.0; c * plane];
        for (i, px) in self.pixels.chunks_exact(c).enumerate() {
            for (ch, &v) in px.iter().enumerate() {
                out[ch * plane + i] = f32::from(v) / 255.0;
            }
        }
        out
    }

    /// The shape `[channels, height, width]`.
    pub fn shape(&self) -> [usize; 3] {
        [self.channels, self.height, self.width]
    }

    /// `Resize(side)` then `CenterCrop(side)` (torchvision's evaluation transform):
    /// the shorter edge scaled to `side` with a triangle (bilinear, antialiased) filter,
    /// then the centred `side` x `side` square. An image already `side` x `side` is
    /// returned unchanged.
    pub fn resized_centre(&self, side: usize) -> Decoded {
        if (self.width, self.height) == (side, side) {
            return self.clone();
        }
        let (w, h) = (self.width as f64, self.height as f64);
        let scale = side as f64 / w.min(h);
        let nw = ((w * scale).round() as usize).max(side);
        let nh = ((h * scale).round() as usize).max(side);
        let resized = self.to_dynamic().resize_exact(
            nw as u32,
            nh as u32,
            image::imageops::FilterType::Triangle,
        );
        let (left, top) = ((nw - side) / 2, (nh - side) / 2);
        let cropped = resized.crop_imm(left as u32, top as u32, side as u32, side as u32);
        Decoded {
            pixels: cropped.into_bytes(),
            width: side,
            height: side,
            channels: self.channels,
        }
    }

    fn to_dynamic(&self) -> DynamicImage {
        let (w, h) = (self.width as u32, self.height as u32);
        let px = self.pixels.clone();
        let img = if self.channels == 1 {
            image::GrayImage::from_raw(w, h, px).map(DynamicImage::ImageLuma8)
        } else {
            image::RgbImage::from_raw(w, h, px).map(DynamicImage::ImageRgb8)
        };
        img.expect("pixels of width x height x channels")
    }
}

/// Width, height and channels (1 grey, 3 colour; alpha not counted) from the header of
/// an image file's `bytes`.
pub fn header(bytes: &[u8]) -> Result<(usize, usize, usize), String> {
    let decoder = reader(bytes)?.into_decoder().map_err(one_line)?;
    let (w, h) = decoder.dimensions();
    let colour = decoder.color_type().has_color();
    Ok((w as usize, h as usize, if colour { 3 } else { 1 }))
}

/// Decodes `bytes` to `channels` channels (grey images repeated to RGB, colour ones
/// reduced to luma for a grey collection, alpha dropped), refusing an image of more than
/// `max_pixels` before decoding it.
pub fn decode(bytes: &[u8], channels: usize, max_pixels: u64) -> Result<Decoded, String> {
    let decoder = reader(bytes)?.into_decoder().map_err(one_line)?;
    let (w, h) = decoder.dimensions();
    if u64::from(w) * u64::from(h) > max_pixels {
        return Err(format!(
            "{w}x{h} image is over data.max_pixels = {max_pixels}"
        ));
    }
    let img = DynamicImage::from_decoder(decoder).map_err(one_line)?;
    let pixels = if channels == 1 {
        img.into_luma8().into_raw()
    } else {
        img.into_rgb8().into_raw()
    };
    Ok(Decoded {
        pixels,
        width: w as usize,
        height: h as usize,
        channels,
    })
}

fn reader(bytes: &[u8]) -> Result<ImageReader<Cursor<&[u8]>>, String> {
    ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| one_line(image::ImageError::IoError(e)))
}

/// A decoder's error in one line.
fn one_line(e: image::ImageError) -> String {
    format!(
        "cannot decode image: {}",
        e.to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    )
}

/// Whether `bytes` start as a JPEG file does (SOI marker).
pub fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8])
}

/// [`decode`] of a JPEG at `1/div` of its sides (`div` 4 or 8; the sides rounded up), by
/// `jpeg-decoder`'s scaled IDCT. Grey, RGB and CMYK-free files only: others, and any
/// `div` below 4, where the scaled decoder is no faster than [`decode`] at full size, are
/// decoded at full size. `(w, h)` are the image's sides from its [`header`], which the
/// caller has read to plan `div`.
pub fn decode_reduced(
    bytes: &[u8],
    (w, h): (usize, usize),
    channels: usize,
    max_pixels: u64,
    div: usize,
) -> Result<Decoded, String> {
    if div < 4 || !is_jpeg(bytes) {
        return decode(bytes, channels, max_pixels);
    }
    if (w * h) as u64 > max_pixels {
        return Err(format!(
            "{w}x{h} image is over data.max_pixels = {max_pixels}"
        ));
    }
    // jpeg-decoder asserts on some malformed frames that zune-jpeg's header accepted
    let scaled = std::panic::catch_unwind(|| -> Option<(Vec<u8>, usize, usize, bool)> {
        let mut d = jpeg_decoder::Decoder::new(bytes);
        let (sw, sh) = d
            .scale(w.div_ceil(div) as u16, h.div_ceil(div) as u16)
            .ok()?;
        let pixels = d.decode().ok()?;
        let grey = match d.info()?.pixel_format {
            jpeg_decoder::PixelFormat::L8 => true,
            jpeg_decoder::PixelFormat::RGB24 => false,
            _ => return None,
        };
        Some((pixels, usize::from(sw), usize::from(sh), grey))
    });
    let Ok(Some((pixels, sw, sh, grey))) = scaled else {
        return decode(bytes, channels, max_pixels);
    };
    let pixels = match (grey, channels) {
        (true, 1) | (false, 3) => pixels,
        (true, _) => pixels.iter().flat_map(|&v| [v, v, v]).collect(),
        (false, _) => pixels
            .chunks_exact(3)
            .map(|p| {
                // Rec. 709 luma in integers, as `image`'s `into_luma8` computes it
                let [r, g, b] = [p[0], p[1], p[2]].map(u32::from);
                ((2126 * r + 7152 * g + 722 * b) / 10000) as u8
            })
            .collect(),
    };
    Ok(Decoded {
        pixels,
        width: sw,
        height: sh,
        channels,
    })
}
