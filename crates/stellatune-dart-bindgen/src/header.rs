//! A parser for the regular C header cbindgen writes for `stellatune-ffi`: doc comments
//! (`/** ... */`), `#define NAME <integer>` constants, `typedef`s and function prototypes.
//! Anything else is an error, so a new construct in the header stops the generator instead of
//! being skipped.

use crate::Error;

/// Everything the generator needs from the header, in header order.
#[derive(Debug, Default, PartialEq)]
pub struct Header {
    pub constants: Vec<Constant>,
    pub typedefs: Vec<Typedef>,
    pub functions: Vec<Function>,
}

/// `#define NAME VALUE` with an integer value.
#[derive(Debug, PartialEq)]
pub struct Constant {
    pub name: String,
    pub value: i64,
    pub doc: Vec<String>,
}

#[derive(Debug, PartialEq)]
pub struct Typedef {
    pub name: String,
    pub kind: TypedefKind,
    pub doc: Vec<String>,
}

#[derive(Debug, PartialEq)]
pub enum TypedefKind {
    /// `typedef struct NAME NAME;`: a type only ever used behind a pointer.
    Opaque,
    /// `typedef uint64_t NAME;`: another name for a C type.
    Alias(CType),
    /// `typedef RET (*NAME)(PARAMS);`: a function pointer.
    FunctionPointer { ret: CType, params: Vec<Param> },
}

#[derive(Debug, PartialEq)]
pub struct Function {
    pub name: String,
    pub ret: CType,
    pub params: Vec<Param>,
    pub doc: Vec<String>,
}

#[derive(Debug, PartialEq)]
pub struct Param {
    /// `None` for an unnamed parameter (function pointer typedefs).
    pub name: Option<String>,
    pub ty: CType,
}

/// A C type as written: a base name (`uint64_t`, `char`, a typedef name), whether the
/// pointee is `const`, and how many `*` follow.
#[derive(Debug, Clone, PartialEq)]
pub struct CType {
    pub base: String,
    pub is_const: bool,
    pub pointers: usize,
}

impl std::fmt::Display for CType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_const {
            f.write_str("const ")?;
        }
        f.write_str(&self.base)?;
        if self.pointers > 0 {
            write!(f, " {}", "*".repeat(self.pointers))?;
        }
        Ok(())
    }
}

/// Parses the header text (LF or CRLF line endings).
pub fn parse(text: &str) -> Result<Header, Error> {
    let text = text.replace("\r\n", "\n");
    let mut header = Header::default();
    let mut doc: Option<Vec<String>> = None;
    // A declaration being collected until its `;`, with the line it started on.
    let mut statement: Option<(usize, String)> = None;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));

    while let Some((line_no, raw)) = lines.next() {
        let line = raw.trim();
        if let Some((start, text)) = statement.as_mut() {
            if line.starts_with('#') || line.starts_with("/*") || line.starts_with("//") {
                return Err(Error::at(
                    *start,
                    "a declaration is interrupted by a comment or a directive",
                ));
            }
            text.push(' ');
            text.push_str(line);
            if line.ends_with(';') {
                let (start, text) = statement.take().expect("checked above");
                declaration(&text, start, doc.take().unwrap_or_default(), &mut header)?;
            }
            continue;
        }
        if line.is_empty() {
            continue;
        }
        if line.starts_with("/*") {
            let is_doc = line.starts_with("/**");
            let mut body = Vec::new();
            let mut current = line;
            let mut current_no = line_no;
            loop {
                let end = current.find("*/");
                let content = &current[..end.unwrap_or(current.len())];
                body.push(content.to_owned());
                if let Some(end) = end {
                    if !current[end + 2..].trim().is_empty() {
                        return Err(Error::at(current_no, "text after the end of a comment"));
                    }
                    break;
                }
                let (no, next) = lines
                    .next()
                    .ok_or_else(|| Error::at(line_no, "a comment that never ends"))?;
                current = next.trim();
                current_no = no;
            }
            doc = is_doc.then(|| doc_lines(&body));
            continue;
        }
        if line.starts_with("//") {
            continue;
        }
        if let Some(directive) = line.strip_prefix('#') {
            let words: Vec<&str> = directive.split_whitespace().collect();
            match words.as_slice() {
                ["define", name, value] => {
                    let value = value.parse::<i64>().map_err(|_| {
                        Error::at(
                            line_no,
                            format!("`#define {name}` has a value that is not an integer"),
                        )
                    })?;
                    header.constants.push(Constant {
                        name: (*name).to_owned(),
                        value,
                        doc: doc.take().unwrap_or_default(),
                    });
                }
                ["define", _] => doc = None, // the include guard
                ["define", ..] => {
                    return Err(Error::at(line_no, "a `#define` this generator cannot read"));
                }
                [
                    "include" | "ifndef" | "ifdef" | "if" | "endif" | "else" | "pragma",
                    ..,
                ] => doc = None,
                _ => return Err(Error::at(line_no, format!("unknown directive `{line}`"))),
            }
            continue;
        }
        // `extern "C" {` and its closing brace (each with an optional `//` comment).
        let code = line.split("//").next().unwrap_or_default().trim();
        if code == "extern \"C\" {" || code == "}" {
            continue;
        }
        statement = Some((line_no, line.to_owned()));
        if line.ends_with(';') {
            let (start, text) = statement.take().expect("just set");
            declaration(&text, start, doc.take().unwrap_or_default(), &mut header)?;
        }
    }
    if let Some((start, _)) = statement {
        return Err(Error::at(start, "a declaration without its `;`"));
    }
    Ok(header)
}

