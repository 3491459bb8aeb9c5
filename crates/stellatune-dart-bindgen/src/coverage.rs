//! Checks that the Dart package's hand-written layer (`lib/src/*.dart` except the generated
//! `bindings.g.dart`) covers the C ABI: every function of the header is called somewhere in
//! it, and every event type `docs/ffi.md` documents has a case in `events.dart` that reads
//! every field of the documented JSON. There is no Dart SDK where the tests run, so the
//! Dart text is read as text: comments are removed first (a call that is only mentioned in a
//! comment, or commented out, does not count), string literals are kept.

use std::collections::BTreeSet;

use crate::dart::member_name;

/// The hand-written layer's directory from the workspace root.
pub const DART_SOURCES: &str = "bindings/dart/stellatune_runtime/lib/src";
/// The file of the typed events, in [`DART_SOURCES`].
pub const EVENTS_FILE: &str = "events.dart";
/// The C ABI reference that documents every event type.
pub const FFI_DOC: &str = "docs/ffi.md";

/// `source` with every Dart comment (`//`, `///`, `/* */`, nested) replaced by nothing but
/// the line breaks it held, so line numbers stay. Strings (raw, triple-quoted, with `${}`
/// interpolation) are kept as they are: a `//` inside one is no comment.
pub fn strip_comments(source: &str) -> String {
    enum Context {
        /// Code; `braces` counts the `{` open inside it, so the `}` that closes a string
        /// interpolation is told from a block's.
        Code {
            braces: usize,
        },
        Str {
            quote: &'static [u8],
            raw: bool,
        },
    }
    let src = source.as_bytes();
    let mut out = Vec::with_capacity(src.len());
    let mut stack = vec![Context::Code { braces: 0 }];
    let mut i = 0;
    while i < src.len() {
        let rest = &src[i..];
        let nested = stack.len() > 1;
        match stack.last_mut() {
            Some(Context::Code { braces }) => {
                if rest.starts_with(b"//") {
                    while i < src.len() && src[i] != b'\n' {
                        i += 1;
                    }
                } else if rest.starts_with(b"/*") {
                    let mut depth = 0usize;
                    while i < src.len() {
                        if src[i..].starts_with(b"/*") {
                            depth += 1;
                            i += 2;
                        } else if src[i..].starts_with(b"*/") {
                            depth -= 1;
                            i += 2;
                            if depth == 0 {
                                break;
                            }
                        } else {
                            if src[i] == b'\n' {
                                out.push(b'\n');
                            }
                            i += 1;
                        }
                    }
                } else if src[i] == b'\'' || src[i] == b'"' {
                    let quote: &'static [u8] = match rest {
                        [b'\'', b'\'', b'\'', ..] => b"'''",
                        [b'"', b'"', b'"', ..] => b"\"\"\"",
                        [b'\'', ..] => b"'",
                        _ => b"\"",
                    };
                    // `r'...'`: an `r` right before the quote that does not end a name.
                    let raw =
                        out.last() == Some(&b'r')
                            && !out.len().checked_sub(2).map(|k| out[k]).is_some_and(|c| {
                                c.is_ascii_alphanumeric() || c == b'_' || c == b'$'
                            });
                    out.extend_from_slice(quote);
                    i += quote.len();
                    stack.push(Context::Str { quote, raw });
                } else {
                    match src[i] {
                        b'{' => *braces += 1,
                        b'}' if *braces == 0 && nested => {
                            // The end of a `${...}` interpolation: back into its string.
                            stack.pop();
                        }
                        b'}' => *braces = braces.saturating_sub(1),
                        _ => {}
                    }
                    out.push(src[i]);
                    i += 1;
                }
            }
            Some(Context::Str { quote, raw }) => {
                let (quote, raw) = (*quote, *raw);
                if !raw && src[i] == b'\\' {
                    out.extend_from_slice(&src[i..(i + 2).min(src.len())]);
                    i += 2;
                } else if rest.starts_with(quote) {
                    out.extend_from_slice(quote);
                    i += quote.len();
                    stack.pop();
                } else if !raw && rest.starts_with(b"${") {
                    out.extend_from_slice(b"${");
                    i += 2;
                    stack.push(Context::Code { braces: 0 });
                } else {
                    out.push(src[i]);
                    i += 1;
                }
            }
            None => break,
        }
    }
    // Only whole comments were left out, and they end at ASCII bytes: still UTF-8.
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether `code` (comments stripped) calls the bindings' member for the C function
/// `function`, i.e. holds `.playerPlay(` for `stellatune_player_play`.
pub fn calls(code: &str, function: &str) -> bool {
    code.contains(&format!(".{}(", member_name(function)))
}

