//! Request-target → validated path components (pure).
//!
//! The target is percent-decoded exactly once, then split on `/` and checked component by
//! component. A component that survives is a plain file name: non-empty, not starting with
//! `.` (so `.`, `..`, `%2e%2e` and dot-files are all refused), free of `\`, NUL, control bytes,
//! and valid UTF-8. Joining such components under a root can never leave that root (symlinks
//! are the [`Site`](super::Site)'s business). A double-encoded `%252e%252e` decodes once to the
//! literal name `%2e%2e`, which is allowed and simply not found.

use std::fmt;

/// Most components accepted in one path.
pub const MAX_COMPONENTS: usize = 16;
/// Longest accepted component, in bytes after decoding (NAME_MAX on Linux).
pub const MAX_COMPONENT_LEN: usize = 255;

/// A decoded, validated absolute path: `/a/b/c` → `["a", "b", "c"]`; `/` → `[]`.
///
/// Held as its decoded text (one allocation, reusable: [`parse_target_into`]); the
/// components are the `/`-separated parts of it, each checked at parse time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path {
    /// `/a/b/c`; empty for the root.
    text: String,
}

/// Why a target was refused. Every variant maps to `400 Bad Request`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PathError {
    /// Not origin-form (`/...`): `*`, absolute URI, empty.
    NotOriginForm,
    /// `%` not followed by two hex digits.
    BadPercent,
    /// Decoded bytes are not UTF-8.
    NotUtf8,
    /// `//` or a trailing `/` (a directory: never listed).
    EmptyComponent,
    /// A component starting with `.`: `.`, `..`, `%2e%2e`, dot-files.
    DotComponent,
    /// `\` anywhere (raw or `%5c`).
    Backslash,
    /// NUL or another control byte (raw or encoded).
    ControlByte,
    /// More than [`MAX_COMPONENTS`] or a component longer than [`MAX_COMPONENT_LEN`].
    TooLong,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for PathError {}

/// The components of a [`Path`].
pub type Components<'a> = std::str::Split<'a, char>;

