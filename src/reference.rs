//! The config reference: every key of a config with its type, default, allowed values
//! and meaning, read from the config types themselves (their JSON schema, whose
//! descriptions are the fields' doc comments, and `Config::default()`), so that
//! docs/config.md is generated rather than kept by hand (`contrastive config
//! --reference`; a test fails when the committed file differs or a key has no meaning).

use serde_json::{Map, Value};

use crate::config::Config;
use crate::error::{Error, Result};

/// One key of the config.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    /// Dotted path, as `--set` takes it: `loss.temperature`.
    pub key: String,
    pub ty: String,
    /// The default as TOML would write it (`none` when unset).
    pub default: String,
    /// For keys that take one of a set of names: each name and what it means.
    pub allowed: Vec<(String, String)>,
    pub meaning: String,
}

/// A table of the config (`[loss]`, `[loss.swav]`) with its keys.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub name: String,
    pub meaning: String,
    pub keys: Vec<Key>,
}

/// Every section of the config, in the order of the config's fields, each key in name
/// order.
pub fn sections() -> Vec<Section> {
    let schema = schemars::schema_for!(Config);
    let root = schema.as_value();
    let defs = root
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let defaults = serde_json::to_value(Config::default()).unwrap_or(Value::Null);
    let mut out = Vec::new();
    if let Some(props) = root.get("properties").and_then(Value::as_object) {
        for (name, prop) in props {
            let default = defaults.get(name).unwrap_or(&Value::Null);
            table(name, prop, default, &defs, &mut out);
        }
    }
    out
}

/// Every key, in the order of [`sections`].
pub fn keys() -> Vec<Key> {
    sections().into_iter().flat_map(|s| s.keys).collect()
}

/// The keys that have no meaning written for them (their field has no doc comment, and
/// neither has its type).
pub fn undocumented() -> Vec<String> {
    keys()
        .into_iter()
        .filter(|k| k.meaning.trim().is_empty())
        .map(|k| k.key)
        .collect()
}

/// One key's entry, as `contrastive config --explain KEY` prints it.
pub fn explain(key: &str) -> Result<Key> {
    let all = keys();
    all.iter().find(|k| k.key == key).cloned().ok_or_else(|| {
        let near: Vec<&str> = all
            .iter()
            .map(|k| k.key.as_str())
            .filter(|k| k.split('.').next() == key.split('.').next())
            .collect();
        Error::config(
            "--explain",
            key,
            match near.is_empty() {
                true => "a config key (see docs/config.md)".to_string(),
                false => format!("one of {}", near.join(", ")),
            },
        )
    })
}

/// The reference as Markdown (docs/config.md).
pub fn markdown() -> String {
    let mut md = String::from(
        "# Config reference\n\n\
         Every key of a run's config, generated from the code by `contrastive config \
         --reference` (a test keeps this file equal to it). Set a key in a TOML file \
         under its table, or on the command line with `--set table.key=VALUE` (the value \
         is TOML); `contrastive config --config FILE` prints the resolved config and \
         `contrastive config --explain KEY` one key.\n",
    );
    for s in sections() {
        md.push_str(&format!("\n## [{}]\n\n", s.name));
        if !s.meaning.is_empty() {
            md.push_str(&format!("{}\n\n", one_paragraph(&s.meaning)));
        }
        md.push_str("| key | type | default | meaning |\n|---|---|---|---|\n");
        for k in &s.keys {
            let mut meaning = one_paragraph(&k.meaning);
            if !k.allowed.is_empty() {
                let names: Vec<String> = k
                    .allowed
                    .iter()
                    .map(|(n, m)| match m.is_empty() {
                        true => format!("`{n}`"),
                        false => format!("`{n}`: {}", one_paragraph(m).trim_end_matches('.')),
                    })
                    .collect();
                meaning.push_str(&format!(" One of: {}.", names.join("; ")));
            }
            md.push_str(&format!(
                "| `{}` | {} | `{}` | {} |\n",
                k.key,
                k.ty,
                k.default,
                meaning.replace('|', "\\|")
            ));
        }
    }
    md
}

/// Adds table `name` (schema `prop`, defaults `default`) and its sub-tables to `out`.
fn table(
    name: &str,
    prop: &Value,
    default: &Value,
    defs: &Map<String, Value>,
    out: &mut Vec<Section>,
) {
    let target = resolve(prop, defs);
    let mut section = Section {
        name: name.to_string(),
        meaning: text(target),
        keys: Vec::new(),
    };
    let mut nested = Vec::new();
    if let Some(props) = target.get("properties").and_then(Value::as_object) {
        for (key, p) in props {
            let full = format!("{name}.{key}");
            let d = default.get(key).unwrap_or(&Value::Null);
            let r = resolve(p, defs);
            if r.get("properties").is_some() {
                nested.push((full, p.clone(), d.clone()));
                continue;
            }
            let meaning = match text(p) {
                m if m.is_empty() => text(r),
                m => m,
            };
            section.keys.push(Key {
                key: full,
                ty: type_name(r, defs),
                default: toml_value(d),
                allowed: allowed(r),
                meaning,
            });
        }
    }
    out.push(section);
    for (full, p, d) in nested {
        table(&full, &p, &d, defs, out);
    }
}

