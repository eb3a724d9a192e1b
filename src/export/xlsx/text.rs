//! Text as SpreadsheetML wants it: XML escaping without the characters XML 1.0
//! forbids, Excel's string length limit, cell references and worksheet names.

use crate::export::{ExportError, ExportSpec};

/// Excel keeps at most this many characters in a cell.
pub(super) const MAX_CELL_CHARS: usize = 32_767;
/// Excel's limit on a worksheet name, in characters.
const MAX_NAME_CHARS: usize = 31;

/// Whether XML 1.0 allows `c` in a document (surrogates cannot occur in a `str`).
fn xml_allowed(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
}

/// Whether `s` starts with `_xHHHH_`, which Excel reads as an escaped character.
fn starts_with_ooxml_escape(s: &str) -> bool {
    match s.as_bytes().get(..7) {
        Some([b'_', b'x', hex @ .., b'_']) => hex.iter().all(u8::is_ascii_hexdigit),
        _ => false,
    }
}

/// Appends `s` as XML element text: `&`, `<`, `>` escaped, CR as a character
/// reference (a raw CR would be read as LF), characters XML 1.0 forbids removed,
/// a literal `_xHHHH_` protected as `_x005F_xHHHH_`, and at most
/// [`MAX_CELL_CHARS`] characters kept.
pub(super) fn push_text(out: &mut String, s: &str) {
    let mut kept = 0usize;
    for (i, c) in s.char_indices() {
        if !xml_allowed(c) {
            continue;
        }
        if kept == MAX_CELL_CHARS {
            break;
        }
        kept += 1;
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            '_' if starts_with_ooxml_escape(&s[i..]) => out.push_str("_x005F_"),
            c => out.push(c),
        }
    }
}

/// Whether Excel would drop leading or trailing whitespace of `s` without
/// `xml:space="preserve"`.
pub(super) fn needs_preserve(s: &str) -> bool {
    let ws = |c: char| matches!(c, ' ' | '\t' | '\n' | '\r');
    s.starts_with(ws) || s.ends_with(ws)
}

