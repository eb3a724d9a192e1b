//! The XML parts of the package other than the rows.
//!
//! Cell styles (indexes into `cellXfs` of [`STYLES`]): 0 default, [`BOLD`] the
//! header, [`DATE`] timestamps, [`DURATION`] durations.

use super::text::{push_attr, push_col, push_text};
use crate::export::{ColumnType, Sheet};
use std::fmt::Write as _;

pub(super) const BOLD: u8 = 1;
pub(super) const DATE: u8 = 2;
pub(super) const DURATION: u8 = 3;

const DECL: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n";
const MAIN_NS: &str = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
const REL_NS: &str = "http://schemas.openxmlformats.org/officeDocument/2006/relationships";
const PKG_REL_NS: &str = "http://schemas.openxmlformats.org/package/2006/relationships";

pub(super) const STYLES: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n",
    "<styleSheet xmlns=\"http://schemas.openxmlformats.org/spreadsheetml/2006/main\">",
    "<numFmts count=\"2\">",
    "<numFmt numFmtId=\"164\" formatCode=\"yyyy-mm-dd hh:mm:ss\"/>",
    "<numFmt numFmtId=\"165\" formatCode=\"[h]:mm:ss\"/>",
    "</numFmts>",
    "<fonts count=\"2\">",
    "<font><sz val=\"11\"/><name val=\"Calibri\"/><family val=\"2\"/></font>",
    "<font><b/><sz val=\"11\"/><name val=\"Calibri\"/><family val=\"2\"/></font>",
    "</fonts>",
    "<fills count=\"2\">",
    "<fill><patternFill patternType=\"none\"/></fill>",
    "<fill><patternFill patternType=\"gray125\"/></fill>",
    "</fills>",
    "<borders count=\"1\"><border><left/><right/><top/><bottom/><diagonal/></border></borders>",
    "<cellStyleXfs count=\"1\"><xf numFmtId=\"0\" fontId=\"0\" fillId=\"0\" borderId=\"0\"/></cellStyleXfs>",
    "<cellXfs count=\"4\">",
    "<xf numFmtId=\"0\" fontId=\"0\" fillId=\"0\" borderId=\"0\" xfId=\"0\"/>",
    "<xf numFmtId=\"0\" fontId=\"1\" fillId=\"0\" borderId=\"0\" xfId=\"0\" applyFont=\"1\"/>",
    "<xf numFmtId=\"164\" fontId=\"0\" fillId=\"0\" borderId=\"0\" xfId=\"0\" applyNumberFormat=\"1\"/>",
    "<xf numFmtId=\"165\" fontId=\"0\" fillId=\"0\" borderId=\"0\" xfId=\"0\" applyNumberFormat=\"1\"/>",
    "</cellXfs>",
    "<cellStyles count=\"1\"><cellStyle name=\"Normal\" xfId=\"0\" builtinId=\"0\"/></cellStyles>",
    "<dxfs count=\"0\"/>",
    "<tableStyles count=\"0\" defaultTableStyle=\"TableStyleMedium9\" defaultPivotStyle=\"PivotStyleLight16\"/>",
    "</styleSheet>\n",
);

pub(super) const ROOT_RELS: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n",
    "<Relationships xmlns=\"http://schemas.openxmlformats.org/package/2006/relationships\">",
    "<Relationship Id=\"rId1\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument\" Target=\"xl/workbook.xml\"/>",
    "<Relationship Id=\"rId2\" Type=\"http://schemas.openxmlformats.org/package/2006/relationships/metadata/core-properties\" Target=\"docProps/core.xml\"/>",
    "<Relationship Id=\"rId3\" Type=\"http://schemas.openxmlformats.org/officeDocument/2006/relationships/extended-properties\" Target=\"docProps/app.xml\"/>",
    "</Relationships>\n",
);

pub(super) const APP: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n",
    "<Properties xmlns=\"http://schemas.openxmlformats.org/officeDocument/2006/extended-properties\" ",
    "xmlns:vt=\"http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes\">",
    "<Application>kpbxd</Application><DocSecurity>0</DocSecurity><ScaleCrop>false</ScaleCrop>",
    "</Properties>\n",
);

pub(super) const CORE: &str = concat!(
    "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n",
    "<cp:coreProperties xmlns:cp=\"http://schemas.openxmlformats.org/package/2006/metadata/core-properties\" ",
    "xmlns:dc=\"http://purl.org/dc/elements/1.1/\" xmlns:dcterms=\"http://purl.org/dc/terms/\" ",
    "xmlns:dcmitype=\"http://purl.org/dc/dcmitype/\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">",
    "<dc:creator>kpbxd</dc:creator>",
    "</cp:coreProperties>\n",
);

/// `[Content_Types].xml` for `sheets` worksheets.
pub(super) fn content_types(sheets: usize) -> String {
    let mut out = String::from(DECL);
    out.push_str(concat!(
        "<Types xmlns=\"http://schemas.openxmlformats.org/package/2006/content-types\">",
        "<Default Extension=\"rels\" ContentType=\"application/vnd.openxmlformats-package.relationships+xml\"/>",
        "<Default Extension=\"xml\" ContentType=\"application/xml\"/>",
        "<Override PartName=\"/xl/workbook.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml\"/>",
        "<Override PartName=\"/xl/styles.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml\"/>",
        "<Override PartName=\"/docProps/core.xml\" ContentType=\"application/vnd.openxmlformats-package.core-properties+xml\"/>",
        "<Override PartName=\"/docProps/app.xml\" ContentType=\"application/vnd.openxmlformats-officedocument.extended-properties+xml\"/>",
    ));
    for n in 1..=sheets {
        let _ = write!(
            out,
            "<Override PartName=\"/xl/worksheets/sheet{n}.xml\" \
             ContentType=\"application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml\"/>"
        );
    }
    out.push_str("</Types>\n");
    out
}

