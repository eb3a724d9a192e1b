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
            // start-end perms offset dev inode path
            let mut fields = line.split_whitespace();
            let (Some(range), Some(perms)) = (fields.next(), fields.next()) else {
                continue;
            };
            let path = fields.nth(3);
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