impl Path {
    /// The decoded components, in order.
    pub fn components(&self) -> Components<'_> {
        let mut it = self.text.get(1..).unwrap_or("").split('/');
        if self.text.is_empty() {
            // The root: no component (`"".split` would yield one empty one).
            it.by_ref().for_each(drop);
        }
        it
    }

    /// Number of components.
    pub fn len(&self) -> usize {
        self.text.bytes().filter(|&b| b == b'/').count()
    }

    /// No component (the root).
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// The last component (the file name), if any.
    pub fn file_name(&self) -> Option<&str> {
        self.text.rsplit_once('/').map(|(_, name)| name)
    }

    /// The components after a first one equal to `first`, joined by `/` (borrowed, never
    /// empty); `None` when the first component differs or nothing follows it.
    pub fn below(&self, first: &str) -> Option<&str> {
        let rest = self.text.strip_prefix('/')?.strip_prefix(first)?;
        rest.strip_prefix('/').filter(|r| !r.is_empty())
    }

    /// `/a/b` form (decoded): `/` for the root.
    pub fn as_str(&self) -> &str {
        if self.text.is_empty() {
            "/"
        } else {
            &self.text
        }
    }

    /// `/a/b` form (decoded), for logs.
    pub fn to_slash_string(&self) -> String {
        self.as_str().to_owned()
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-decodes `s` once. `+` is not special in paths.
pub fn percent_decode(s: &[u8]) -> Result<Vec<u8>, PathError> {
    let mut out = Vec::with_capacity(s.len());
    decode_into(s, &mut out)?;
    Ok(out)
}

fn decode_into(s: &[u8], out: &mut Vec<u8>) -> Result<(), PathError> {
    let mut i = 0;
    while i < s.len() {
        let b = s[i];
        if b == b'%' {
            let hi = s.get(i + 1).copied().and_then(hex);
            let lo = s.get(i + 2).copied().and_then(hex);
            match (hi, lo) {
                (Some(h), Some(l)) => out.push(h << 4 | l),
                _ => return Err(PathError::BadPercent),
            }
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    Ok(())
}

/// Parses a request target (origin-form; the query, if any, is ignored) into a [`Path`].
pub fn parse_target(target: &[u8]) -> Result<Path, PathError> {
    let mut path = Path::default();
    parse_target_into(target, &mut path)?;
    Ok(path)
}

/// [`parse_target`] into `path`, reusing its allocation. On error `path` is the root.
pub fn parse_target_into(target: &[u8], path: &mut Path) -> Result<(), PathError> {
    let mut buf = std::mem::take(&mut path.text).into_bytes();
    buf.clear();
    let checked = decode_checked(target, &mut buf);
    let text = String::from_utf8(buf);
    match (checked, text) {
        (Ok(()), Ok(text)) => {
            path.text = text;
            if path.text == "/" {
                path.text.clear();
            }
            Ok(())
        }
        (checked, text) => {
            let mut text = text.unwrap_or_else(|e| {
                let mut v = e.into_bytes();
                v.clear();
                String::from_utf8(v).unwrap_or_default()
            });
            text.clear();
            path.text = text;
            Err(checked.err().unwrap_or(PathError::NotUtf8))
        }
    }
}

// Byte classes of the one-pass scan (most path bytes are in none).
const SLASH: u8 = 1;
const BACKSLASH: u8 = 2;
const CONTROL: u8 = 4;
const HIGH: u8 = 8;
/// `?` or `#`: end of the path in a raw target.
const END: u8 = 16;
const PERCENT: u8 = 32;

static CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = match i as u8 {
            b'/' => SLASH,
            b'\\' => BACKSLASH,
            0..=0x1f | 0x7f => CONTROL,
            0x80..=0xff => HIGH,
            b'?' | b'#' => END,
            b'%' => PERCENT,
            _ => 0,
        };
        i += 1;
    }
    t
};

/// Decodes into `out` and checks the bytes and every component.
fn decode_checked(target: &[u8], out: &mut Vec<u8>) -> Result<(), PathError> {
    if target.first() != Some(&b'/') {
        return Err(PathError::NotOriginForm);
    }
    let (end, flags, component) = scan(target, true);
    let raw = &target[..end];
    if flags & PERCENT == 0 {
        // Nothing to decode: the raw scan is the decoded one.
        out.extend_from_slice(raw);
        return verdict(out, flags, component);
    }
    decode_into(raw, out)?;
    let (_, flags, component) = scan(out, false);
    verdict(out, flags, component)
}

/// One pass over a path starting with `/` (up to `?`/`#` when `raw`): the classes seen,
/// and the first component's error (empty, dot, too long or too many).
fn scan(s: &[u8], raw: bool) -> (usize, u8, Option<PathError>) {
    let mut flags = 0;
    let mut first_error = None;
    let mut n = 0;
    let mut start = 1;
    let mut i = 1;
    while let Some(&b) = s.get(i) {
        let c = CLASS[usize::from(b)];
        if c != 0 {
            if raw && c & END != 0 {
                break;
            }
            if c & SLASH != 0 {
                if first_error.is_none() {
                    first_error = component(&s[start..i], n, false);
                }
                n += 1;
                start = i + 1;
            }
            flags |= c;
        }
        i += 1;
    }
    if first_error.is_none() {
        // `/` alone is the root.
        first_error = component(&s[start..i], n, i == 1);
    }
    (i, flags, first_error)
}

/// The error of the `n`th component `c`, if any.
fn component(c: &[u8], n: usize, root: bool) -> Option<PathError> {
    match c.first() {
        None if root => None,
        None => Some(PathError::EmptyComponent),
        Some(b'.') => Some(PathError::DotComponent),
        Some(_) if c.len() > MAX_COMPONENT_LEN || n >= MAX_COMPONENTS => Some(PathError::TooLong),
        Some(_) => None,
    }
}

/// The byte checks win over the component checks wherever the bad byte sits (`\`, then
/// control bytes, then UTF-8).
fn verdict(decoded: &[u8], flags: u8, component: Option<PathError>) -> Result<(), PathError> {
    if flags & BACKSLASH != 0 {
        return Err(PathError::Backslash);
    }
    if flags & CONTROL != 0 {
        return Err(PathError::ControlByte);
    }
    if flags & HIGH != 0 && std::str::from_utf8(decoded).is_err() {
        return Err(PathError::NotUtf8);
    }
    component.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(t: &str) -> Vec<String> {
        parse_target(t.as_bytes())
            .unwrap_or_else(|e| panic!("{t}: {e}"))
            .components()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn plain_paths() {
        assert_eq!(ok("/"), Vec::<String>::new());
        assert_eq!(
            ok("/provisioning/0004f2003039.cfg"),
            ["provisioning", "0004f2003039.cfg"]
        );
        assert_eq!(
            ok("/provisioning/6f1c0c1e-0000-4000-8000-000000000001/a.xml"),
            [
                "provisioning",
                "6f1c0c1e-0000-4000-8000-000000000001",
                "a.xml"
            ]
        );
        assert_eq!(
            ok("/provisioning/a.cfg?mac=0004f2003039"),
            ["provisioning", "a.cfg"]
        );
        assert_eq!(ok("/provisioning/a%20b.cfg"), ["provisioning", "a b.cfg"]);
        assert_eq!(ok("/provisioning/a+b"), ["provisioning", "a+b"]);
        assert_eq!(ok("/provisioning/caf%C3%A9"), ["provisioning", "café"]);
        // Decoded once only: stays a literal (harmless) name.
        assert_eq!(
            ok("/provisioning/%252e%252e/etc"),
            ["provisioning", "%2e%2e", "etc"]
        );
        assert_eq!(ok("/provisioning/a..b"), ["provisioning", "a..b"]);
        // Encoded slash becomes a separator; the components are still checked.
        assert_eq!(ok("/provisioning%2fa.cfg"), ["provisioning", "a.cfg"]);
    }

    #[test]
    fn traversal_table() {
        use PathError::*;
        let table: &[(&str, PathError)] = &[
            ("/provisioning/../etc/passwd", DotComponent),
            ("/provisioning/%2e%2e/etc/passwd", DotComponent),
            ("/provisioning/%2E%2E/etc/passwd", DotComponent),
            ("/provisioning/.%2e/etc/passwd", DotComponent),
            ("/provisioning/..%2fetc/passwd", DotComponent),
            ("/provisioning/..%2Fetc%2Fpasswd", DotComponent),
            ("/provisioning/%2e%2e%2f%2e%2e%2fetc%2fpasswd", DotComponent),
            ("/provisioning/../provisioningX/..", DotComponent),
            ("/provisioning/../provisioningX/a.cfg", DotComponent),
            ("/provisioning/./a.cfg", DotComponent),
            ("/provisioning/.", DotComponent),
            ("/provisioning/..", DotComponent),
            ("/..", DotComponent),
            ("/provisioning/.htaccess", DotComponent),
            ("/provisioning/.bench-files.lst", DotComponent),
            ("/provisioning/..\\..\\etc", Backslash),
            ("/provisioning\\..\\etc", Backslash),
            ("/provisioning/%5c..%5cetc", Backslash),
            ("/provisioning/%5C", Backslash),
            ("/provisioning/a.cfg%00.xml", ControlByte),
            ("/provisioning/%00", ControlByte),
            ("/provisioning/%0d%0aSet-Cookie:x", ControlByte),
            ("/provisioning/%7f", ControlByte),
            ("//etc/passwd", EmptyComponent),
            ("/provisioning//a.cfg", EmptyComponent),
            ("/provisioning/", EmptyComponent),
            ("/provisioning/%2f", EmptyComponent),
            ("/provisioning/%2", BadPercent),
            ("/provisioning/%", BadPercent),
            ("/provisioning/%zz", BadPercent),
            ("/provisioning/%g0", BadPercent),
            ("/provisioning/%ff", NotUtf8),
            ("/provisioning/%c0%ae%c0%ae", NotUtf8),
            ("", NotOriginForm),
            ("*", NotOriginForm),
            ("provisioning/a.cfg", NotOriginForm),
            ("http://evil/provisioning/a.cfg", NotOriginForm),
            ("?/a", NotOriginForm),
        ];
        for (t, want) in table {
            assert_eq!(parse_target(t.as_bytes()), Err(*want), "{t}");
        }
    }

    #[test]
    fn limits() {
        let deep = "/a".repeat(MAX_COMPONENTS);
        assert_eq!(parse_target(deep.as_bytes()).map(|p| p.len()), Ok(16));
        let deeper = "/a".repeat(MAX_COMPONENTS + 1);
        assert_eq!(parse_target(deeper.as_bytes()), Err(PathError::TooLong));
        let long = format!("/{}", "x".repeat(MAX_COMPONENT_LEN));
        assert!(parse_target(long.as_bytes()).is_ok());
        let longer = format!("/{}", "x".repeat(MAX_COMPONENT_LEN + 1));
        assert_eq!(parse_target(longer.as_bytes()), Err(PathError::TooLong));
    }

    #[test]
    fn no_component_can_escape() {
        // Property: every accepted component is a plain name.
        for t in ["/a/b", "/%41/%2541", "/x%2fy/z"] {
            for c in ok(t) {
                assert!(!c.is_empty() && !c.starts_with('.') && !c.contains(['/', '\\', '\0']));
            }
        }
    }
}
