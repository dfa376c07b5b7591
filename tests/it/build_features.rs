//! `cargo build` and `cargo test` resolve the same features for every dependency they
//! share: otherwise the test suite compiles burn and tract a second time (about 9 minutes
//! on two cores) instead of reusing the release build. Cargo.toml asks for the features
//! the dev-dependencies would add; this test notices when an update adds another.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

/// `name version` → the feature sets it is built with (several where host and target
/// builds differ), from `cargo tree` with the given edge kinds.
fn features(edges: &str) -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "--locked",
            "--features",
            "mpi",
            "--prefix",
            "none",
        ])
        .args(["-e", edges, "-f", "{p}|{f}"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let (package, feats) = line.split_once('|').expect("a `{p}|{f}` line");
        // `(*)` marks a package already listed; a path dependency carries its path.
        let name: Vec<&str> = package.split_whitespace().take(2).collect();
        let feats = feats.trim_end_matches(" (*)").to_string();
        map.entry(name.join(" ")).or_default().insert(feats);
    }
    map
}

#[test]
fn release_and_test_builds_share_dependency_features() {
    let build = features("normal,build");
    let test = features("normal,build,dev");
    assert!(
        build.len() > 100,
        "cargo tree listed {} packages",
        build.len()
    );
    let differ: Vec<String> = build
        .iter()
        .filter(|(name, feats)| test.get(*name) != Some(feats))
        .map(|(name, feats)| format!("{name}: build {feats:?}, test {:?}", test.get(name)))
        .collect();
    assert!(
        differ.is_empty(),
        "features differ between `cargo build` and `cargo test` (add them to Cargo.toml's \
         unifying dependencies):\n{}",
        differ.join("\n")
    );
}