/// `xl/_rels/workbook.xml.rels`: worksheet `n` is `rId{n}`, the styles come last.
pub(super) fn workbook_rels(sheets: usize) -> String {
    let mut out = String::from(DECL);
    let _ = write!(out, "<Relationships xmlns=\"{PKG_REL_NS}\">");
    for n in 1..=sheets {
        let _ = write!(
            out,
            "<Relationship Id=\"rId{n}\" Type=\"{REL_NS}/worksheet\" Target=\"worksheets/sheet{n}.xml\"/>"
        );
    }
    let _ = write!(
        out,
        "<Relationship Id=\"rId{}\" Type=\"{REL_NS}/styles\" Target=\"styles.xml\"/>",
        sheets + 1
    );
    out.push_str("</Relationships>\n");
    out
}

/// `xl/workbook.xml`: the sheets, and the hidden `_xlnm._FilterDatabase` name that
/// Excel keeps for each sheet's autofilter (`rows[i]` data rows in sheet `i`).
pub(super) fn workbook(names: &[String], sheets: &[Sheet], rows: &[u32]) -> String {
    let mut out = String::from(DECL);
    let _ = write!(out, "<workbook xmlns=\"{MAIN_NS}\" xmlns:r=\"{REL_NS}\">");
    out.push_str("<workbookPr/><bookViews><workbookView xWindow=\"0\" yWindow=\"0\" windowWidth=\"16384\" windowHeight=\"8192\"/></bookViews><sheets>");
    for (i, name) in names.iter().enumerate() {
        out.push_str("<sheet name=\"");
        push_attr(&mut out, name);
        let _ = write!(out, "\" sheetId=\"{n}\" r:id=\"rId{n}\"/>", n = i + 1);
    }
    out.push_str("</sheets><definedNames>");
    for (i, ((name, sheet), &n)) in names.iter().zip(sheets).zip(rows).enumerate() {
        let _ = write!(
            out,
            "<definedName name=\"_xlnm._FilterDatabase\" localSheetId=\"{i}\" hidden=\"1\">'"
        );
        push_text(&mut out, &name.replace('\'', "''"));
        out.push_str("'!$A$1:$");
        push_col(&mut out, sheet.columns.len().saturating_sub(1));
        let _ = write!(out, "${}</definedName>", u64::from(n) + 1);
    }
    out.push_str("</definedNames><calcPr calcId=\"191029\"/></workbook>\n");
    out
}

/// Width of a column in characters, from its type and header.
fn width(kind: ColumnType, header: &str) -> usize {
    let by_type = match kind {
        ColumnType::Timestamp => 20,
        ColumnType::Duration => 10,
        ColumnType::Integer => 12,
        ColumnType::Phone => 18,
        ColumnType::Text => 24,
    };
    // Bold header text is a little wider than its character count.
    let by_header = header.chars().count() * 11 / 10 + 2;
    by_type.max(by_header).min(60)
}

/// A worksheet up to and including its header row; `first` selects its tab.
pub(super) fn sheet_head(out: &mut String, sheet: &Sheet, first: bool) {
    out.push_str(DECL);
    let _ = write!(out, "<worksheet xmlns=\"{MAIN_NS}\" xmlns:r=\"{REL_NS}\">");
    let selected = if first { " tabSelected=\"1\"" } else { "" };
    let _ = write!(
        out,
        "<sheetViews><sheetView{selected} workbookViewId=\"0\">\
         <pane ySplit=\"1\" topLeftCell=\"A2\" activePane=\"bottomLeft\" state=\"frozen\"/>\
         <selection pane=\"bottomLeft\" activeCell=\"A2\" sqref=\"A2\"/>\
         </sheetView></sheetViews><sheetFormatPr defaultRowHeight=\"15\"/><cols>"
    );
    for (i, col) in sheet.columns.iter().enumerate() {
        let _ = write!(
            out,
            "<col min=\"{n}\" max=\"{n}\" width=\"{}\" customWidth=\"1\"/>",
            width(col.kind, &col.header),
            n = i + 1
        );
    }
    out.push_str("</cols><sheetData><row r=\"1\">");
    for (i, col) in sheet.columns.iter().enumerate() {
        out.push_str("<c r=\"");
        push_col(out, i);
        let _ = write!(out, "1\" s=\"{BOLD}\" t=\"inlineStr\"><is><t");
        if super::text::needs_preserve(&col.header) {
            out.push_str(" xml:space=\"preserve\"");
        }
        out.push('>');
        push_text(out, &col.header);
        out.push_str("</t></is></c>");
    }
    out.push_str("</row>");
}

/// The rest of a worksheet after its `rows` data rows.
pub(super) fn sheet_tail(out: &mut String, sheet: &Sheet, rows: u32) {
    out.push_str("</sheetData><autoFilter ref=\"A1:");
    push_col(out, sheet.columns.len().saturating_sub(1));
    let _ = write!(
        out,
        "{}\"/><pageMargins left=\"0.7\" right=\"0.7\" top=\"0.75\" bottom=\"0.75\" \
         header=\"0.3\" footer=\"0.3\"/></worksheet>",
        u64::from(rows) + 1
    );
    out.push('\n');
}
