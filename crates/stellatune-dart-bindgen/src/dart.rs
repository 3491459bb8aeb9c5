//! Writes the `dart:ffi` bindings for a parsed header: a Dart constant per `#define`, a
//! native and a Dart signature per function, and one class that looks every function up.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::Error;
use crate::header::{CType, Header, Param, TypedefKind};

/// The command that regenerates the bindings, named in the file's first lines.
pub const COMMAND: &str = "cargo run -p stellatune-dart-bindgen";

/// A C type as `dart:ffi` sees it: the native type (in `NativeFunction` signatures) and the
/// Dart type (in the looked-up function's signature).
#[derive(Debug, Clone, PartialEq)]
struct Mapped {
    native: String,
    dart: String,
}

impl Mapped {
    fn both(ty: impl Into<String>) -> Self {
        let ty = ty.into();
        Self {
            native: ty.clone(),
            dart: ty,
        }
    }
}

/// The fixed-size C scalars: C name, `dart:ffi` native type, Dart type.
const SCALARS: &[(&str, &str, &str)] = &[
    ("int8_t", "Int8", "int"),
    ("int16_t", "Int16", "int"),
    ("int32_t", "Int32", "int"),
    ("int64_t", "Int64", "int"),
    ("uint8_t", "Uint8", "int"),
    ("uint16_t", "Uint16", "int"),
    ("uint32_t", "Uint32", "int"),
    ("uint64_t", "Uint64", "int"),
    ("size_t", "Size", "int"),
    ("intptr_t", "IntPtr", "int"),
    ("uintptr_t", "UintPtr", "int"),
    ("float", "Float", "double"),
    ("double", "Double", "double"),
    ("bool", "Bool", "bool"),
];

/// Dart's reserved words and built-in identifiers: a generated name may not be one.
const DART_RESERVED: &[&str] = &[
    "abstract",
    "as",
    "assert",
    "async",
    "await",
    "base",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "covariant",
    "default",
    "deferred",
    "do",
    "dynamic",
    "else",
    "enum",
    "export",
    "extends",
    "extension",
    "external",
    "factory",
    "false",
    "final",
    "finally",
    "for",
    "function",
    "get",
    "hide",
    "if",
    "implements",
    "import",
    "in",
    "interface",
    "is",
    "late",
    "library",
    "mixin",
    "new",
    "null",
    "on",
    "operator",
    "part",
    "required",
    "rethrow",
    "return",
    "sealed",
    "set",
    "show",
    "static",
    "super",
    "switch",
    "sync",
    "this",
    "throw",
    "true",
    "try",
    "typedef",
    "var",
    "void",
    "when",
    "while",
    "with",
    "yield",
];

/// What the typedefs of the header define, by C name.
enum Named {
    /// An opaque struct: usable only behind a pointer.
    Opaque,
    /// A Dart typedef usable as is (a function pointer).
    Dart,
    /// An alias of another C type.
    Alias(CType),
}

struct Types {
    named: BTreeMap<String, Named>,
}

impl Types {
    fn map(&self, ty: &CType, position: Position, context: &str) -> Result<Mapped, Error> {
        let unknown = || {
            Error::new(format!(
                "{context}: no dart:ffi mapping for the C type `{ty}`"
            ))
        };
        if let Some(Named::Alias(target)) = self.named.get(&ty.base) {
            let resolved = CType {
                base: target.base.clone(),
                is_const: ty.is_const || target.is_const,
                pointers: ty.pointers + target.pointers,
            };
            return self.map(&resolved, position, context);
        }
        if ty.pointers == 0 {
            if ty.base == "void" {
                return match position {
                    Position::Return => Ok(Mapped {
                        native: "Void".into(),
                        dart: "void".into(),
                    }),
                    Position::Param => {
                        Err(Error::new(format!("{context}: `void` as a parameter type")))
                    }
                };
            }
            if let Some((_, native, dart)) = SCALARS.iter().find(|(c, ..)| *c == ty.base) {
                return Ok(Mapped {
                    native: (*native).into(),
                    dart: (*dart).into(),
                });
            }
            return match self.named.get(&ty.base) {
                Some(Named::Dart) => Ok(Mapped::both(ty.base.clone())),
                Some(Named::Opaque) => Err(Error::new(format!(
                    "{context}: the opaque type `{}` by value",
                    ty.base
                ))),
                _ => Err(unknown()),
            };
        }
        // Pointers: the innermost pointee, then one `Pointer<...>` per further star.
        let pointee = match ty.base.as_str() {
            // Text: NUL-terminated UTF-8 in and out (`char *` buffers are filled with it).
            "char" => "Utf8".to_owned(),
            "void" => "Void".to_owned(),
            base => match SCALARS.iter().find(|(c, ..)| *c == base) {
                Some((_, native, _)) => (*native).to_owned(),
                None => match self.named.get(base) {
                    Some(Named::Opaque | Named::Dart) => base.to_owned(),
                    _ => return Err(unknown()),
                },
            },
        };
        let mut mapped = pointee;
        for _ in 0..ty.pointers {
            mapped = format!("Pointer<{mapped}>");
        }
        Ok(Mapped::both(mapped))
    }
}

