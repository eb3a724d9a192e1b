//! The XML-RPC subset of the legacy redirection APIs (Snom
//! `redirect.registerPhone`, Yealink `redirect.registerDevice`): calls with
//! string and boolean parameters; answers holding one value (usually an
//! array `[boolean, string]`) or a fault.
//!
//! Pure. The parser takes untrusted bytes: bounded depth and size, every
//! error a value, never a panic (seeded random test and a fuzz target).

/// A parameter or answer value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Str(String),
    Bool(bool),
    Int(i64),
    Array(Vec<Value>),
    Struct(Vec<(String, Value)>),
}

/// A decoded answer: the first parameter, or a fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Value(Value),
    Fault { code: i64, message: String },
}

/// Largest answer accepted.
pub const MAX_ANSWER: usize = 256 * 1024;
const MAX_DEPTH: usize = 16;

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

fn encode_value(v: &Value, out: &mut String) {
    out.push_str("<value>");
    match v {
        Value::Str(s) => {
            out.push_str("<string>");
            out.push_str(&escape(s));
            out.push_str("</string>");
        }
        Value::Bool(b) => out.push_str(if *b {
            "<boolean>1</boolean>"
        } else {
            "<boolean>0</boolean>"
        }),
        Value::Int(i) => out.push_str(&format!("<int>{i}</int>")),
        Value::Array(items) => {
            out.push_str("<array><data>");
            for item in items {
                encode_value(item, out);
            }
            out.push_str("</data></array>");
        }
        Value::Struct(members) => {
            out.push_str("<struct>");
            for (name, value) in members {
                out.push_str("<member><name>");
                out.push_str(&escape(name));
                out.push_str("</name>");
                encode_value(value, out);
                out.push_str("</member>");
            }
            out.push_str("</struct>");
        }
    }
    out.push_str("</value>");
}

/// The body of a `methodCall`.
pub fn call(method: &str, params: &[Value]) -> String {
    let mut out =
        String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodCall><methodName>");
    out.push_str(&escape(method));
    out.push_str("</methodName><params>");
    for p in params {
        out.push_str("<param>");
        encode_value(p, &mut out);
        out.push_str("</param>");
    }
    out.push_str("</params></methodCall>\n");
    out
}

// ------------------------------------------------------------------ parsing

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Open(String),
    Close(String),
    /// `<x/>`
    Empty(String),
    Text(String),
}

