//! Compresses the web console's assets (`web/`) into `$OUT_DIR` at build
//! time and writes the table `src/http/assets.rs` includes: each file as
//! gzip bytes (level 9) with its entity-tag. Nothing is downloaded; the
//! assets are plain files in the repository, with no build step of their
//! own.

use std::io::Write as _;
use std::path::Path;

fn content_type(name: &str) -> &'static str {
    match name.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}

/// FNV-1a 64: enough to tell two builds' bytes apart in an entity-tag.
fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

fn main() {
    let dir = Path::new("web");
    println!("cargo:rerun-if-changed=web");
    let out = std::env::var("OUT_DIR").expect("OUT_DIR");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("web/ is readable")
        .map(|e| {
            e.expect("web/ entry")
                .file_name()
                .into_string()
                .expect("UTF-8 name")
        })
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    let mut table = String::from("&[\n");
    for name in &names {
        println!("cargo:rerun-if-changed=web/{name}");
        let plain = std::fs::read(dir.join(name)).expect("asset readable");
        // No file name or time in the gzip header: the same input gives the
        // same bytes (reproducible builds).
        let mut gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), flate2::Compression::best());
        gz.write_all(&plain).expect("gzip");
        let gz = gz.finish().expect("gzip");
        let gz_path = Path::new(&out).join(format!("{name}.gz"));
        std::fs::write(&gz_path, &gz).expect("write gzip");
        let path = if name == "index.html" {
            "/".to_string()
        } else {
            format!("/{name}")
        };
        table.push_str(&format!(
            "    Asset {{ path: {path:?}, content_type: {ct:?}, gzip: include_bytes!({gz:?}), \
             plain_len: {plen}, tag: \"{tag:016x}\" }},\n",
            ct = content_type(name),
            gz = gz_path.display().to_string(),
            plen = plain.len(),
            tag = fnv(&plain),
        ));
    }
    table.push_str("]\n");
    std::fs::write(Path::new(&out).join("web_assets.rs"), table).expect("write table");
}
