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
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Path {
    components: Vec<String>,
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

impl Path {
    /// The decoded components, in order.
    pub fn components(&self) -> &[String] {
        &self.components
    }

    /// The last component (the file name), if any.
    pub fn file_name(&self) -> Option<&str> {
        self.components.last().map(String::as_str)
    }

    /// `/a/b` form (decoded), for logs.
    pub fn to_slash_string(&self) -> String {
        if self.components.is_empty() {
            return "/".to_owned();
        }
        let mut s = String::new();
        for c in &self.components {
            s.push('/');
            s.push_str(c);
        }
        s
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_slash_string())
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
    Ok(out)
}

/// Parses a request target (origin-form; the query, if any, is ignored) into a [`Path`].
pub fn parse_target(target: &[u8]) -> Result<Path, PathError> {
    let end = target
        .iter()
        .position(|&b| b == b'?' || b == b'#')
        .unwrap_or(target.len());
    let raw = &target[..end];
    if raw.first() != Some(&b'/') {
        return Err(PathError::NotOriginForm);
    }
    let decoded = percent_decode(raw)?;
    // Byte checks on the whole decoded path first, so the error does not depend on where
    // the bad byte sits.
    if decoded.contains(&b'\\') {
        return Err(PathError::Backslash);
    }
    if decoded.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(PathError::ControlByte);
    }
    let decoded = String::from_utf8(decoded).map_err(|_| PathError::NotUtf8)?;
    if decoded == "/" {
        return Ok(Path::default());
    }
    let mut components = Vec::new();
    for c in decoded[1..].split('/') {
        if c.is_empty() {
            return Err(PathError::EmptyComponent);
        }
        if c.starts_with('.') {
            return Err(PathError::DotComponent);
        }
        if c.len() > MAX_COMPONENT_LEN || components.len() == MAX_COMPONENTS {
            return Err(PathError::TooLong);
        }
        components.push(c.to_owned());
    }
    Ok(Path { components })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(t: &str) -> Vec<String> {
        parse_target(t.as_bytes())
            .unwrap_or_else(|e| panic!("{t}: {e}"))
            .components()
            .to_vec()
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
        assert_eq!(
            parse_target(deep.as_bytes()).map(|p| p.components().len()),
            Ok(16)
        );
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
