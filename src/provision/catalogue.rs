//! The built-in catalogue: brands, models and templates that ship with the
//! box. They are global and read-only; copy a template to change it.
//!
//! File names are those the phones really request (see
//! `shared/notes/provisioning.md` §3.3): Snom `<MAC>.xml` and
//! `snom<model>-<MAC>.htm` (upper case), Yealink `<mac>.cfg` plus the
//! per-hardware `y0000000000XX.cfg`, Grandstream `cfg<mac>.xml`, Fanvil
//! `<mac>.cfg`, Gigaset `<MAC>.xml`.

use crate::model::prov::{FileFormat, FileRule};
use crate::model::{DeviceModel, Template};

pub struct Catalogue {
    pub brands: Vec<&'static str>,
    pub models: Vec<DeviceModel>,
    pub templates: Vec<Template>,
}

const SNOM: &str = include_str!("catalogue/snom-d7xx.xml.tpl");
const YEALINK: &str = include_str!("catalogue/yealink-t4x.cfg.tpl");
const YEALINK_COMMON: &str = include_str!("catalogue/yealink-common.cfg.tpl");
const GRANDSTREAM: &str = include_str!("catalogue/grandstream-gxp.xml.tpl");
const FANVIL: &str = include_str!("catalogue/fanvil-x.cfg.tpl");
const GIGASET: &str = include_str!("catalogue/gigaset.xml.tpl");

fn model(
    name: &str,
    brand: &str,
    format: FileFormat,
    rules: &[&str],
    model_files: &[(&str, &str)],
) -> DeviceModel {
    DeviceModel {
        name: name.to_string(),
        brand: brand.to_string(),
        format,
        rules: rules
            .iter()
            .filter_map(|r| FileRule::parse(r).ok())
            .collect(),
        model_files: model_files
            .iter()
            .map(|(f, t)| (f.to_string(), t.to_string()))
            .collect(),
    }
}

fn template(name: &str, model: &str, content: &str) -> Template {
    Template {
        tenant: None,
        name: name.to_string(),
        model: model.to_string(),
        content: content.to_string(),
    }
}

/// The catalogue, built once on first use.
pub fn catalogue() -> &'static Catalogue {
    static CATALOGUE: std::sync::OnceLock<Catalogue> = std::sync::OnceLock::new();
    CATALOGUE.get_or_init(build)
}

fn build() -> Catalogue {
    use FileFormat::{Plain, Xml};
    let yealink_t4 = [
        ("y000000000028.cfg", "yealink-common"),
        ("y000000000029.cfg", "yealink-common"),
        ("y000000000035.cfg", "yealink-common"),
        ("y000000000036.cfg", "yealink-common"),
        ("y000000000066.cfg", "yealink-common"),
    ];
    let yealink_t5 = [
        ("y000000000058.cfg", "yealink-common"),
        ("y000000000070.cfg", "yealink-common"),
    ];
    Catalogue {
        brands: vec!["Snom", "Yealink", "Grandstream", "Fanvil", "Gigaset"],
        models: vec![
            model(
                "Snom-D715",
                "Snom",
                Xml,
                &["{AABBCCDDEEFF}.xml", "snomD715-{AABBCCDDEEFF}.htm"],
                &[],
            ),
            model(
                "Snom-D735",
                "Snom",
                Xml,
                &["{AABBCCDDEEFF}.xml", "snomD735-{AABBCCDDEEFF}.htm"],
                &[],
            ),
            model(
                "Snom-D785",
                "Snom",
                Xml,
                &["{AABBCCDDEEFF}.xml", "snomD785-{AABBCCDDEEFF}.htm"],
                &[],
            ),
            model(
                "Yealink-T4x",
                "Yealink",
                Plain,
                &["{aabbccddeeff}.cfg"],
                &yealink_t4,
            ),
            model(
                "Yealink-T5x",
                "Yealink",
                Plain,
                &["{aabbccddeeff}.cfg"],
                &yealink_t5,
            ),
            model(
                "Grandstream-GXP",
                "Grandstream",
                Xml,
                &["cfg{aabbccddeeff}.xml"],
                &[],
            ),
            model(
                "Grandstream-GRP",
                "Grandstream",
                Xml,
                &["cfg{aabbccddeeff}.xml"],
                &[],
            ),
            model("Fanvil-X", "Fanvil", Plain, &["{aabbccddeeff}.cfg"], &[]),
            model(
                "Gigaset-IP-PRO",
                "Gigaset",
                Xml,
                &["{AABBCCDDEEFF}.xml"],
                &[],
            ),
        ],
        templates: vec![
            template("snom-d715", "Snom-D715", SNOM),
            template("snom-d735", "Snom-D735", SNOM),
            template("snom-d785", "Snom-D785", SNOM),
            template("yealink-t4x", "Yealink-T4x", YEALINK),
            template("yealink-t5x", "Yealink-T5x", YEALINK),
            template("yealink-common", "Yealink-T4x", YEALINK_COMMON),
            template("grandstream-gxp", "Grandstream-GXP", GRANDSTREAM),
            template("grandstream-grp", "Grandstream-GRP", GRANDSTREAM),
            template("fanvil-x", "Fanvil-X", FANVIL),
            template("gigaset-ip-pro", "Gigaset-IP-PRO", GIGASET),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_is_well_formed() {
        let c = catalogue();
        for m in &c.models {
            assert!(c.brands.contains(&m.brand.as_str()), "{}", m.name);
            assert!(!m.rules.is_empty(), "{}: a rule failed to parse", m.name);
            for (_, t) in &m.model_files {
                assert!(c.templates.iter().any(|x| &x.name == t), "{}: {t}", m.name);
            }
        }
        for t in &c.templates {
            assert!(c.models.iter().any(|m| m.name == t.model), "{}", t.name);
            let known = |n: &str| super::super::is_builtin(n);
            assert_eq!(
                super::super::template::check(&t.content, &known),
                Ok(()),
                "{}",
                t.name
            );
        }
    }
}
