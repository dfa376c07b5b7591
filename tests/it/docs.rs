//! The README and docs/ as a reader meets them: every relative link and image resolves to
//! a file in the repository, the pages render in headless Chromium with every image
//! loaded, and docs/config.md is what the code generates.

use std::path::{Path, PathBuf};
use std::process::Command;

use pulldown_cmark::{html, Event, Options, Parser, Tag};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// README.md, benches/README.md and every page of docs/.
fn pages() -> Vec<PathBuf> {
    let mut pages = vec![root().join("README.md"), root().join("benches/README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

fn options() -> Options {
    Options::ENABLE_TABLES | Options::ENABLE_HEADING_ATTRIBUTES
}

/// The links and images of a page: (is it an image, its target).
fn targets(page: &Path) -> Vec<(bool, String)> {
    let text = std::fs::read_to_string(page).unwrap();
    Parser::new_ext(&text, options())
        .filter_map(|e| match e {
            Event::Start(Tag::Link { dest_url, .. }) => Some((false, dest_url.to_string())),
            Event::Start(Tag::Image { dest_url, .. }) => Some((true, dest_url.to_string())),
            _ => None,
        })
        .collect()
}

#[test]
fn every_relative_link_and_image_resolves_to_a_file_in_the_repository() {
    let repo = root().canonicalize().unwrap();
    for page in pages() {
        for (image, target) in targets(&page) {
            if target.contains("://") || target.starts_with('#') || target.starts_with("mailto:") {
                continue;
            }
            let file = target.split('#').next().unwrap();
            let path = page.parent().unwrap().join(file);
            let resolved = path.canonicalize().unwrap_or_else(|_| {
                panic!(
                    "{}: {} {target} does not exist",
                    page.display(),
                    if image { "image" } else { "link" }
                )
            });
            assert!(
                resolved.starts_with(&repo),
                "{}: {target} leaves the repository",
                page.display()
            );
        }
    }
}

#[test]
fn the_config_reference_is_what_the_code_generates() {
    let committed = std::fs::read_to_string(root().join("docs/config.md")).unwrap();
    assert!(
        committed == contrastive::reference::markdown(),
        "docs/config.md is stale: run `contrastive config --reference > docs/config.md`"
    );
    assert_eq!(contrastive::reference::undocumented(), Vec::<String>::new());
}

/// Renders `page` to an HTML file in `out` whose relative links and images resolve
/// against the page's folder, with a script that counts the images that loaded.
fn render(page: &Path, out: &Path) -> PathBuf {
    let text = std::fs::read_to_string(page).unwrap();
    let mut body = String::new();
    html::push_html(&mut body, Parser::new_ext(&text, options()));
    let base = page.parent().unwrap().canonicalize().unwrap();
    let doc = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><base href=\"file://{}/\">\
         <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:2px 6px}}\
         img{{max-width:100%}}</style></head><body>{body}\
         <script>window.addEventListener('load',()=>{{const i=[...document.images];\
         const p=document.createElement('p');p.id='images';\
         p.textContent='images '+i.filter(x=>x.complete&&x.naturalWidth>0).length+'/'+i.length;\
         document.body.appendChild(p);}});</script></body></html>",
        base.display()
    );
    let file = out.join(format!("{}.html", page_name(page)));
    std::fs::write(&file, doc).unwrap();
    file
}

/// `README`, `benches-README`, `docs-guide`: a page's path without its extension.
fn page_name(page: &Path) -> String {
    let rel = page.strip_prefix(root()).unwrap_or(page).with_extension("");
    rel.to_string_lossy().replace('/', "-")
}

fn chromium(args: &[String]) -> std::process::Output {
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
        ])
        .args([
            "--allow-file-access-from-files",
            "--virtual-time-budget=5000",
        ])
        .args(args)
        .output()
        .expect("chromium: scripts/test.sh installs it")
}

#[test]
#[ignore = "needs chromium: scripts/test.sh"]
fn every_page_renders_in_headless_chromium_with_its_images() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("docs-rendered");
    std::fs::create_dir_all(&out).unwrap();
    for page in pages() {
        let file = render(&page, &out);
        let images = targets(&page).iter().filter(|t| t.0).count();
        let dom = chromium(&["--dump-dom".into(), format!("file://{}", file.display())]);
        let dom = String::from_utf8_lossy(&dom.stdout);
        let want = format!("images {images}/{images}");
        assert!(
            dom.contains(&want),
            "{}: expected {want}, the rendered page says {:?}",
            page.display(),
            dom.split("id=\"images\">")
                .nth(1)
                .map(|s| &s[..s.len().min(20)])
        );
        let shot = out.join(format!("{}.png", page_name(&page)));
        let _ = std::fs::remove_file(&shot);
        chromium(&[
            format!("--screenshot={}", shot.display()),
            "--window-size=1100,2400".into(),
            format!("file://{}", file.display()),
        ]);
        let img = image::open(&shot).unwrap().to_luma8();
        let first = img.get_pixel(0, 0);
        assert!(
            img.pixels().any(|p| p != first),
            "{}: blank page",
            page.display()
        );
    }
}
