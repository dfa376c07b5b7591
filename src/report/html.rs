//! Pieces of the self-contained HTML page: escaping, tables, figures.

/// `s` with HTML's special characters escaped.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A table with a header row; cells are escaped.
pub fn table(header: &[String], rows: &[Vec<String>]) -> String {
    let cells = |tag: &str, r: &[String]| {
        r.iter()
            .map(|c| format!("<{tag}>{}</{tag}>", escape(c)))
            .collect::<String>()
    };
    let mut out = format!("<table><tr>{}</tr>\n", cells("th", header));
    for r in rows {
        out.push_str(&format!("<tr>{}</tr>\n", cells("td", r)));
    }
    out.push_str("</table>\n");
    out
}

/// A picture at the relative address `src` with a caption.
pub fn figure(src: &str, caption: &str) -> String {
    format!(
        "<figure><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>\n",
        escape(src),
        escape(caption),
        escape(caption)
    )
}

/// The whole page: `title` and the already-rendered `body`.
pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>{t}</title>\n\
<style>\nbody {{ font-family: sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }}\n\
h1 {{ font-size: 1.6em; }} h2 {{ border-bottom: 1px solid #ccc; padding-bottom: .2em; }}\n\
table {{ border-collapse: collapse; margin: 1em 0; }}\n\
th, td {{ border: 1px solid #ccc; padding: .25em .6em; text-align: right; }}\n\
th:first-child, td:first-child {{ text-align: left; }}\n\
figure {{ margin: 1em 0; }} img {{ max-width: 100%; border: 1px solid #eee; }}\n\
figcaption {{ color: #555; font-size: .9em; }}\n\
pre {{ background: #f6f6f6; padding: 1em; overflow-x: auto; }}\n</style></head>\n\
<body>\n<h1>{t}</h1>\n{body}</body></html>\n",
        t = escape(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_escaped() {
        let t = table(&["a".into()], &[vec!["<b>&".into()]]);
        assert!(t.contains("<td>&lt;b&gt;&amp;</td>"), "{t}");
    }
}
