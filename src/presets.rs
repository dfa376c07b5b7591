//! The ready-to-run configs of `configs/`, embedded at build time by `build.rs`.
//!
//! Convention: each preset file starts with `# <one-line description>`.

/// `(name, TOML text)` of every `configs/*.toml`, sorted by name.
pub const PRESETS: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/presets.rs"));

/// A preset's name and the one-line description from its first comment line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preset {
    pub name: &'static str,
    pub description: &'static str,
    pub text: &'static str,
}

/// Every embedded preset.
pub fn all() -> Vec<Preset> {
    PRESETS
        .iter()
        .map(|&(name, text)| Preset {
            name,
            description: description(text),
            text,
        })
        .collect()
}

/// The text after `#` on the first comment line (empty without one).
fn description(text: &str) -> &str {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .and_then(|l| l.strip_prefix('#'))
        .map_or("", str::trim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_config_file_is_embedded_with_its_description() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let on_disk = std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "toml")
            })
            .count();
        assert_eq!(all().len(), on_disk);
        assert!(all().iter().all(|p| !p.description.is_empty()));
        assert_eq!(description("\n# One line.\n# More.\n"), "One line.");
    }
}
