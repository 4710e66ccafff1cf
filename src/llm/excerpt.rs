//! How much of a file's own text an error message may carry.
//!
//! serde quotes the values it refuses (`invalid type: string "…", expected a sequence`,
//! ``unknown variant `…` ``), so a parse error of a data set line or a `tokenizer.json` can carry
//! the file's text, and the `tokenizers` crate its own (``Unknown tokenizer version '…'``). The
//! API server reads those files on a request's behalf and answers with the
//! error, so every quoted run is cut to [`MAX_EXCERPT_CHARS`] and the whole message to
//! [`MAX_MESSAGE_CHARS`]: enough to find the bad value, never the file.

/// The longest quoted run kept, in characters.
pub const MAX_EXCERPT_CHARS: usize = 80;

/// The longest message kept, in characters: a backstop for text outside quotes (serde's own
/// words and lists of expected names are far shorter).
pub const MAX_MESSAGE_CHARS: usize = 400;

/// `message` with each `"…"` run (backslash escapes honoured), each `` `…` `` and each `'…'` run cut to
/// [`MAX_EXCERPT_CHARS`] characters, an ellipsis marking the cut, and the whole cut to
/// [`MAX_MESSAGE_CHARS`].
pub fn bounded(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_MESSAGE_CHARS + 8));
    let mut chars = message.chars();
    let mut total = 0;
    while let Some(c) = chars.next() {
        if total >= MAX_MESSAGE_CHARS {
            out.push('…');
            break;
        }
        out.push(c);
        total += 1;
        if !matches!(c, '"' | '`' | '\'') {
            continue;
        }
        let close = c;
        let (mut kept, mut escaping, mut cut) = (0, false, false);
        let mut closed = false;
        for d in chars.by_ref() {
            if d == close && !escaping {
                closed = true;
                break;
            }
            escaping = close == '"' && d == '\\' && !escaping;
            if kept < MAX_EXCERPT_CHARS && total < MAX_MESSAGE_CHARS {
                out.push(d);
                kept += 1;
                total += 1;
            } else {
                cut = true;
            }
        }
        if cut {
            out.push('…');
        }
        if closed {
            out.push(close);
            total += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_messages_pass_unchanged() {
        for m in [
            "",
            "expected a JSON object with \"prompt\" (a string)",
            "unknown variant `BPX`, expected one of `BPE`, `WordPiece`",
            "invalid type: string \"a \\\"quoted\\\" word\", expected a sequence",
            "an unclosed \"quote",
        ] {
            assert_eq!(bounded(m), m);
        }
    }

    #[test]
    fn quoted_runs_are_cut() {
        let long = "s".repeat(1000);
        let m = format!("invalid type: string \"{long}\", expected a sequence (column 9)");
        let want = format!(
            "invalid type: string \"{}…\", expected a sequence (column 9)",
            "s".repeat(MAX_EXCERPT_CHARS)
        );
        assert_eq!(bounded(&m), want);
        let m = format!("unknown variant `{long}`, expected `BPE`");
        assert_eq!(
            bounded(&m),
            format!("unknown variant `{}…`, expected `BPE`", "s".repeat(80))
        );
        let m = format!("Unknown tokenizer version '{long}'");
        assert_eq!(
            bounded(&m),
            format!("Unknown tokenizer version '{}…'", "s".repeat(80))
        );
        // An escaped quote does not end the run; the cut still holds past it.
        let m = format!("string \"{}\\\"{long}\" end", "a".repeat(10));
        let kept = format!("{}\\\"{}", "a".repeat(10), "s".repeat(80 - 12));
        assert_eq!(bounded(&m), format!("string \"{kept}…\" end"));
    }

    #[test]
    fn the_whole_message_is_capped() {
        let m = format!("\"{}", "x".repeat(5000));
        assert_eq!(bounded(&m), format!("\"{}…", "x".repeat(MAX_EXCERPT_CHARS)));
        let m = "y".repeat(5000);
        let b = bounded(&m);
        assert_eq!(b.chars().count(), MAX_MESSAGE_CHARS + 1);
        assert!(b.ends_with('…'));
        // Many short quoted runs cannot add up to more than the cap either.
        let m = "\"ab\" ".repeat(2000);
        let b = bounded(&m);
        assert!(b.chars().count() <= MAX_MESSAGE_CHARS + 3, "{b}");
        assert!(b.ends_with('…'), "{b}");
    }
}
