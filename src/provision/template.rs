//! Templates: `%%NAME%%` placeholders plus Jinja (minijinja) syntax.
//!
//! A template is compiled in two steps. First every `%%NAME%%` whose name
//! is an identifier is rewritten to the Jinja expression `{{ NAME }}`,
//! remembering where it stood; anything else is left as written. Then
//! minijinja parses the result. Values are inserted by minijinja as values,
//! so a value that itself contains `%%X%%` or `{{ x }}` is never expanded
//! again; XML models escape values, plain ones do not.

use std::collections::BTreeSet;

use crate::model::prov::FileFormat;

/// A placeholder found in a template, with its 1-based position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Use {
    pub name: String,
    pub line: usize,
    pub column: usize,
}

/// Rewrites `%%NAME%%` to `{{ NAME }}` and lists the placeholders used.
pub fn translate(content: &str) -> (String, Vec<Use>) {
    let mut out = String::with_capacity(content.len() + 16);
    let mut uses = Vec::new();
    let mut rest = content;
    let mut consumed = 0usize;
    while let Some(start) = rest.find("%%") {
        let after = &rest[start + 2..];
        let name_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let name = &after[..name_len];
        let is_placeholder = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && after[name_len..].starts_with("%%");
        if is_placeholder {
            out.push_str(&rest[..start]);
            out.push_str("{{ ");
            out.push_str(name);
            out.push_str(" }}");
            let (line, column) = position(content, consumed + start);
            uses.push(Use {
                name: name.to_string(),
                line,
                column,
            });
            let skip = start + 2 + name_len + 2;
            consumed += skip;
            rest = &rest[skip..];
        } else {
            out.push_str(&rest[..start + 2]);
            consumed += start + 2;
            rest = &rest[start + 2..];
        }
    }
    out.push_str(rest);
    (out, uses)
}

fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The environment templates are compiled and rendered in.
pub fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".xml") {
            minijinja::AutoEscape::Html
        } else {
            minijinja::AutoEscape::None
        }
    });
    // XML files escape exactly the five XML characters (minijinja's HTML
    // escaping would also turn '/' into a character reference, which some
    // phones' parsers do not understand).
    env.set_formatter(|out, state, value| {
        if state.auto_escape() == minijinja::AutoEscape::None || value.is_safe() {
            return minijinja::escape_formatter(out, state, value);
        }
        let text = value.to_string();
        let mut escaped = String::with_capacity(text.len());
        for c in text.chars() {
            match c {
                '&' => escaped.push_str("&amp;"),
                '<' => escaped.push_str("&lt;"),
                '>' => escaped.push_str("&gt;"),
                '"' => escaped.push_str("&quot;"),
                '\'' => escaped.push_str("&apos;"),
                c => escaped.push(c),
            }
        }
        out.write_str(&escaped).map_err(|_| {
            minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "cannot write output")
        })
    });
    env
}

/// The name a template is registered under; its suffix selects escaping.
pub fn registered_name(id: &str, format: FileFormat) -> String {
    match format {
        FileFormat::Xml => format!("{id}.xml"),
        FileFormat::Plain => format!("{id}.plain"),
    }
}

/// Checks a template before it is saved: Jinja syntax, and every variable
/// it uses is a known placeholder. Errors name the line and column.
pub fn check(content: &str, known: &dyn Fn(&str) -> bool) -> Result<(), String> {
    let (source, uses) = translate(content);
    if let Some(u) = uses.iter().find(|u| !known(&u.name)) {
        return Err(format!(
            "unknown placeholder %%{}%% at line {}, column {}",
            u.name, u.line, u.column
        ));
    }
    let env = environment();
    let template = env.template_from_str(&source).map_err(|e| {
        let line = e.line().map_or(String::new(), |l| format!(" at line {l}"));
        format!(
            "template syntax error{line}: {}",
            e.detail().unwrap_or("invalid syntax")
        )
    })?;
    let declared: BTreeSet<String> = template.undeclared_variables(false).into_iter().collect();
    if let Some(name) = declared.iter().find(|n| !known(n)) {
        let (line, column) = content
            .find(name.as_str())
            .map_or((0, 0), |at| position(content, at));
        return Err(format!(
            "unknown placeholder {name} at line {line}, column {column}"
        ));
    }
    Ok(())
}

/// The placeholders a template uses (for "which templates use X").
pub fn placeholders_used(content: &str) -> BTreeSet<String> {
    let (source, uses) = translate(content);
    let mut names: BTreeSet<String> = uses.into_iter().map(|u| u.name).collect();
    if let Ok(t) = environment().template_from_str(&source) {
        names.extend(t.undeclared_variables(false));
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_translated_with_positions() {
        let (out, uses) = translate("a %%IPADDR%%\nb%%_SITE%% 100%% %%not-one%% %%");
        assert_eq!(out, "a {{ IPADDR }}\nb{{ _SITE }} 100%% %%not-one%% %%");
        assert_eq!(
            uses,
            [
                Use {
                    name: "IPADDR".into(),
                    line: 1,
                    column: 3
                },
                Use {
                    name: "_SITE".into(),
                    line: 2,
                    column: 2
                },
            ]
        );
    }

    #[test]
    fn check_names_line_and_column() {
        let known = |n: &str| n == "IPADDR";
        assert_eq!(check("ip=%%IPADDR%%\n", &known), Ok(()));
        assert_eq!(
            check("ip=%%IPADDR%%\nx = %%NOPE%%\n", &known),
            Err("unknown placeholder %%NOPE%% at line 2, column 5".to_string())
        );
        let e = check("{% if IPADDR %}\nx\n", &known).unwrap_err();
        assert!(e.starts_with("template syntax error at line"), "{e}");
        let e = check("a\n{{ other }}\n", &known).unwrap_err();
        assert_eq!(e, "unknown placeholder other at line 2, column 4");
        assert_eq!(
            check("{% for x in [1,2] %}{{ x }}{% endfor %}", &known),
            Ok(())
        );
    }

    #[test]
    fn values_are_escaped_by_format_and_never_expanded() {
        let mut env = environment();
        env.add_template_owned("t.xml", translate("<a>%%V%%</a>").0)
            .unwrap();
        env.add_template_owned("t.plain", translate("a=%%V%%").0)
            .unwrap();
        let ctx = minijinja::context! { V => "<&\"%%X%%{{ y }}>" };
        assert_eq!(
            env.get_template("t.xml").unwrap().render(&ctx).unwrap(),
            "<a>&lt;&amp;&quot;%%X%%{{ y }}&gt;</a>"
        );
        let url = minijinja::context! { V => "http://a/b?c='d'" };
        assert_eq!(
            env.get_template("t.xml").unwrap().render(&url).unwrap(),
            "<a>http://a/b?c=&apos;d&apos;</a>"
        );
        assert_eq!(
            env.get_template("t.plain").unwrap().render(&ctx).unwrap(),
            "a=<&\"%%X%%{{ y }}>"
        );
    }
}