#[derive(Clone, Copy)]
enum Position {
    Return,
    Param,
}

/// `STELLATUNE_ERR_NOT_FOUND` → `stellatuneErrNotFound`, `out_len` → `outLen`.
fn lower_camel(name: &str) -> String {
    let upper = upper_camel(name);
    let mut chars = upper.chars();
    match chars.next() {
        Some(first) => first.to_ascii_lowercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// `stellatune_player_play` → `StellatunePlayerPlay`.
fn upper_camel(name: &str) -> String {
    name.split('_')
        .filter(|part| !part.is_empty())
        .map(|part| {
            let lower = part.to_ascii_lowercase();
            let mut chars = lower.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The name of the Dart `StellatuneBindings` member that looks a C function up:
/// `stellatune_player_play` → `playerPlay`.
pub fn member_name(function: &str) -> String {
    lower_camel(function.strip_prefix("stellatune_").unwrap_or(function))
}

fn checked_name(name: String, what: &str, used: &mut BTreeSet<String>) -> Result<String, Error> {
    if name.is_empty() || DART_RESERVED.contains(&name.as_str()) {
        return Err(Error::new(format!(
            "{what} gives the Dart name `{name}`, which Dart reserves"
        )));
    }
    if !used.insert(name.clone()) {
        return Err(Error::new(format!(
            "{what} gives the Dart name `{name}`, which another item has"
        )));
    }
    Ok(name)
}

/// A parameter's Dart name; a reserved word gets a trailing `_`.
fn param_name(param: &Param) -> Option<String> {
    param.name.as_deref().map(|name| {
        let name = lower_camel(name);
        if DART_RESERVED.contains(&name.as_str()) {
            format!("{name}_")
        } else {
            name
        }
    })
}

fn write_doc(out: &mut String, indent: &str, doc: &[String]) {
    for line in doc {
        if line.is_empty() {
            let _ = writeln!(out, "{indent}///");
        } else {
            let _ = writeln!(out, "{indent}/// {line}");
        }
    }
}

fn signature(
    types: &Types,
    ret: &CType,
    params: &[Param],
    context: &str,
) -> Result<(String, String), Error> {
    let ret = types.map(ret, Position::Return, context)?;
    let mut native = Vec::new();
    let mut dart = Vec::new();
    for param in params {
        let what = match &param.name {
            Some(name) => format!("{context} (parameter `{name}`)"),
            None => context.to_owned(),
        };
        let mapped = types.map(&param.ty, Position::Param, &what)?;
        match param_name(param) {
            Some(name) => {
                native.push(format!("{} {name}", mapped.native));
                dart.push(format!("{} {name}", mapped.dart));
            }
            None => {
                native.push(mapped.native);
                dart.push(mapped.dart);
            }
        }
    }
    Ok((
        format!("{} Function({})", ret.native, native.join(", ")),
        format!("{} Function({})", ret.dart, dart.join(", ")),
    ))
}

/// The whole `bindings.g.dart` for `header`, read from `header_path` (named in the file).
pub fn render(header: &Header, header_path: &str) -> Result<String, Error> {
    let mut used = BTreeSet::from(["StellatuneBindings".to_owned()]);
    let mut types = Types {
        named: BTreeMap::new(),
    };
    for typedef in &header.typedefs {
        let named = match &typedef.kind {
            TypedefKind::Opaque => Named::Opaque,
            TypedefKind::Alias(target) => Named::Alias(target.clone()),
            TypedefKind::FunctionPointer { .. } => Named::Dart,
        };
        if types.named.insert(typedef.name.clone(), named).is_some() {
            return Err(Error::new(format!("`{}` is defined twice", typedef.name)));
        }
    }

    let mut body = String::new();
    let mut out = String::new();

    if !header.constants.is_empty() {
        body.push_str("// Constants (`#define`s).\n\n");
    }
    for constant in &header.constants {
        let name = checked_name(
            lower_camel(&constant.name),
            &format!("`{}`", constant.name),
            &mut used,
        )?;
        write_doc(&mut body, "", &constant.doc);
        let _ = writeln!(body, "///");
        let _ = writeln!(body, "/// `{}` in the C header.", constant.name);
        let _ = writeln!(body, "const int {name} = {};\n", constant.value);
    }

    let mut typedef_lines = String::new();
    for typedef in &header.typedefs {
        let context = format!("typedef `{}`", typedef.name);
        match &typedef.kind {
            TypedefKind::Alias(target) => {
                // Resolved where it is used; fail now if it maps to nothing.
                types.map(target, Position::Param, &context)?;
            }
            TypedefKind::Opaque => {
                let name = checked_name(typedef.name.clone(), &context, &mut used)?;
                write_doc(&mut typedef_lines, "", &typedef.doc);
                let _ = writeln!(typedef_lines, "final class {name} extends Opaque {{}}\n");
            }
            TypedefKind::FunctionPointer { ret, params } => {
                let name = checked_name(typedef.name.clone(), &context, &mut used)?;
                let native_name = checked_name(format!("{name}Native"), &context, &mut used)?;
                let (native, _) = signature(&types, ret, params, &context)?;
                write_doc(&mut typedef_lines, "", &typedef.doc);
                let _ = writeln!(
                    typedef_lines,
                    "typedef {name} = Pointer<NativeFunction<{native_name}>>;"
                );
                let _ = writeln!(typedef_lines, "typedef {native_name} = {native};\n");
            }
        }
    }
    if !typedef_lines.is_empty() {
        body.push_str("// Types (`typedef`s).\n\n");
        body.push_str(&typedef_lines);
    }

    let mut signatures = String::new();
    let mut members = String::new();
    let mut member_names = BTreeSet::new();
    for function in &header.functions {
        let context = format!("`{}`", function.name);
        let stem = upper_camel(&function.name);
        let native_name = checked_name(format!("{stem}Native"), &context, &mut used)?;
        let dart_name = checked_name(format!("{stem}Dart"), &context, &mut used)?;
        let member = checked_name(member_name(&function.name), &context, &mut member_names)?;
        if member == "library" {
            return Err(Error::new(format!(
                "{context} gives the member name `library`, which the class uses"
            )));
        }
        let (native, dart) = signature(&types, &function.ret, &function.params, &context)?;
        let _ = writeln!(signatures, "/// Native signature of `{}`.", function.name);
        let _ = writeln!(signatures, "typedef {native_name} = {native};");
        let _ = writeln!(signatures, "/// Dart signature of `{}`.", function.name);
        let _ = writeln!(signatures, "typedef {dart_name} = {dart};\n");

        write_doc(&mut members, "  ", &function.doc);
        if !function.doc.is_empty() {
            let _ = writeln!(members, "  ///");
        }
        let _ = writeln!(members, "  /// `{}` in the C header.", function.name);
        let _ = writeln!(
            members,
            "  late final {dart_name} {member} =\n      library.lookupFunction<{native_name}, {dart_name}>('{}');\n",
            function.name
        );
    }
    if !signatures.is_empty() {
        body.push_str("// Function signatures.\n\n");
        body.push_str(&signatures);
    }
    body.push_str(
        "/// Every function of the C header, looked up in [library] on first use (a library\n\
         /// older than these bindings fails only when a function it lacks is called).\n\
         final class StellatuneBindings {\n  StellatuneBindings(this.library);\n\n  \
         /// The loaded `stellatune_ffi` library.\n  final DynamicLibrary library;\n",
    );
    if !members.is_empty() {
        body.push('\n');
        body.push_str(members.trim_end());
        body.push('\n');
    }
    body.push_str("}\n");

    let _ = writeln!(out, "// GENERATED CODE - DO NOT MODIFY BY HAND.");
    let _ = writeln!(out, "//");
    let _ = writeln!(out, "// Generated from {header_path} by");
    let _ = writeln!(out, "//   {COMMAND}");
    let _ = writeln!(
        out,
        "// crates/stellatune-dart-bindgen/tests/bindings.rs fails when this file is out of date."
    );
    out.push('\n');
    out.push_str("// ignore_for_file: type=lint\n\n");
    out.push_str("import 'dart:ffi';\n");
    if body.contains("Utf8") {
        out.push_str("\nimport 'package:ffi/ffi.dart';\n");
    }
    out.push('\n');
    out.push_str(&body);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::parse;

    fn render_text(header: &str) -> Result<String, Error> {
        render(&parse(header).unwrap(), "x.h")
    }

    #[test]
    fn names_follow_dart_conventions() {
        assert_eq!(
            lower_camel("STELLATUNE_ERR_NOT_FOUND"),
            "stellatuneErrNotFound"
        );
        assert_eq!(lower_camel("out_len"), "outLen");
        assert_eq!(
            upper_camel("stellatune_player_play"),
            "StellatunePlayerPlay"
        );
    }

    #[test]
    fn maps_every_kind_of_parameter() {
        let out = render_text(
            "typedef uint64_t Client;\ntypedef struct Handle Handle;\n\
             typedef bool (*PostFn)(int64_t port, void *message);\n\
             int32_t stellatune_f(Client c, const char *s, char *buf, uint8_t *bytes, size_t cap,\n\
             size_t *out_len, uint64_t *out_id, void *data, Handle *h, PostFn post, float v,\n\
             double d, int64_t port, const char **list);\n\
             void stellatune_g(void);\n",
        )
        .unwrap();
        assert!(out.contains(
            "typedef StellatuneFNative = Int32 Function(Uint64 c, Pointer<Utf8> s, \
             Pointer<Utf8> buf, Pointer<Uint8> bytes, Size cap, Pointer<Size> outLen, \
             Pointer<Uint64> outId, Pointer<Void> data, Pointer<Handle> h, PostFn post, Float v, \
             Double d, Int64 port, Pointer<Pointer<Utf8>> list);"
        ));
        assert!(out.contains(
            "typedef StellatuneFDart = int Function(int c, Pointer<Utf8> s, \
             Pointer<Utf8> buf, Pointer<Uint8> bytes, int cap, Pointer<Size> outLen, \
             Pointer<Uint64> outId, Pointer<Void> data, Pointer<Handle> h, PostFn post, double v, \
             double d, int port, Pointer<Pointer<Utf8>> list);"
        ));
        assert!(out.contains("typedef StellatuneGNative = Void Function();"));
        assert!(out.contains("typedef StellatuneGDart = void Function();"));
        assert!(out.contains("typedef PostFn = Pointer<NativeFunction<PostFnNative>>;"));
        assert!(
            out.contains(
                "typedef PostFnNative = Bool Function(Int64 port, Pointer<Void> message);"
            )
        );
        assert!(out.contains("final class Handle extends Opaque {}"));
        assert!(out.contains("late final StellatuneFDart f =\n"));
        assert!(out.contains("import 'package:ffi/ffi.dart';"));
    }

    #[test]
    fn fails_on_an_unknown_type() {
        let err = render_text("int32_t stellatune_f(struct_t *x);\n").unwrap_err();
        assert!(err.to_string().contains("`struct_t *`"), "{err}");
        assert!(render_text("long stellatune_f(void);\n").is_err());
        assert!(render_text("typedef struct H H;\nint32_t stellatune_f(H h);\n").is_err());
        assert!(render_text("int32_t stellatune_f(void v);\n").is_err());
    }

    #[test]
    fn fails_on_names_that_collide_or_are_reserved() {
        assert!(
            render_text("int32_t stellatune_a_b(void);\nint32_t stellatune_a__b(void);\n").is_err()
        );
        assert!(render_text("int32_t stellatune_library(void);\n").is_err());
        assert!(render_text("int32_t stellatune_switch(void);\n").is_err());
        // A reserved parameter name is renamed instead.
        let out = render_text("int32_t stellatune_f(int32_t in);\n").unwrap();
        assert!(out.contains("Int32 Function(Int32 in_)"));
    }
}
