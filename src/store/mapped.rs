//! Keeping the resident size of long scans bounded.
//!
//! LMDB reads through a shared, read-only memory map of `data.mdb`: every
//! page a scan touches stays mapped into the process and counts in its RSS,
//! although it is clean page cache the kernel may drop at any time. A scan
//! of a million rows would "use" the whole file. [`Store::release_mapped_pages`]
//! unmaps the pages from this process (`madvise(MADV_DONTNEED)`); the next
//! access faults them back in from the page cache with the same content, so
//! it is safe at any moment, even inside a read transaction on another
//! thread (the map is not writable: no `MDB_WRITEMAP`).

use super::Store;

impl Store {
    /// Drops the store's mapped pages from this process's resident set.
    /// Best effort: does nothing if the mapping cannot be found.
    pub fn release_mapped_pages(&self) {
        let file = self.data_dir.join("store").join("data.mdb");
        let Ok(file) = std::fs::canonicalize(&file) else {
            return;
        };
        let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
            return;
        };
        let name = file.display().to_string();
        for line in maps.lines() {
            // `start-end perms offset dev inode   path`: single spaces
            // between the first five fields, then padding; the path may
            // contain spaces.
            let mut fields = line.splitn(6, ' ');
            let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
                continue;
            };
            let path = fields.nth(3).map(str::trim_start);
            if path != Some(name.as_str()) || perms.contains('w') {
                continue;
            }
            let Some((start, end)) = range.split_once('-') else {
                continue;
            };
            let (Ok(start), Ok(end)) = (
                usize::from_str_radix(start, 16),
                usize::from_str_radix(end, 16),
            ) else {
                continue;
            };
            if end <= start {
                continue;
            }
            // SAFETY: the range is a read-only shared file mapping of
            // data.mdb owned by LMDB for the life of the environment.
            // MADV_DONTNEED on such a mapping only drops the page-table
            // entries; later reads refault the same file pages, so no
            // reference into the map (a read transaction's) is invalidated.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crate::clock::WallTime;
    use crate::store::Store;
    use crate::store::data::Table;

    fn rss_file_kib() -> u64 {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("RssFile:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    #[test]
    fn scanned_pages_are_released() {
        let dir = tempfile::tempdir().unwrap();
        // A space in the path: /proc/self/maps must still be read right.
        let data = dir.path().join("data dir");
        let s = Store::open(&data, 256, WallTime::from_unix_micros(0)).unwrap();
        let value = vec![7u8; 4000];
        s.data_write(|t| {
            for i in 0u32..10_000 {
                t.put(Table::Outbox, &i.to_be_bytes(), &value)?;
            }
            Ok(())
        })
        .unwrap();
        let mut n = 0;
        s.data_scan(
            Table::Outbox,
            (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded),
            crate::store::data::Order::Ascending,
            |_, v| {
                // Touch every byte, as a decoder does.
                n += v.iter().map(|&b| usize::from(b)).sum::<usize>();
                Ok(std::ops::ControlFlow::Continue(()))
            },
        )
        .unwrap();
        assert_eq!(n, 7 * 40_000_000);
        let before = rss_file_kib();
        s.release_mapped_pages();
        let after = rss_file_kib();
        assert!(
            before > after + 20_000,
            "RssFile {before} KiB before, {after} KiB after"
        );
    }
}
