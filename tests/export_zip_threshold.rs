#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod exportkit;
use exportkit::*;
use kpbxd::export::zip::{ZipPolicy, zip_if_larger};
use std::io::Read;

#[test]
fn megabytes_are_decimal() {
    assert_eq!(ZipPolicy::from_megabytes(10).threshold_bytes, 10_000_000);
    let p = ZipPolicy::from_megabytes(1);
    assert!(!p.should_zip(1_000_000), "equal to threshold: not zipped");
    assert!(p.should_zip(1_000_001));
    assert!(ZipPolicy { threshold_bytes: 0 }.should_zip(0), "0 = always");
}

#[test]
fn zips_only_above_threshold_and_round_trips() {
    let src = tmp("export.csv");
    let data: Vec<u8> = (0..300_000u32)
        .flat_map(|i| format!("{i},x\r\n").into_bytes())
        .collect();
    std::fs::write(&src, &data).unwrap();
    let dst = tmp("export.zip");
    let _ = std::fs::remove_file(&dst);

    let big = ZipPolicy {
        threshold_bytes: data.len() as u64,
    };
    assert!(!zip_if_larger(&src, &dst, "export.csv", big).unwrap());
    assert!(!dst.exists(), "nothing written below the threshold");

    assert!(zip_if_larger(&src, &dst, "export.csv", ZipPolicy::from_megabytes(0)).unwrap());
    let zipped = std::fs::metadata(&dst).unwrap().len();
    assert!(zipped < data.len() as u64 / 3, "deflated: {zipped}");
    let mut z = zip::ZipArchive::new(std::fs::File::open(&dst).unwrap()).unwrap();
    assert_eq!(z.len(), 1);
    let mut e = z.by_name("export.csv").unwrap();
    assert_eq!(e.compression(), zip::CompressionMethod::Deflated);
    let mut back = Vec::new();
    e.read_to_end(&mut back).unwrap();
    assert_eq!(back, data);
}