/// The schema `s` refers to (`$ref`, possibly inside `allOf`), or `s`.
fn resolve<'a>(s: &'a Value, defs: &'a Map<String, Value>) -> &'a Value {
    let by_ref = |v: &'a Value| {
        v.get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix("#/$defs/"))
            .and_then(|n| defs.get(n))
    };
    by_ref(s)
        .or_else(|| {
            s.get("allOf")
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .and_then(by_ref)
        })
        .unwrap_or(s)
}

fn text(s: &Value) -> String {
    s.get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A doc comment's lines joined into one paragraph.
fn one_paragraph(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The names a key takes, with their meanings: a string enum's variants.
fn allowed(s: &Value) -> Vec<(String, String)> {
    if let Some(one_of) = s.get("oneOf").and_then(Value::as_array) {
        return one_of
            .iter()
            .filter_map(|v| {
                let name = v.get("const").or_else(|| {
                    v.get("enum")
                        .and_then(Value::as_array)
                        .and_then(|e| e.first())
                })?;
                Some((name.as_str()?.to_string(), text(v)))
            })
            .collect();
    }
    s.get("enum")
        .and_then(Value::as_array)
        .map(|e| {
            e.iter()
                .filter_map(|v| Some((v.as_str()?.to_string(), String::new())))
                .collect()
        })
        .unwrap_or_default()
}

/// A short name of schema `s`'s type.
fn type_name(s: &Value, defs: &Map<String, Value>) -> String {
    if s.get("oneOf").is_some() || s.get("enum").is_some() {
        return "name".into();
    }
    if let Some(any) = s.get("anyOf").and_then(Value::as_array) {
        let parts: Vec<String> = any
            .iter()
            .map(|v| type_name(resolve(v, defs), defs))
            .filter(|t| t != "none")
            .collect();
        let optional = any
            .iter()
            .any(|v| v.get("type") == Some(&Value::from("null")));
        let joined = parts.join(" or ");
        return match optional {
            true => format!("{joined} (optional)"),
            false => joined,
        };
    }
    let one = |t: &str| match t {
        "integer" => "integer".to_string(),
        "number" => "number".to_string(),
        "boolean" => "boolean".to_string(),
        "string" => "string".to_string(),
        "null" => "none".to_string(),
        "array" => match s.get("items") {
            Some(items) => {
                let r = resolve(items, defs);
                match r.get("properties") {
                    Some(_) => "list of tables".to_string(),
                    None => format!("list of {}", plural(&type_name(r, defs))),
                }
            }
            None => "list".to_string(),
        },
        other => other.to_string(),
    };
    match s.get("type") {
        Some(Value::String(t)) => one(t),
        Some(Value::Array(ts)) => {
            let names: Vec<String> = ts
                .iter()
                .filter_map(Value::as_str)
                .filter(|t| *t != "null")
                .map(one)
                .collect();
            let optional = ts.iter().any(|t| t == "null");
            match optional {
                true => format!("{} (optional)", names.join(" or ")),
                false => names.join(" or "),
            }
        }
        _ => "value".into(),
    }
}

fn plural(t: &str) -> String {
    match t {
        "list of numbers" | "list of integers" => format!("lists of {}", &t[8..]),
        t if t.ends_with('s') => t.to_string(),
        t => format!("{t}s"),
    }
}

/// `v` as TOML writes a value; `none` for an unset option. f32 values print in their
/// shortest form (0.286, not 0.28600001335144043).
fn toml_value(v: &Value) -> String {
    match v {
        Value::Null => "none".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f64::from(f as f32) == f => format!("{:?}", f as f32),
            (None, Some(f)) => format!("{f:?}"),
            _ => n.to_string(),
        },
        Value::String(s) => format!("{s:?}"),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(toml_value).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(o) => format!(
            "{{ {} }}",
            o.iter()
                .map(|(k, v)| format!("{k} = {}", toml_value(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_of_the_default_config_is_listed() {
        let listed: Vec<String> = keys().into_iter().map(|k| k.key).collect();
        let toml: toml::Table = Config::default().to_toml().parse().unwrap();
        fn leaves(t: &toml::Table, prefix: &str, out: &mut Vec<String>) {
            for (k, v) in t {
                let key = format!("{prefix}{k}");
                match v {
                    toml::Value::Table(inner) => leaves(inner, &format!("{key}."), out),
                    _ => out.push(key),
                }
            }
        }
        let mut written = Vec::new();
        leaves(&toml, "", &mut written);
        for k in &written {
            assert!(listed.contains(k), "{k} is missing from the reference");
        }
    }

    #[test]
    fn every_key_has_a_meaning() {
        assert_eq!(
            undocumented(),
            Vec::<String>::new(),
            "keys without a doc comment"
        );
    }

    #[test]
    fn a_key_is_explained_with_its_type_default_and_names() {
        let k = explain("loss.kind").unwrap();
        assert_eq!((k.ty.as_str(), k.default.as_str()), ("name", "\"nt-xent\""));
        assert!(k
            .allowed
            .iter()
            .any(|(n, m)| n == "supcon" && !m.is_empty()));
        let t = explain("loss.temperature").unwrap();
        assert_eq!((t.ty.as_str(), t.default.as_str()), ("number", "0.2"));
        let e = explain("loss.temprature").unwrap_err().to_string();
        assert!(e.contains("loss.temperature"), "{e}");
    }
}
