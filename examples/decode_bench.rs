//! JPEG decoding speed of the crates a streamed loader could use, on one core: `image`
//! 0.25 (what `data.dataset = "images"` decodes with; its JPEG path is `zune-jpeg`),
//! `zune-jpeg` called directly, and `jpeg-decoder` at full size and at the DCT's reduced
//! scales (1/2, 1/4, 1/8), which decode only the coefficients a smaller image needs. Rounds
//! alternate between the decoders; the median of each is printed, in images/s.
//!
//! usage: decode_bench DIR [files = 400] [rounds = 5]   (DIR: a folder of .jpg files,
//! searched recursively, e.g. one written by scripts/make-image-folder.py)

use std::path::{Path, PathBuf};
use std::time::Instant;

/// A decoder: the bytes of one JPEG to its number of decoded bytes.
type Decode = Box<dyn Fn(&[u8]) -> usize>;

fn jpegs(dir: &Path, out: &mut Vec<PathBuf>, want: usize) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    entries.sort();
    for p in entries {
        if out.len() >= want {
            return;
        }
        if p.is_dir() {
            jpegs(&p, out, want);
        } else if p.extension().is_some_and(|x| x == "jpg" || x == "jpeg") {
            out.push(p);
        }
    }
}

/// Decodes every file once with `f`, returning images/s.
fn time(files: &[Vec<u8>], f: &dyn Fn(&[u8]) -> usize) -> f64 {
    let t0 = Instant::now();
    let mut pixels = 0;
    for b in files {
        pixels += f(b);
    }
    std::hint::black_box(pixels);
    files.len() as f64 / t0.elapsed().as_secs_f64()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let dir = PathBuf::from(args.get(1).map_or("/tmp/fm224", String::as_str));
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(400);
    let rounds: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(5);
    let mut paths = Vec::new();
    jpegs(&dir, &mut paths, n);
    anyhow::ensure!(!paths.is_empty(), "{}: no .jpg files", dir.display());
    let files: Vec<Vec<u8>> = paths.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let (w, h) = image::ImageReader::new(std::io::Cursor::new(&files[0]))
        .with_guessed_format()?
        .into_dimensions()?;
    let scaled = |div: u16| {
        move |b: &[u8]| {
            let mut d = jpeg_decoder::Decoder::new(b);
            d.scale(w as u16 / div, h as u16 / div).expect("scale");
            d.decode().expect("decode").len()
        }
    };
    let decoders: Vec<(&str, Decode)> = vec![
        (
            "image 0.25 (zune-jpeg)",
            Box::new(|b| {
                image::load_from_memory(b)
                    .expect("decode")
                    .into_rgb8()
                    .len()
            }),
        ),
        (
            "zune-jpeg 0.5",
            Box::new(|b| {
                zune_jpeg::JpegDecoder::new(zune_jpeg::zune_core::bytestream::ZCursor::new(b))
                    .decode()
                    .expect("decode")
                    .len()
            }),
        ),
        (
            "jpeg-decoder 0.3",
            Box::new(|b| {
                jpeg_decoder::Decoder::new(b)
                    .decode()
                    .expect("decode")
                    .len()
            }),
        ),
        ("jpeg-decoder 0.3, 1/2 scale", Box::new(scaled(2))),
        ("jpeg-decoder 0.3, 1/4 scale", Box::new(scaled(4))),
        ("jpeg-decoder 0.3, 1/8 scale", Box::new(scaled(8))),
    ];
    let mut got = vec![Vec::new(); decoders.len()];
    for _ in 0..rounds {
        for (k, (_, f)) in decoders.iter().enumerate() {
            got[k].push(time(&files, f.as_ref()));
        }
    }
    println!(
        "{} JPEGs of {w}x{h} from {}, {rounds} rounds, one thread",
        files.len(),
        dir.display()
    );
    for ((name, _), g) in decoders.iter().zip(got) {
        println!("{name:<30} {:>8.0} images/s", median(g));
    }
    Ok(())
}
