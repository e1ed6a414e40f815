//! Converts the workspace's `openapi.yaml` to JSON once, at build time, so the functions and the
//! dev stack serve `GET /v1/openapi.json` without parsing YAML at run time.

use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR");
    let source = Path::new(&manifest).join("../openapi.yaml");
    println!("cargo:rerun-if-changed={}", source.display());
    let text = std::fs::read_to_string(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
    let document: serde_json::Value =
        serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{} is not valid YAML: {e}", source.display()));
    let json = serde_json::to_string(&document).expect("JSON");
    let out = Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("openapi.json");
    std::fs::write(&out, json).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}