fn unescape(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let end = after
            .find(';')
            .filter(|e| *e <= 10)
            .ok_or("unterminated entity")?;
        let name = &after[..end];
        let c = match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "quot" => '"',
            "apos" => '\'',
            _ => {
                let code = if let Some(hex) = name.strip_prefix("#x") {
                    u32::from_str_radix(hex, 16).ok()
                } else if let Some(dec) = name.strip_prefix('#') {
                    dec.parse::<u32>().ok()
                } else {
                    None
                };
                code.and_then(char::from_u32)
                    .ok_or_else(|| "unknown entity".to_string())?
            }
        };
        out.push(c);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("<![CDATA[") {
            let end = after.find("]]>").ok_or("unterminated CDATA")?;
            tokens.push(Token::Text(after[..end].to_string()));
            rest = &after[end + 3..];
        } else if let Some(after) = rest.strip_prefix("<!--") {
            let end = after.find("-->").ok_or("unterminated comment")?;
            rest = &after[end + 3..];
        } else if let Some(after) = rest.strip_prefix("<?") {
            let end = after.find("?>").ok_or("unterminated declaration")?;
            rest = &after[end + 2..];
        } else if let Some(after) = rest.strip_prefix('<') {
            let end = after.find('>').ok_or("unterminated tag")?;
            let inner = &after[..end];
            rest = &after[end + 1..];
            if let Some(name) = inner.strip_prefix('/') {
                tokens.push(Token::Close(name.trim().to_string()));
            } else if let Some(body) = inner.strip_suffix('/') {
                let name = body.split_whitespace().next().unwrap_or_default();
                tokens.push(Token::Empty(name.to_string()));
            } else {
                let name = inner.split_whitespace().next().unwrap_or_default();
                if name.is_empty() || name.starts_with('!') {
                    return Err("bad tag".into());
                }
                tokens.push(Token::Open(name.to_string()));
            }
        } else {
            let end = rest.find('<').unwrap_or(rest.len());
            let t = unescape(&rest[..end])?;
            // Adjacent text (text, CDATA, text) is one string.
            if let Some(Token::Text(prev)) = tokens.last_mut() {
                prev.push_str(&t);
            } else {
                tokens.push(Token::Text(t));
            }
            rest = &rest[end..];
        }
        if tokens.len() > 100_000 {
            return Err("too many elements".into());
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    /// Skips white-space text.
    fn skip_ws(&mut self) {
        while let Some(Token::Text(t)) = self.tokens.get(self.pos) {
            if !t.trim().is_empty() {
                break;
            }
            self.pos += 1;
        }
    }

    fn open(&mut self, name: &str) -> Result<(), String> {
        self.skip_ws();
        match self.tokens.get(self.pos) {
            Some(Token::Open(n)) if n == name => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(format!("expected <{name}>")),
        }
    }

    fn close(&mut self, name: &str) -> Result<(), String> {
        self.skip_ws();
        match self.tokens.get(self.pos) {
            Some(Token::Close(n)) if n == name => {
                self.pos += 1;
                Ok(())
            }
            _ => Err(format!("expected </{name}>")),
        }
    }

    fn peek_open(&mut self) -> Option<&str> {
        self.skip_ws();
        match self.tokens.get(self.pos) {
            Some(Token::Open(n)) => Some(n.as_str()),
            _ => None,
        }
    }

    /// Text up to the closing tag `name` (empty if none).
    fn text_until(&mut self, name: &str) -> Result<String, String> {
        let text = match self.tokens.get(self.pos) {
            Some(Token::Text(t)) => {
                let t = t.clone();
                self.pos += 1;
                t
            }
            _ => String::new(),
        };
        self.close(name)?;
        Ok(text)
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err("values nested too deeply".into());
        }
        self.open("value")?;
        // A value without a type element is a string.
        if let Some(Token::Text(t)) = self.tokens.get(self.pos)
            && matches!(self.tokens.get(self.pos + 1), Some(Token::Close(n)) if n == "value")
        {
            let t = t.clone();
            self.pos += 2;
            return Ok(Value::Str(t));
        }
        if matches!(self.tokens.get(self.pos), Some(Token::Close(n)) if n == "value") {
            self.pos += 1;
            return Ok(Value::Str(String::new()));
        }
        if let Some(Token::Empty(n)) = self.tokens.get(self.pos) {
            let v = match n.as_str() {
                "string" => Value::Str(String::new()),
                "nil" => Value::Str(String::new()),
                _ => return Err(format!("empty <{n}/>")),
            };
            self.pos += 1;
            self.close("value")?;
            return Ok(v);
        }
        let kind = self.peek_open().ok_or("expected a value type")?.to_string();
        self.pos += 1;
        let v = match kind.as_str() {
            "string" => Value::Str(self.text_until("string")?),
            "boolean" => match self.text_until("boolean")?.trim() {
                "1" => Value::Bool(true),
                "0" => Value::Bool(false),
                _ => return Err("bad boolean".into()),
            },
            "int" | "i4" | "i8" => Value::Int(
                self.text_until(&kind)?
                    .trim()
                    .parse()
                    .map_err(|_| "bad integer".to_string())?,
            ),
            "array" => {
                self.open("data")?;
                let mut items = Vec::new();
                while self.peek_open() == Some("value") {
                    items.push(self.value(depth + 1)?);
                }
                self.close("data")?;
                self.close("array")?;
                Value::Array(items)
            }
            "struct" => {
                let mut members = Vec::new();
                while self.peek_open() == Some("member") {
                    self.pos += 1;
                    self.open("name")?;
                    let name = self.text_until("name")?;
                    let value = self.value(depth + 1)?;
                    self.close("member")?;
                    members.push((name, value));
                }
                self.close("struct")?;
                Value::Struct(members)
            }
            other => return Err(format!("unsupported value type <{other}>")),
        };
        self.close("value")?;
        Ok(v)
    }
}