/// The functions of `functions` that `code` never calls.
pub fn uncalled<'a>(functions: impl IntoIterator<Item = &'a str>, code: &str) -> Vec<String> {
    functions
        .into_iter()
        .filter(|f| !calls(code, f))
        .map(str::to_owned)
        .collect()
}

/// One event type as `docs/ffi.md` documents it.
#[derive(Debug, Clone, PartialEq)]
pub struct DocumentedEvent {
    /// The `type`, e.g. `track_started`.
    pub name: String,
    /// Every key of the example JSON other than `type`, nested objects' keys included, in
    /// the order they appear.
    pub keys: Vec<String>,
}

/// The rows of the tables in the section of `doc` whose `## ` heading starts with
/// `heading` (up to the next `## ` heading), of tables whose header row's first cell is
/// `first_header`: each row's cells, trimmed, for every row whose first cell is a code span
/// (the `| --- |` line and rows of other tables are left out). An error when there is no
/// such section or no such row.
pub fn section_rows(
    doc: &str,
    heading: &str,
    first_header: &str,
) -> Result<Vec<Vec<String>>, String> {
    let doc = doc.replace("\r\n", "\n");
    let mut in_section = false;
    let mut found_section = false;
    let mut in_table = false;
    let mut rows = Vec::new();
    for line in doc.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            in_section = title.trim().starts_with(heading);
            found_section |= in_section;
            in_table = false;
            continue;
        }
        if !in_section {
            continue;
        }
        let Some(row) = line.trim().strip_prefix('|') else {
            in_table = false;
            continue;
        };
        let cells: Vec<String> = row
            .trim_end_matches('|')
            .split('|')
            .map(|cell| cell.trim().to_owned())
            .collect();
        let first = cells.first().map(String::as_str).unwrap_or_default();
        if first == first_header {
            in_table = true;
            continue;
        }
        if in_table && code_span_only(first).is_some() {
            rows.push(cells);
        }
    }
    if !found_section {
        return Err(format!("no `## {heading}` section"));
    }
    if rows.is_empty() {
        return Err(format!(
            "the `## {heading}` section has no `| {first_header} |` table rows"
        ));
    }
    Ok(rows)
}

/// The text of a cell that is exactly one code span: `` `name` `` → `name`.
fn code_span_only(cell: &str) -> Option<&str> {
    let inner = cell.strip_prefix('`')?.strip_suffix('`')?;
    (!inner.is_empty() && !inner.contains('`')).then_some(inner)
}

/// The event types of the tables under the `## Events` heading of `docs/ffi.md`: every row
/// of a table whose header's first cell is `type`, with the keys of its example JSON.
pub fn documented_events(doc: &str) -> Result<Vec<DocumentedEvent>, String> {
    Ok(section_rows(doc, "Events", "type")?
        .into_iter()
        .map(|cells| DocumentedEvent {
            name: code_span_only(&cells[0]).unwrap_or_default().to_owned(),
            keys: json_keys(
                cells
                    .get(1)
                    .and_then(|c| first_code_span(c))
                    .unwrap_or_default(),
            ),
        })
        .collect())
}

/// The JSON keys a section of `docs/ffi.md` documents in a `| key | ... |` table (the
/// runtime's configuration, the ReplayGain settings), in order.
pub fn documented_keys(doc: &str, heading: &str) -> Result<Vec<String>, String> {
    Ok(section_rows(doc, heading, "key")?
        .into_iter()
        .map(|cells| code_span_only(&cells[0]).unwrap_or_default().to_owned())
        .collect())
}