/// The lines of a `/** ... */` comment without the comment markers and the ` * ` prefixes.
fn doc_lines(body: &[String]) -> Vec<String> {
    let mut lines: Vec<String> = body
        .iter()
        .map(|line| {
            let line = line.trim_start();
            let line = line.strip_prefix("/**").unwrap_or(line);
            let line = line.strip_prefix('*').unwrap_or(line);
            let line = line.strip_prefix(' ').unwrap_or(line);
            line.trim_end().to_owned()
        })
        .collect();
    while lines.first().is_some_and(|l| l.is_empty()) {
        lines.remove(0);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

fn declaration(
    text: &str,
    line: usize,
    doc: Vec<String>,
    header: &mut Header,
) -> Result<(), Error> {
    let text = text.trim().trim_end_matches(';').trim();
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some(rest) = text.strip_prefix("typedef ") {
        header.typedefs.push(typedef(rest, line, doc)?);
        return Ok(());
    }
    let open = text
        .find('(')
        .ok_or_else(|| Error::at(line, format!("not a function prototype: `{text}`")))?;
    if !text.ends_with(')') {
        return Err(Error::at(
            line,
            format!("not a function prototype: `{text}`"),
        ));
    }
    let (ret, name) = split_declarator(&text[..open], line)?;
    let name =
        name.ok_or_else(|| Error::at(line, format!("a prototype without a name: `{text}`")))?;
    let params = params(&text[open + 1..text.len() - 1], line)?;
    header.functions.push(Function {
        name,
        ret,
        params,
        doc,
    });
    Ok(())
}

fn typedef(rest: &str, line: usize, doc: Vec<String>) -> Result<Typedef, Error> {
    // typedef RET (*NAME)(PARAMS)
    if let Some(star) = rest.find("(*") {
        let ret = ctype(&rest[..star], line)?;
        let after = &rest[star + 2..];
        let close = after
            .find(')')
            .ok_or_else(|| Error::at(line, "a function pointer typedef without `)`"))?;
        let name = identifier(after[..close].trim(), line)?;
        let params_text = after[close + 1..].trim();
        let inner = params_text
            .strip_prefix('(')
            .and_then(|p| p.strip_suffix(')'))
            .ok_or_else(|| Error::at(line, format!("cannot read the typedef `{name}`")))?;
        return Ok(Typedef {
            name,
            kind: TypedefKind::FunctionPointer {
                ret,
                params: params(inner, line)?,
            },
            doc,
        });
    }
    let words: Vec<&str> = rest.split_whitespace().collect();
    if let ["struct", tag, name] = words.as_slice() {
        if tag != name {
            return Err(Error::at(
                line,
                format!("`typedef struct {tag} {name}`: the names differ"),
            ));
        }
        return Ok(Typedef {
            name: identifier(name, line)?,
            kind: TypedefKind::Opaque,
            doc,
        });
    }
    let (ty, name) = split_declarator(rest, line)?;
    let name =
        name.ok_or_else(|| Error::at(line, format!("a typedef without a name: `{rest}`")))?;
    Ok(Typedef {
        name,
        kind: TypedefKind::Alias(ty),
        doc,
    })
}

/// Splits `const char *name` into the type and the name (`None` when the last word is part
/// of the type, as in an unnamed parameter).
fn split_declarator(text: &str, line: usize) -> Result<(CType, Option<String>), Error> {
    let text = text.trim();
    let (ty_text, name) = match text.rfind(|c: char| c == '*' || c.is_whitespace()) {
        Some(at) => {
            let last = text[at + 1..].trim();
            let ty_text = &text[..=at];
            // `uint64_t` alone has no separator; `const char` would end in a type word.
            if ty_text.trim().is_empty() || ty_text.trim() == "const" {
                (text, None)
            } else {
                (ty_text, Some(last))
            }
        }
        None => (text, None),
    };
    let name = name.filter(|n| !n.is_empty());
    Ok((
        ctype(ty_text, line)?,
        name.map(|n| identifier(n, line)).transpose()?,
    ))
}

fn params(text: &str, line: usize) -> Result<Vec<Param>, Error> {
    let text = text.trim();
    if text.is_empty() || text == "void" {
        return Ok(Vec::new());
    }
    if text.contains('(') {
        return Err(Error::at(
            line,
            "an inline function pointer parameter (give it a typedef)",
        ));
    }
    text.split(',')
        .map(|param| {
            let (ty, name) = split_declarator(param, line)?;
            Ok(Param { name, ty })
        })
        .collect()
}

fn ctype(text: &str, line: usize) -> Result<CType, Error> {
    let pointers = text.matches('*').count();
    let mut is_const = false;
    let mut base = None;
    for word in text.replace('*', " ").split_whitespace() {
        match word {
            "const" if base.is_none() && !is_const => is_const = true,
            _ if base.is_none() => base = Some(identifier(word, line)?),
            _ => {
                return Err(Error::at(
                    line,
                    format!("a C type this generator cannot read: `{}`", text.trim()),
                ));
            }
        }
    }
    let base = base.ok_or_else(|| Error::at(line, format!("no type in `{}`", text.trim())))?;
    Ok(CType {
        base,
        is_const,
        pointers,
    })
}

fn identifier(word: &str, line: usize) -> Result<String, Error> {
    let valid = word
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && word.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(word.to_owned())
    } else {
        Err(Error::at(line, format!("`{word}` is not a C identifier")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ty(base: &str, is_const: bool, pointers: usize) -> CType {
        CType {
            base: base.to_owned(),
            is_const,
            pointers,
        }
    }

    #[test]
    fn reads_constants_prototypes_and_their_docs() {
        let header = parse(
            "/*\n * file comment\n */\n#ifndef X_H\n#define X_H\n#include <stdint.h>\n\
             /**\n * Success.\n *\n *   indented\n */\n#define STELLATUNE_OK 0\n\
             #define STELLATUNE_ERR_X -7\r\n\
             extern \"C\" {\n\
             /**\n * Polls.\n */\n\
             int32_t stellatune_poll(uint64_t client,\n                        char *buf,\n\
                                     size_t *out_len);\n\
             const char *stellatune_name(int32_t code);\n\
             uint32_t stellatune_version(void);\n\
             }  // extern \"C\"\n#endif\n",
        )
        .unwrap();
        assert_eq!(
            header.constants,
            vec![
                Constant {
                    name: "STELLATUNE_OK".into(),
                    value: 0,
                    doc: vec!["Success.".into(), "".into(), "  indented".into()],
                },
                Constant {
                    name: "STELLATUNE_ERR_X".into(),
                    value: -7,
                    doc: vec![],
                },
            ]
        );
        assert_eq!(header.functions.len(), 3);
        let poll = &header.functions[0];
        assert_eq!(poll.doc, vec!["Polls.".to_owned()]);
        assert_eq!(poll.ret, ty("int32_t", false, 0));
        assert_eq!(
            poll.params,
            vec![
                Param {
                    name: Some("client".into()),
                    ty: ty("uint64_t", false, 0)
                },
                Param {
                    name: Some("buf".into()),
                    ty: ty("char", false, 1)
                },
                Param {
                    name: Some("out_len".into()),
                    ty: ty("size_t", false, 1)
                },
            ]
        );
        assert_eq!(header.functions[1].ret, ty("char", true, 1));
        assert!(header.functions[1].doc.is_empty());
        assert!(header.functions[2].params.is_empty());
    }

    #[test]
    fn reads_typedefs() {
        let header = parse(
            "typedef struct Handle Handle;\ntypedef uint64_t ClientId;\n\
             typedef bool (*PostFn)(int64_t, void *message);\n",
        )
        .unwrap();
        assert_eq!(header.typedefs[0].kind, TypedefKind::Opaque);
        assert_eq!(
            header.typedefs[1].kind,
            TypedefKind::Alias(ty("uint64_t", false, 0))
        );
        assert_eq!(
            header.typedefs[2].kind,
            TypedefKind::FunctionPointer {
                ret: ty("bool", false, 0),
                params: vec![
                    Param {
                        name: None,
                        ty: ty("int64_t", false, 0)
                    },
                    Param {
                        name: Some("message".into()),
                        ty: ty("void", false, 1)
                    },
                ],
            }
        );
    }

    #[test]
    fn refuses_what_it_cannot_read() {
        for bad in [
            "#define STELLATUNE_NAME \"text\"\n",
            "#warning no\n",
            "struct Foo { int a; };\n",
            "int32_t f(void (*cb)(void));\n",
            "unsigned long f(void);\n",
            "int32_t f(uint64_t client)\n",
            "/* never ends\n",
        ] {
            assert!(parse(bad).is_err(), "accepted {bad:?}");
        }
    }
}
