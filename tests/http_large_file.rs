//! A 64 MiB file streamed with bounded memory: a counting global allocator records the peak
//! of live heap bytes in this test binary (the server runs in-process; curl is the client).
#![allow(clippy::unwrap_used)]

mod httpkit;
use httpkit::*;
use kpbxd::http::Config;
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            let now = LIVE.fetch_add(l.size(), Relaxed) + l.size();
            PEAK.fetch_max(now, Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        LIVE.fetch_sub(l.size(), Relaxed);
    }
}

#[global_allocator]
static A: Counting = Counting;

#[test]
fn sixty_four_mib_streamed_with_bounded_memory() {
    require("curl", "curl");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("tree");
    std::fs::create_dir_all(&root).unwrap();
    // Write the file in 1 MiB pieces, hashing as we go, so the test itself stays small too.
    let mut file = std::fs::File::create(root.join("big.bin")).unwrap();
    let mut want = <sha2::Sha256 as sha2::Digest>::new();
    for i in 0..64 {
        let piece = bytes(1024 * 1024, 1000 + i);
        sha2::Digest::update(&mut want, &piece);
        std::io::Write::write_all(&mut file, &piece).unwrap();
    }
    drop(file);
    let want: String = sha2::Digest::finalize(want)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect();

    let srv = start(recorder(&root), Config::default());
    // Settle, then measure only the transfer.
    let o = curl(&["-o", "/dev/null", &srv.url("/provisioning/missing")]);
    assert!(o.status.success());
    let base = LIVE.load(Relaxed);
    PEAK.store(base, Relaxed);
    let out = dir.path().join("big.out");
    let o = curl(&[
        "-o",
        out.to_str().unwrap(),
        "-w",
        "%{http_code} %{size_download}",
        &srv.url("/provisioning/big.bin"),
    ]);
    assert_eq!(
        stdout(&o),
        format!("200 {}", 64 * 1024 * 1024),
        "{}",
        stderr(&o)
    );
    let peak = PEAK.load(Relaxed) - base;
    // 64 KiB chunk + buffers; allow 1 MiB of slack. A buffered implementation would need 64 MiB.
    assert!(
        peak < 1024 * 1024,
        "heap grew by {peak} bytes while streaming"
    );
    // Hash the download in pieces.
    let mut f = std::fs::File::open(&out).unwrap();
    let mut h = <sha2::Sha256 as sha2::Digest>::new();
    let mut buf = vec![0u8; 1024 * 1024];
    loop {
        let n = std::io::Read::read(&mut f, &mut buf).unwrap();
        if n == 0 {
            break;
        }
        sha2::Digest::update(&mut h, &buf[..n]);
    }
    let got: String = sha2::Digest::finalize(h)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect();
    assert_eq!(got, want);
    eprintln!("heap peak during 64 MiB transfer: +{peak} bytes");
}