/// The keys of `keys` that `code` (comments stripped) never writes or reads as a `'key'`
/// string literal.
pub fn unused_keys<'a>(keys: impl IntoIterator<Item = &'a String>, code: &str) -> Vec<String> {
    keys.into_iter()
        .filter(|key| !code.contains(&format!("'{key}'")))
        .cloned()
        .collect()
}

/// The text of the first `` `...` `` span of a table cell.
fn first_code_span(cell: &str) -> Option<&str> {
    let start = cell.find('`')? + 1;
    let len = cell[start..].find('`')?;
    Some(&cell[start..start + len])
}

/// Every `"key":` of a JSON text (also of an abridged example such as `"payload":{...}`),
/// except `type`, each once, in order.
fn json_keys(json: &str) -> Vec<String> {
    let mut keys = Vec::new();
    let mut rest = json;
    while let Some(open) = rest.find('"') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('"') else { break };
        let word = &after[..close];
        let tail = &after[close + 1..];
        if tail.trim_start().starts_with(':') {
            if word != "type" && !keys.iter().any(|k| k == word) {
                keys.push(word.to_owned());
            }
            rest = tail;
        } else {
            // A string value: skip past it.
            rest = tail;
        }
    }
    keys
}

/// The event types `events.dart` (comments stripped) has a case for: every `'name' =>` in
/// its code.
pub fn event_cases(code: &str) -> BTreeSet<String> {
    let mut cases = BTreeSet::new();
    for (index, _) in code.match_indices("' =>") {
        let before = &code[..index];
        if let Some(open) = before.rfind('\'') {
            let name = &before[open + 1..];
            if !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                cases.insert(name.to_owned());
            }
        }
    }
    cases
}

