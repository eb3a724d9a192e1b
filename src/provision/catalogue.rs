//! The built-in catalogue: brands, models and templates that ship with the
//! box. They are global and read-only; copy a template to change it.
//!
//! Each model lists the file names its phones request, in the order they
//! request them ([`Info::boot`]), each template the firmware generation it
//! writes for, and [`super::dictionary`] the keys that generation reads, with
//! the public source of each. The README table is this module in prose.

use crate::model::prov::{FileFormat, FileRule};
use crate::model::{Device, DeviceModel, Template};

pub struct Catalogue {
    pub brands: Vec<&'static str>,
    pub models: Vec<DeviceModel>,
    pub templates: Vec<Template>,
    pub info: Vec<Info>,
}

/// One step of a phone's boot sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// The device file of the model's file rule at this index.
    Rule(usize),
    /// Every model-wide file (each phone asks for the one of its hardware).
    ModelFiles,
}

/// What the catalogue says about a built-in model beyond [`DeviceModel`].
#[derive(Clone, Debug)]
pub struct Info {
    pub model: &'static str,
    /// The phones it covers.
    pub covers: &'static str,
    /// The firmware generation its template is written for.
    pub firmware: &'static str,
    /// The files a phone asks for, in order, before and including its own.
    pub boot: &'static [Step],
    /// The device template.
    pub template: &'static str,
    /// File rules rendered from a built-in template of their own rather than
    /// the device's (by rule index): a Yealink `.boot` file, a Poly master
    /// file. A copy of the device template then still makes a working set.
    pub rule_templates: &'static [(usize, &'static str)],
}

impl Info {
    /// The template rule `index` is rendered from, if not the device's.
    pub fn rule_template(&self, index: usize) -> Option<&'static str> {
        self.rule_templates
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, t)| *t)
    }

    /// The boot sequence for one device, as file names.
    pub fn boot_files(&self, model: &DeviceModel, mac: crate::model::Mac) -> Vec<String> {
        let mut out = Vec::new();
        for step in self.boot {
            match step {
                Step::Rule(i) => out.extend(model.rules.get(*i).map(|r| r.file_name(mac))),
                Step::ModelFiles => out.extend(model.model_files.iter().map(|(f, _)| f.clone())),
            }
        }
        out
    }
}

const SNOM: &str = include_str!("catalogue/snom.xml.tpl");
const SNOM_MODEL: &str = include_str!("catalogue/snom-model.xml.tpl");
const YEALINK: &str = include_str!("catalogue/yealink.cfg.tpl");
const YEALINK_BOOT: &str = include_str!("catalogue/yealink-boot.cfg.tpl");
const YEALINK_COMMON: &str = include_str!("catalogue/yealink-common.cfg.tpl");
const GRANDSTREAM: &str = include_str!("catalogue/grandstream.xml.tpl");
const FANVIL: &str = include_str!("catalogue/fanvil.cfg.tpl");
const FANVIL_COMMON: &str = include_str!("catalogue/fanvil-common.cfg.tpl");
const GIGASET: &str = include_str!("catalogue/gigaset.xml.tpl");
const POLY: &str = include_str!("catalogue/poly.cfg.tpl");
const POLY_MASTER: &str = include_str!("catalogue/poly-master.cfg.tpl");
const CISCO: &str = include_str!("catalogue/cisco-mpp.xml.tpl");
const CISCO_PROFILE: &str = include_str!("catalogue/cisco-mpp-profile.xml.tpl");

/// The per-hardware common files of current Yealink firmware: the first
/// field of the firmware version names the file (a T46U on 108.86.0.90 asks
/// for `y000000000108.cfg`). Versions from wazo-provd-plugins
/// `wazo_yealink/v84..v87/entry.py` (`MODEL_INFO`); the ids that only
/// FusionPBX's per-model folders show (`resources/templates/provision/
/// yealink/*/y0000000000XX.cfg`, older firmware of the same hardware) are
/// served too, since a phone not yet upgraded asks for those.
const YEALINK_T3X: &[&str] = &["123", "124", "171", "172"];
const YEALINK_T4X: &[&str] = &["65", "66", "67", "68", "107", "108", "109", "116", "174"];
const YEALINK_T5X: &[&str] = &["56", "58", "70", "74", "95", "96", "97", "150"];
const YEALINK_W: &[&str] = &["77", "103", "130", "146", "175"];

/// Fanvil X (U) common configuration files, by hardware (wazo-provd-plugins
/// `wazo_fanvil/serie_x/entry.py`, `COMMON_FILES`, the ones for the models
/// covered here).
const FANVIL_COMMON_FILES: &[&str] = &["f0X3sghw1.100.cfg", "F0V00X200000.cfg", "F0V5UV200000.cfg"];

/// Cisco multiplatform models: a factory phone asks for `/$PSN.xml`, e.g.
/// `7841-3PCC.xml` (wazo-provd-plugins `wazo_cisco_sip/v11_3_1/entry.py`,
/// `_COMMON_FILENAMES`; FusionPBX `cisco/88xx`).
const CISCO_MODELS: &[&str] = &[
    "6821", "6841", "6851", "6861", "6871", "7811", "7821", "7832", "7841", "7861", "8811", "8832",
    "8841", "8845", "8851", "8861", "8865",
];