/// Appends an attribute value (double-quoted by the caller), escaped as
/// [`push_text`] does but without a length limit.
pub(super) fn push_attr(out: &mut String, s: &str) {
    for (i, c) in s.char_indices().filter(|&(_, c)| xml_allowed(c)) {
        match c {
            '_' if starts_with_ooxml_escape(&s[i..]) => out.push_str("_x005F_"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// Appends the column letters of the 0-based column `col` (`0` is `A`, `26` is `AA`).
pub(super) fn push_col(out: &mut String, col: usize) {
    // Bijective base 26; three letters reach XFD, Excel's last column.
    let mut letters = [b'A'; 3];
    let mut start = letters.len();
    let mut n = col + 1;
    while n > 0 && start > 0 {
        start -= 1;
        letters[start] = b'A' + ((n - 1) % 26) as u8;
        n = (n - 1) / 26;
    }
    out.extend(letters[start..].iter().map(|&b| char::from(b)));
}

/// Worksheet names for the sheets of `spec`, made acceptable to Excel from their
/// titles: characters Excel forbids (`[]:*?/\`) become `_`, characters XML forbids
/// are removed, apostrophes at either end are dropped, at most 31 characters, not
/// `History` (reserved), and unique ignoring case (a ` (N)` suffix is added). An empty
/// title falls back to the sheet id.
pub(super) fn sheet_names(spec: &ExportSpec) -> Result<Vec<String>, ExportError> {
    let mut names: Vec<String> = Vec::with_capacity(spec.sheets.len());
    for sheet in &spec.sheets {
        let mut base = clean_name(&sheet.title);
        if base.is_empty() {
            base = clean_name(&sheet.id);
        }
        if base.eq_ignore_ascii_case("history") {
            base.push('_');
        }
        let taken = |n: &str| names.iter().any(|o| o.to_lowercase() == n.to_lowercase());
        let mut name = base.clone();
        // With at most MAX_SHEETS names taken, one of MAX_SHEETS + 1 suffixes is free.
        for k in 2..=crate::export::MAX_SHEETS + 2 {
            if !taken(&name) {
                break;
            }
            let suffix = format!(" ({k})");
            let keep = MAX_NAME_CHARS - suffix.len();
            name = base.chars().take(keep).collect::<String>() + &suffix;
        }
        if taken(&name) {
            return Err(ExportError::Xlsx(format!(
                "no unique worksheet name for sheet {:?}",
                sheet.id
            )));
        }
        names.push(name);
    }
    Ok(names)
}

fn clean_name(title: &str) -> String {
    let name: String = title
        .chars()
        .filter(|&c| xml_allowed(c) && !c.is_control())
        .map(|c| if "[]:*?/\\".contains(c) { '_' } else { c })
        .collect();
    name.trim_matches('\'')
        .chars()
        .take(MAX_NAME_CHARS)
        .collect::<String>()
        .trim_end_matches('\'')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::{Column, ColumnType, Sheet};

    fn text(s: &str) -> String {
        let mut out = String::new();
        push_text(&mut out, s);
        out
    }

    #[test]
    fn escapes_and_removes_forbidden_characters() {
        assert_eq!(text("a<&>\"'b"), "a&lt;&amp;&gt;\"'b");
        assert_eq!(
            text("\u{0}\u{1}x\u{7}\u{b}\u{c}\u{1b}y\u{FFFE}\u{FFFF}z"),
            "xyz"
        );
        assert_eq!(text("t\tl\nc\r"), "t\tl\nc&#13;");
        assert_eq!(text("😀\u{FFFD}\u{10FFFF}"), "😀\u{FFFD}\u{10FFFF}");
        assert_eq!(text("_x0041_ _x00G1_ _x12"), "_x005F_x0041_ _x00G1_ _x12");
    }

    #[test]
    fn escapes_attributes() {
        let mut out = String::new();
        push_attr(&mut out, "a\"<&>\t\n\r\u{1}_x0041_");
        assert_eq!(out, "a&quot;&lt;&amp;&gt;&#9;&#10;&#13;_x005F_x0041_");
    }

    #[test]
    fn truncates_on_a_character_boundary() {
        let long = "é".repeat(MAX_CELL_CHARS + 5);
        assert_eq!(text(&long).chars().count(), MAX_CELL_CHARS);
        // Removed characters do not count.
        let s = "\u{1}".repeat(10) + &"a".repeat(MAX_CELL_CHARS);
        assert_eq!(text(&s).len(), MAX_CELL_CHARS);
    }

    #[test]
    fn column_letters() {
        let col = |c| {
            let mut s = String::new();
            push_col(&mut s, c);
            s
        };
        assert_eq!(col(0), "A");
        assert_eq!(col(25), "Z");
        assert_eq!(col(26), "AA");
        assert_eq!(col(255), "IV");
        assert_eq!(col(16_383), "XFD");
    }

    #[test]
    fn worksheet_names_follow_excel_rules() {
        let sheet = |id: &str, title: &str| Sheet {
            id: id.into(),
            title: title.into(),
            columns: vec![Column::new("a", "A", ColumnType::Text)],
            parent: None,
        };
        let spec = ExportSpec {
            sheets: vec![
                sheet("a", "Calls [2026/03]: *?\\"),
                sheet("b", "calls [2026/03]: *?\\"),
                sheet("c", "'quoted'"),
                sheet("d", ""),
                sheet("e", "History"),
                sheet("f", &"x".repeat(40)),
                sheet("g", &"X".repeat(40)),
                sheet("h", "tab\there\u{1}"),
            ],
        };
        let names = sheet_names(&spec).unwrap();
        assert_eq!(names[0], "Calls _2026_03__ ___");
        assert_eq!(names[1], "calls _2026_03__ ___ (2)");
        assert_eq!(names[2], "quoted");
        assert_eq!(names[3], "d");
        assert_eq!(names[4], "History_");
        assert_eq!(names[5], "x".repeat(31));
        assert_eq!(names[6], "X".repeat(27) + " (2)");
        assert_eq!(names[7], "tabhere");
        assert!(names.iter().all(|n| n.chars().count() <= MAX_NAME_CHARS));
    }
}
