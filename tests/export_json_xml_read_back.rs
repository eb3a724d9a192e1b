#![allow(clippy::unwrap_used)] // Test helpers may panic: that is how they fail.

mod exportkit;
use exportkit::*;
use kpbxd::export::json::JsonWriter;
use kpbxd::export::xml::XmlWriter;
use kpbxd::export::{Cell, ExportError, Options, RowSink};
use serde_json::Value;

#[test]
fn json_plain_read_by_serde_json() {
    let mut w = JsonWriter::new(Vec::new(), plain_spec(), rome()).unwrap();
    push_plain(&mut w);
    let v: Value = serde_json::from_slice(&w.finish().unwrap()).unwrap();
    let rows = v.as_array().unwrap();
    assert_eq!(rows.len(), NASTY.len() + 1);
    for (i, name) in NASTY.iter().enumerate() {
        let r = &rows[i];
        assert_eq!(
            r["caller_name"], *name,
            "exact round trip, no neutralisation in JSON"
        );
        assert_eq!(
            r["start_datetime"],
            format!("2026-03-29T09:{i:02}:00+02:00")
        );
        assert_eq!(r["duration"], 3725 + i as i64);
        assert_eq!(r["billsec"], -(i as i64));
        assert_eq!(r["caller"], "+390501234567");
        let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 6);
    }
    assert_eq!(rows[NASTY.len()]["start_datetime"], Value::Null);
}

#[test]
fn json_empty_export_is_valid() {
    let w = JsonWriter::new(Vec::new(), plain_spec(), rome()).unwrap();
    let v: Value = serde_json::from_slice(&w.finish().unwrap()).unwrap();
    assert_eq!(v, serde_json::json!([]));
    let w = JsonWriter::new(Vec::new(), detailed_spec(), rome()).unwrap();
    let v: Value = serde_json::from_slice(&w.finish().unwrap()).unwrap();
    assert_eq!(v, serde_json::json!({"calls": [], "operator_events": []}));
}

#[test]
fn json_detailed_nesting() {
    let opts = Options {
        mask_phone_numbers: true,
        ..rome()
    };
    let mut w = JsonWriter::new(Vec::new(), detailed_spec(), opts).unwrap();
    push_detailed(&mut w);
    let v: Value = serde_json::from_slice(&w.finish().unwrap()).unwrap();
    let calls = v["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["caller"], "+390501234xxx", "masked");
    assert_eq!(calls[0]["legs"].as_array().unwrap().len(), 2);
    assert_eq!(calls[0]["legs"][1]["called"], "xxx");
    assert_eq!(calls[0]["attempts"][0]["agent"], "=1+1");
    assert_eq!(
        calls[1]["legs"],
        serde_json::json!([]),
        "child arrays always present"
    );
    assert_eq!(calls[1]["attempts"], serde_json::json!([]));
    let ev = v["operator_events"].as_array().unwrap();
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[1]["event"], "UNPAUSE");
}

#[test]
fn nested_formats_refuse_out_of_order_rows() {
    let mut w = JsonWriter::new(Vec::new(), detailed_spec(), rome()).unwrap();
    // child before any parent
    assert!(matches!(
        w.push_row(1, &[Cell::Empty; 3]),
        Err(ExportError::Order(_))
    ));
    w.push_row(0, &[Cell::Empty; 6]).unwrap();
    w.push_row(2, &[Cell::Empty; 2]).unwrap();
    // legs after attempts for the same parent
    assert!(matches!(
        w.push_row(1, &[Cell::Empty; 3]),
        Err(ExportError::Order(_))
    ));
    w.push_row(3, &[Cell::Empty; 3]).unwrap();
    // back to calls after operator_events
    assert!(matches!(
        w.push_row(0, &[Cell::Empty; 6]),
        Err(ExportError::Order(_))
    ));
    let v: Value = serde_json::from_slice(&w.finish().unwrap()).unwrap();
    assert_eq!(v["calls"][0]["legs"], serde_json::json!([]));
    assert_eq!(v["calls"][0]["attempts"].as_array().unwrap().len(), 1);

    let mut x = XmlWriter::new(Vec::new(), detailed_spec(), rome()).unwrap();
    assert!(matches!(
        x.push_row(2, &[Cell::Empty; 2]),
        Err(ExportError::Order(_))
    ));
}

const MINIDOM: &str = r#"
import sys, json
from xml.dom import minidom
doc = minidom.parse(sys.argv[1])
def el(n): return [c for c in n.childNodes if c.nodeType == c.ELEMENT_NODE]
def text(n): return "".join(c.data for c in n.childNodes if c.nodeType == c.TEXT_NODE)
def conv(n):
    kids = el(n)
    if n.tagName == "row":
        d = {}
        for k in kids:
            d[k.tagName] = [conv(r) for r in el(k)] if el(k) and el(k)[0].tagName == "row" else text(k)
        return d
    return {k.tagName: [conv(r) for r in el(k)] for k in kids}
print(json.dumps(conv(doc.documentElement)))
"#;

fn minidom(bytes: &[u8], name: &str) -> Value {
    let p = tmp(name);
    std::fs::write(&p, bytes).unwrap();
    serde_json::from_str(&python(MINIDOM, p.to_str().unwrap())).unwrap()
}

#[test]
fn xml_plain_read_by_minidom() {
    let mut w = XmlWriter::new(Vec::new(), plain_spec(), rome()).unwrap();
    push_plain(&mut w);
    let bytes = w.finish().unwrap();
    let v = minidom(&bytes, "plain.xml");
    let rows = v["calls"].as_array().unwrap();
    assert_eq!(rows.len(), NASTY.len() + 1);
    for (i, name) in NASTY.iter().enumerate() {
        // Forbidden control chars are removed; everything else survives, CR included.
        let expect: String = name
            .chars()
            .filter(|&c| c == '\t' || c == '\n' || c == '\r' || (c >= ' ' && c != '\u{FFFE}'))
            .collect();
        assert_eq!(rows[i]["caller_name"], expect.as_str(), "row {i}");
        assert_eq!(
            rows[i]["start_datetime"],
            format!("2026-03-29T09:{i:02}:00+02:00")
        );
        assert_eq!(rows[i]["duration"], (3725 + i).to_string());
    }
    assert_eq!(rows[2]["caller_name"], "ctlxy");
    assert_eq!(rows[NASTY.len()]["start_datetime"], "");
}

#[test]
fn xml_detailed_nesting() {
    let mut w = XmlWriter::new(Vec::new(), detailed_spec(), rome()).unwrap();
    push_detailed(&mut w);
    let v = minidom(&w.finish().unwrap(), "detailed.xml");
    let calls = v["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["caller_name"], "Mario <&\"> Rossi");
    assert_eq!(calls[0]["legs"].as_array().unwrap().len(), 2);
    assert_eq!(calls[0]["legs"][0]["detail_type"], "ivr");
    assert_eq!(calls[0]["attempts"][0]["ring_ms"], "3000");
    assert_eq!(calls[1]["legs"], "", "empty child container present");
    assert_eq!(v["operator_events"].as_array().unwrap().len(), 2);
}