const SNOM_D7XX: &[&str] = &["D713", "D715", "D717", "D735", "D745", "D765", "D785"];
const SNOM_D8XX: &[&str] = &["D812", "D815", "D862", "D865"];

fn model(
    name: &str,
    brand: &str,
    format: FileFormat,
    rules: &[&str],
    model_files: Vec<(String, String)>,
) -> DeviceModel {
    DeviceModel {
        name: name.to_string(),
        brand: brand.to_string(),
        format,
        rules: rules
            .iter()
            .filter_map(|r| FileRule::parse(r).ok())
            .collect(),
        model_files,
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

/// The entry of a built-in model.
pub fn info(model: &str) -> Option<&'static Info> {
    catalogue().info.iter().find(|i| i.model == model)
}

/// A built-in template, unchanged (by name, outside any tenant).
fn builtin(t: &Template) -> Option<&'static Template> {
    catalogue()
        .templates
        .iter()
        .find(|b| t.tenant.is_none() && b.name == t.name && b.content == t.content)
}

/// What a built-in template cannot write for this device, as warnings: the
/// Gigaset N670/N870 parameter names of a static address are in no public
/// reference read, so a Gigaset device with `dhcp=no` gets its file without
/// them, and a warning.
pub fn limits(t: &Template, d: &Device) -> Vec<String> {
    match builtin(t) {
        Some(b) if b.content == GIGASET && !d.dhcp => vec![format!(
            "static network ({} / {}) is not written: the parameter names of a static address \
             on the Gigaset N670/N870 are in no public reference; set it on the base's web \
             interface",
            d.ip.map(|a| a.to_string()).unwrap_or_default(),
            d.netmask.map(|a| a.to_string()).unwrap_or_default()
        )],
        _ => Vec::new(),
    }
}

