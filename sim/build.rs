//! Embeds every `fixtures/versions/*.toml` into the crate, so the binaries
//! carry their version tables and adding a fixture needs no code change.
//!
//! Each fixture is also converted to JSON here: at run time serde_json
//! reads a table about ten times faster than toml, which matters to every
//! `jool-stats` start (and under TCG, ~30 times more). A fixture that does
//! not parse gets no JSON; the crate then parses its TOML at run time and
//! reports the error with its line, as before.

use std::{env, fs, path::PathBuf};

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap());
    let dir = manifest.join("../fixtures/versions");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut names: Vec<_> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    names.sort();
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap());
    let mut out = String::from("&[\n");
    let mut json = String::from("&[\n");
    for path in &names {
        println!("cargo:rerun-if-changed={}", path.display());
        let file = path.file_name().unwrap().to_string_lossy();
        let abs = fs::canonicalize(path).unwrap();
        out.push_str(&format!(
            "    ({file:?}, include_str!({:?})),\n",
            abs.display().to_string()
        ));
        let text = fs::read_to_string(path).unwrap();
        match toml::from_str::<toml::Value>(&text) {
            Ok(v) => {
                let dest = out_dir.join(format!("{file}.json"));
                fs::write(&dest, serde_json::to_string(&v).unwrap()).unwrap();
                json.push_str(&format!(
                    "    Some(include_str!({:?})),\n",
                    dest.display().to_string()
                ));
            }
            Err(_) => json.push_str("    None,\n"),
        }
    }
    out.push(']');
    json.push(']');
    fs::write(out_dir.join("fixtures.rs"), out).unwrap();
    fs::write(out_dir.join("fixtures_json.rs"), json).unwrap();
}