/// What the events file misses of the documented events: one line per gap (a type without
/// a case, a documented key the file never reads as `'key'`, a case for a type the
/// documentation does not have). Empty when it covers them.
pub fn event_gaps(documented: &[DocumentedEvent], events_code: &str) -> Vec<String> {
    let cases = event_cases(events_code);
    let mut gaps = Vec::new();
    for event in documented {
        if !cases.contains(&event.name) {
            gaps.push(format!(
                "event `{}` has no `'{}' =>` case",
                event.name, event.name
            ));
            continue;
        }
        for key in &event.keys {
            if !events_code.contains(&format!("'{key}'")) {
                gaps.push(format!(
                    "event `{}`: the field `{key}` is never read (no `'{key}'`)",
                    event.name
                ));
            }
        }
    }
    for case in &cases {
        if !documented.iter().any(|e| &e.name == case) {
            gaps.push(format!(
                "`'{case}' =>` handles an event type the documentation does not list"
            ));
        }
    }
    gaps
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_go_strings_stay() {
        let src = "a(); // b();\n/// c();\nd(/* e(); /* nested */ f(); */ 1);\n\
                   final s = 'x // not a comment';\nfinal t = \"y /* nor this */\";\n";
        let code = strip_comments(src);
        assert_eq!(
            code,
            "a(); \n\nd( 1);\nfinal s = 'x // not a comment';\nfinal t = \"y /* nor this */\";\n"
        );
    }

    #[test]
    fn interpolation_and_raw_strings() {
        let src = "final a = '${x.playerPlay(1)}'; // gone\n\
                   final b = r'\\'; b.playerStop(2); // gone\n\
                   final c = '''it's ${ {1: 2}[1] } // kept''';\n\
                   final d = \"\\\"\"; // gone\n\
                   var r = 1; final e = r; f('x'); // gone\n";
        let code = strip_comments(src);
        assert!(!code.contains("gone"), "{code}");
        assert!(code.contains("${x.playerPlay(1)}"));
        assert!(code.contains("b.playerStop(2);"));
        assert!(code.contains("// kept'''"));
        assert!(calls(&code, "stellatune_player_play"));
        assert!(calls(&code, "stellatune_player_stop"));
    }

    #[test]
    fn a_call_counts_a_mention_does_not() {
        let code = strip_comments(
            "void f(StellatuneBindings b) {\n  b.playerPause(1);\n  // b.playerResume(1);\n  \
             /// `stellatune_player_stop`, [StellatuneBindings.playerStop]\n  \
             b.playerPlayNext(1);\n  x.notplayerSeekMs(1);\n}\n",
        );
        assert_eq!(
            uncalled(
                [
                    "stellatune_player_pause",
                    "stellatune_player_resume",
                    "stellatune_player_stop",
                    "stellatune_player_play",
                    "stellatune_player_seek_ms",
                ],
                &code
            ),
            [
                "stellatune_player_resume",
                "stellatune_player_stop",
                "stellatune_player_play",
                "stellatune_player_seek_ms",
            ]
        );
    }

    const DOC: &str = "# T\n\n## Events\n\nIntro.\n\n| type | JSON | when |\n| --- | --- | --- |\n\
        | `state_changed` | `{\"type\":\"state_changed\",\"state\":\"playing\"}` (`\"stopped\"`) | x |\n\
        | `track_started` | `{\"type\":\"track_started\",\"track_id\":1,\"tags\":{\"title\":\"Song\",\"artist\":null}}` | y |\n\
        | `plugin_event` | `{\"type\":\"plugin_event\",\"kind\":\"k\",\"payload\":{...}}` | z |\n\n\
        Client-scoped:\n\n| type | JSON | when |\n| --- | --- | --- |\n\
        | `heartbeat` | `{\"type\":\"heartbeat\"}` | w |\n\n\
        ## Metrics\n\n| type | JSON |\n| --- | --- |\n| `not_an_event` | `{}` |\n";

    #[test]
    fn reads_the_event_tables_of_the_events_section_only() {
        let events = documented_events(DOC).unwrap();
        let names: Vec<_> = events.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "state_changed",
                "track_started",
                "plugin_event",
                "heartbeat"
            ]
        );
        assert_eq!(events[0].keys, ["state"]);
        assert_eq!(events[1].keys, ["track_id", "tags", "title", "artist"]);
        assert_eq!(events[2].keys, ["kind", "payload"]);
        assert!(events[3].keys.is_empty());
        assert_eq!(
            documented_events(&DOC.replace('\n', "\r\n")).unwrap(),
            events
        );
        assert!(documented_events("# T\n").is_err());
        assert!(documented_events("## Events\n\nnothing\n").is_err());
    }

    #[test]
    fn reads_key_tables_of_the_named_section() {
        let doc = "## Configuration (`init`)\n\n| key | type |\n| --- | --- |\n\
                   | `data_dir` | string |\n| `replaygain` | `\"off\"` |\n\n\
                   ## Loudness\n\n| key | values |\n| --- | --- |\n| `mode` | x |\n";
        let keys = documented_keys(doc, "Configuration").unwrap();
        assert_eq!(keys, ["data_dir", "replaygain"]);
        assert_eq!(documented_keys(doc, "Loudness").unwrap(), ["mode"]);
        assert!(documented_keys(doc, "Events").is_err());
        assert_eq!(
            unused_keys(&keys, "{'data_dir': d, 'replay_gain': r}"),
            ["replaygain"]
        );
        assert!(unused_keys(&keys, "{'data_dir': d, 'replaygain': r}").is_empty());
    }

    #[test]
    fn finds_missing_cases_fields_and_stale_cases() {
        let events = documented_events(DOC).unwrap();
        let full = "switch (j['type']) {\n  'state_changed' => S(j['state']),\n  \
                    'track_started' => T(j['track_id'], j['tags'], t['title'], t['artist']),\n  \
                    'plugin_event' => P(j['kind'], j['payload']),\n  'heartbeat' => H(j),\n}";
        assert!(event_gaps(&events, full).is_empty());

        let no_artist = full.replace(", t['artist']", "");
        assert_eq!(
            event_gaps(&events, &no_artist),
            ["event `track_started`: the field `artist` is never read (no `'artist'`)"]
        );
        let commented = strip_comments(&full.replace("  'heartbeat'", "  // 'heartbeat'"));
        assert_eq!(
            event_gaps(&events, &commented),
            ["event `heartbeat` has no `'heartbeat' =>` case"]
        );
        let stale = full.replace(
            "  'heartbeat' => H(j),",
            "  'heartbeat' => H(j),\n  'gone' => G(j),",
        );
        assert_eq!(
            event_gaps(&events, &stale),
            ["`'gone' =>` handles an event type the documentation does not list"]
        );
    }
}