fn build() -> Catalogue {
    use FileFormat::{Plain, Xml};
    use Step::{ModelFiles, Rule};
    let mut models = Vec::new();
    let mut templates = Vec::new();
    let mut info = Vec::new();

    for (series, list) in [("D7xx", SNOM_D7XX), ("D8xx", SNOM_D8XX)] {
        for m in list {
            let name = format!("Snom-{m}");
            let tpl = format!("snom-{}", m.to_ascii_lowercase());
            models.push(model(
                &name,
                "Snom",
                Xml,
                &[
                    "{AABBCCDDEEFF}.xml",
                    &format!("snom{m}-{{AABBCCDDEEFF}}.htm"),
                ],
                vec![(format!("snom{m}.htm"), "snom-model".to_string())],
            ));
            templates.push(template(&tpl, &name, SNOM));
            info.push(Info {
                model: leak(name),
                covers: leak(format!("Snom {m} ({series})")),
                firmware: "10.1 and later",
                boot: &[ModelFiles, Rule(1), Rule(0)],
                template: leak(tpl),
                rule_templates: &[],
            });
        }
    }
    templates.push(template("snom-model", "Snom-D785", SNOM_MODEL));

    let common = |ids: &[&str]| {
        std::iter::once("y000000000000.cfg".to_string())
            .chain(ids.iter().map(|id| format!("y{id:0>12}.cfg")))
            .map(|f| (f, "yealink-common".to_string()))
            .collect::<Vec<_>>()
    };
    for (name, tpl, ids, covers) in [
        (
            "Yealink-T3x",
            "yealink-t3x",
            YEALINK_T3X,
            "T30, T30P, T31, T31P, T31G, T31W, T33P, T33G, T34W",
        ),
        (
            "Yealink-T4x",
            "yealink-t4x",
            YEALINK_T4X,
            "T41S, T42S, T46S, T48S (T4xS); T41U, T42U, T43U, T44U, T44W, T46U, T48U (T4xU)",
        ),
        (
            "Yealink-T5x",
            "yealink-t5x",
            YEALINK_T5X,
            "T52S, T53, T53W, T54S, T54W, T56A, T57W, T58, T58W",
        ),
        (
            "Yealink-W",
            "yealink-w",
            YEALINK_W,
            "W60B, W70B, W75B, W80B, W90B DECT bases",
        ),
    ] {
        models.push(model(
            name,
            "Yealink",
            Plain,
            &["{aabbccddeeff}.boot", "{aabbccddeeff}.cfg"],
            common(ids),
        ));
        templates.push(template(tpl, name, YEALINK));
        info.push(Info {
            model: name,
            covers,
            firmware: "V84 and later",
            boot: &[Rule(0), ModelFiles, Rule(1)],
            template: tpl,
            rule_templates: &[(0, "yealink-boot")],
        });
    }
    templates.push(template("yealink-common", "Yealink-T4x", YEALINK_COMMON));
    templates.push(template("yealink-boot", "Yealink-T4x", YEALINK_BOOT));

    for (name, tpl, covers) in [
        ("Grandstream-GXP", "grandstream-gxp", "GXP16xx, GXP21xx"),
        (
            "Grandstream-GRP",
            "grandstream-grp",
            "GRP2612, GRP2613, GRP2614, GRP2615, GRP2616",
        ),
    ] {
        models.push(model(
            name,
            "Grandstream",
            Xml,
            &["cfg{aabbccddeeff}.xml"],
            Vec::new(),
        ));
        templates.push(template(tpl, name, GRANDSTREAM));
        info.push(Info {
            model: name,
            covers,
            firmware: "1.0.x (P-value XML)",
            boot: &[Rule(0)],
            template: tpl,
            rule_templates: &[],
        });
    }

    models.push(model(
        "Fanvil-X",
        "Fanvil",
        Plain,
        &["{aabbccddeeff}.cfg"],
        FANVIL_COMMON_FILES
            .iter()
            .map(|f| (f.to_string(), "fanvil-common".to_string()))
            .collect(),
    ));
    templates.push(template("fanvil-x", "Fanvil-X", FANVIL));
    templates.push(template("fanvil-common", "Fanvil-X", FANVIL_COMMON));
    info.push(Info {
        model: "Fanvil-X",
        covers: "X3SG, X3U, X4U, X5U, X6U, X7, X7C, X210",
        firmware: "2.x (plain-text configuration)",
        boot: &[ModelFiles, Rule(0)],
        template: "fanvil-x",
        rule_templates: &[],
    });

    models.push(model(
        "Gigaset-IP-PRO",
        "Gigaset",
        Xml,
        &["{aabbccddeeff}.xml"],
        Vec::new(),
    ));
    templates.push(template("gigaset-ip-pro", "Gigaset-IP-PRO", GIGASET));
    info.push(Info {
        model: "Gigaset-IP-PRO",
        covers: "N670, N870, N870E IP PRO",
        firmware: "2.x (Nx70 IP PRO)",
        boot: &[Rule(0)],
        template: "gigaset-ip-pro",
        rule_templates: &[],
    });

    for (name, tpl, covers) in [
        ("Poly-VVX", "poly-vvx", "VVX 150, 250, 350, 450, 501, 601"),
        (
            "Poly-Edge-E",
            "poly-edge-e",
            "Edge E100, E220, E300, E320, E350, E400, E450, E500, E550",
        ),
    ] {
        models.push(model(
            name,
            "Poly",
            Xml,
            &["{aabbccddeeff}.cfg", "{aabbccddeeff}-kpbx.cfg"],
            vec![("000000000000.cfg".to_string(), "poly-master".to_string())],
        ));
        templates.push(template(tpl, name, POLY));
        info.push(Info {
            model: name,
            covers,
            firmware: "UC Software 6.x and later",
            boot: &[Rule(0), ModelFiles, Rule(1)],
            template: tpl,
            rule_templates: &[(0, "poly-master")],
        });
    }
    templates.push(template("poly-master", "Poly-VVX", POLY_MASTER));

    models.push(model(
        "Cisco-MPP",
        "Cisco",
        Xml,
        &["{aabbccddeeff}.xml"],
        CISCO_MODELS
            .iter()
            .map(|m| (format!("{m}-3PCC.xml"), "cisco-mpp-profile".to_string()))
            .collect(),
    ));
    templates.push(template("cisco-mpp", "Cisco-MPP", CISCO));
    templates.push(template("cisco-mpp-profile", "Cisco-MPP", CISCO_PROFILE));
    info.push(Info {
        model: "Cisco-MPP",
        covers: "6821-6871, 7811-7861, 8811-8865 multiplatform (3PCC)",
        firmware: "11.x and 12.x MPP",
        boot: &[ModelFiles, Rule(0)],
        template: "cisco-mpp",
        rule_templates: &[],
    });

    Catalogue {
        brands: vec![
            "Snom",
            "Yealink",
            "Grandstream",
            "Fanvil",
            "Gigaset",
            "Poly",
            "Cisco",
        ],
        models,
        templates,
        info,
    }
}

/// A name built once for the process-wide catalogue.
fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
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
            for (f, t) in &m.model_files {
                assert!(c.templates.iter().any(|x| &x.name == t), "{}: {t}", m.name);
                assert!(crate::model::prov::file_name(f).is_ok(), "{f}");
            }
            let i = info(&m.name).expect("every model has an entry");
            assert!(
                c.templates
                    .iter()
                    .any(|t| t.name == i.template && t.model == m.name),
                "{}",
                m.name
            );
            for step in i.boot {
                if let Step::Rule(n) = step {
                    assert!(*n < m.rules.len(), "{}", m.name);
                }
            }
            for (n, t) in i.rule_templates {
                assert!(*n < m.rules.len(), "{}", m.name);
                assert!(c.templates.iter().any(|x| x.name == *t), "{}: {t}", m.name);
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
        assert_eq!(c.info.len(), c.models.len());
    }
}