/// Decodes a `methodResponse`.
pub fn parse_answer(bytes: &[u8]) -> Result<Answer, String> {
    if bytes.len() > MAX_ANSWER {
        return Err("answer too large".into());
    }
    let text = std::str::from_utf8(bytes).map_err(|_| "answer is not UTF-8".to_string())?;
    let mut p = Parser {
        tokens: tokenize(text)?,
        pos: 0,
    };
    p.open("methodResponse")?;
    let answer = match p.peek_open() {
        Some("params") => {
            p.pos += 1;
            p.open("param")?;
            let v = p.value(0)?;
            p.close("param")?;
            p.close("params")?;
            Answer::Value(v)
        }
        Some("fault") => {
            p.pos += 1;
            let v = p.value(0)?;
            p.close("fault")?;
            let Value::Struct(members) = v else {
                return Err("fault is not a struct".into());
            };
            let mut code = 0;
            let mut message = String::new();
            for (name, value) in members {
                match (name.as_str(), value) {
                    ("faultCode", Value::Int(c)) => code = c,
                    ("faultString", Value::Str(s)) => message = s,
                    _ => {}
                }
            }
            Answer::Fault { code, message }
        }
        _ => return Err("expected <params> or <fault>".into()),
    };
    p.close("methodResponse")?;
    p.skip_ws();
    if p.pos != p.tokens.len() {
        return Err("trailing content after </methodResponse>".into());
    }
    Ok(answer)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn call_bytes() {
        assert_eq!(
            call(
                "redirect.registerPhone",
                &[
                    Value::Str("000413a1b2c3".into()),
                    Value::Str("https://x/?a=1&b=<2>".into())
                ]
            ),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<methodCall><methodName>redirect.registerPhone</methodName><params><param><value><string>000413a1b2c3</string></value></param><param><value><string>https://x/?a=1&amp;b=&lt;2&gt;</string></value></param></params></methodCall>\n"
        );
        assert!(call("m", &[Value::Bool(true)]).contains("<boolean>1</boolean>"));
    }

    #[test]
    fn answers() {
        let ok = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><array><data>\n<value><boolean>1</boolean></value>\n<value><string>OK</string></value>\n</data></array></value>\n</param>\n</params>\n</methodResponse>\n";
        assert_eq!(
            parse_answer(ok.as_bytes()).unwrap(),
            Answer::Value(Value::Array(vec![
                Value::Bool(true),
                Value::Str("OK".into())
            ]))
        );
        let plain = "<methodResponse><params><param><value><array><data><value><boolean>0</boolean></value><value>Error:owned_by_other_user</value></data></array></value></param></params></methodResponse>";
        assert_eq!(
            parse_answer(plain.as_bytes()).unwrap(),
            Answer::Value(Value::Array(vec![
                Value::Bool(false),
                Value::Str("Error:owned_by_other_user".into())
            ]))
        );
        let cdata = "<methodResponse><params><param><value><string><![CDATA[a<b]]>&amp;c</string></value></param></params></methodResponse>";
        assert_eq!(
            parse_answer(cdata.as_bytes()).unwrap(),
            Answer::Value(Value::Str("a<b&c".into()))
        );
        let fault = "<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>4</int></value></member><member><name>faultString</name><value><string>Too many parameters.</string></value></member></struct></value></fault></methodResponse>";
        assert_eq!(
            parse_answer(fault.as_bytes()).unwrap(),
            Answer::Fault {
                code: 4,
                message: "Too many parameters.".into()
            }
        );
        for bad in [
            "",
            "<html>nope</html>",
            "<methodResponse><params></params></methodResponse>",
            "<methodResponse><params><param><value><boolean>2</boolean></value></param></params></methodResponse>",
            "<methodResponse><params><param><value><string>x</value></param></params></methodResponse>",
            "<methodResponse><params><param><value>x</value></param></params></methodResponse><x>",
            "<methodResponse><params><param><value><string>&bogus;</string></value></param></params></methodResponse>",
        ] {
            assert!(parse_answer(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut s = String::from("<methodResponse><params><param>");
        for _ in 0..100 {
            s.push_str("<value><array><data>");
        }
        assert!(parse_answer(s.as_bytes()).is_err());
    }

    #[test]
    fn random_input_never_panics() {
        let base = "<methodResponse><params><param><value><array><data><value><boolean>1</boolean></value><value><string><![CDATA[x]]>&#x41;</string></value><value><struct><member><name>a</name><value><int>1</int></value></member></struct></value></data></array></value></param></params></methodResponse>";
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let mut buf = base.as_bytes().to_vec();
            for _ in 0..(next() % 5) {
                let i = (next() as usize) % buf.len();
                buf[i] = b"<>/&;![]x1 "[(next() % 11) as usize];
            }
            let cut = (next() as usize) % (buf.len() + 1);
            let _ = parse_answer(&buf[..cut]);
        }
    }
}
