//! The syntax both expression lists share, before any name means anything: a comma-separated
//! list of `METRIC OP VALUE`, each part with its position for error messages. Resolving the
//! metric and checking the value's unit against it is the caller's ([`super::Threshold`],
//! [`super::goodput::Objective`]), which reports at the positions kept here.
//!
//! ```text
//! list    := item ("," item)*
//! item    := ws metric ws op ws value ws
//! metric  := (letter | digit | "_" | ".")+          e.g. response_time_p99.9
//! op      := "<=" | ">=" | "==" | "!=" | "<" | ">"
//! value   := sign? number unit? | word
//! sign    := "+" | "-"                              a change (`pacer compare --fail-if`);
//!                                                   thresholds refuse it
//! number  := digits ["." digits] | "." digits       no exponent
//! unit    := letters | "µs" | "%"                   e.g. ms, s, us, µs, %
//! word    := letter (letter | "-")*                 e.g. ok, generator-limited
//! ```

use std::fmt;

/// A comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl Op {
    /// Longest first, so `<=` is not read as `<` then `=`.
    const TEXT: [(&'static str, Op); 6] = [
        ("<=", Op::Le),
        (">=", Op::Ge),
        ("==", Op::Eq),
        ("!=", Op::Ne),
        ("<", Op::Lt),
        (">", Op::Gt),
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    /// `value OP limit`.
    pub fn holds<T: PartialOrd + ?Sized>(self, value: &T, limit: &T) -> bool {
        match self {
            Op::Lt => value < limit,
            Op::Le => value <= limit,
            Op::Gt => value > limit,
            Op::Ge => value >= limit,
            Op::Eq => value == limit,
            Op::Ne => value != limit,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The right-hand side as written.
#[derive(Clone, Debug, PartialEq)]
pub enum RawValue<'a> {
    /// A number (negative after `-`) and the unit after it (empty when none).
    Number {
        value: f64,
        unit: &'a str,
        unit_at: usize,
        /// Written with `+` or `-`: a change, which only `pacer compare --fail-if` takes.
        signed: bool,
    },
    Word(&'a str),
}

/// One `METRIC OP VALUE`, with byte offsets into the whole text.
#[derive(Clone, Debug, PartialEq)]
pub struct RawItem<'a> {
    /// The item as written, trimmed.
    pub text: &'a str,
    pub metric: &'a str,
    pub metric_at: usize,
    pub op: Op,
    pub value: RawValue<'a>,
    pub value_at: usize,
}

/// A syntax error: what was expected, at a byte offset into the text.
#[derive(Clone, Debug, PartialEq)]
pub struct SyntaxError {
    pub at: usize,
    pub msg: String,
}

fn fail<T>(at: usize, msg: impl Into<String>) -> Result<T, SyntaxError> {
    Err(SyntaxError {
        at,
        msg: msg.into(),
    })
}

/// Splits `text` at commas and reads each item.
pub fn list(text: &str) -> Result<Vec<RawItem<'_>>, SyntaxError> {
    let mut items = Vec::new();
    let mut start = 0;
    for piece in text.split(',') {
        items.push(item(text, start, start + piece.len())?);
        start += piece.len() + 1;
    }
    Ok(items)
}

fn is_metric_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// Reads the item in `text[from..to]`.
fn item(text: &str, from: usize, to: usize) -> Result<RawItem<'_>, SyntaxError> {
    let piece = &text[from..to];
    let skip_ws = |at: usize| at + text[at..to].len() - text[at..to].trim_start().len();
    let metric_at = skip_ws(from);
    if metric_at == to {
        return fail(
            metric_at,
            if text.trim().is_empty() {
                "the expression is empty"
            } else {
                "an empty item (two commas, or a comma at an end)"
            },
        );
    }
    let metric_end = text[metric_at..to]
        .find(|c: char| !is_metric_char(c))
        .map_or(to, |i| metric_at + i);
    if metric_end == metric_at {
        return fail(metric_at, "expected a metric name");
    }
    let metric = &text[metric_at..metric_end];
    let op_at = skip_ws(metric_end);
    let rest = &text[op_at..to];
    let Some(&(op_text, op)) = Op::TEXT.iter().find(|(t, _)| rest.starts_with(t)) else {
        let msg = if rest.starts_with('=') {
            "`=` is not a comparison; use `==`".to_string()
        } else if rest.is_empty() {
            format!("{metric} needs a comparison: <, <=, >, >=, == or != and a value")
        } else {
            format!(
                "expected a comparison (<, <=, >, >=, ==, !=) after {metric}, found {:?}",
                first_char(rest)
            )
        };
        return fail(op_at, msg);
    };
    let value_at = skip_ws(op_at + op_text.len());
    let rest = &text[value_at..to];
    let sign = rest
        .strip_prefix(['+', '-'])
        .filter(|r| r.starts_with(|c: char| c.is_ascii_digit() || c == '.'))
        .map(|_| rest.starts_with('-'));
    let number_at = value_at + usize::from(sign.is_some());
    let rest = &text[number_at..to];
    let (value, value_end) = if rest.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..digits];
        let value = match number.parse::<f64>() {
            Ok(v) if number.bytes().any(|b| b.is_ascii_digit()) => v,
            _ => return fail(number_at, format!("{number:?} is not a number")),
        };
        // `200 ms` reads as `200ms`.
        let unit_at = skip_ws(number_at + digits);
        let unit_len = text[unit_at..to]
            .find(|c: char| !(c.is_alphabetic() || c == '%'))
            .unwrap_or(to - unit_at);
        let unit = &text[unit_at..unit_at + unit_len];
        (
            RawValue::Number {
                value: if sign == Some(true) { -value } else { value },
                unit,
                unit_at,
                signed: sign.is_some(),
            },
            if unit_len == 0 {
                number_at + digits
            } else {
                unit_at + unit_len
            },
        )
    } else if rest.starts_with(|c: char| c.is_ascii_alphabetic()) {
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .unwrap_or(rest.len());
        (RawValue::Word(&rest[..len]), value_at + len)
    } else if rest.is_empty() {
        return fail(value_at, format!("expected a value after {op_text}"));
    } else {
        return fail(
            value_at,
            format!(
                "expected a value after {op_text}, found {:?}",
                first_char(rest)
            ),
        );
    };
    let end = skip_ws(value_end);
    if end != to {
        return fail(
            end,
            format!(
                "unexpected {:?} after the value (one comparison per item; separate items \
                 with commas)",
                first_char(&text[end..to])
            ),
        );
    }
    Ok(RawItem {
        text: piece.trim(),
        metric,
        metric_at,
        op,
        value,
        value_at,
    })
}

fn first_char(s: &str) -> String {
    s.chars().next().map(String::from).unwrap_or_default()
}

/// The 1-based character position of byte offset `at` in `text`, as a person counts.
pub fn column(text: &str, at: usize) -> usize {
    text.get(..at).map_or(at, |s| s.chars().count()) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(text: &str) -> RawItem<'_> {
        let mut l = list(text).unwrap();
        assert_eq!(l.len(), 1);
        l.remove(0)
    }

    #[test]
    fn items_with_and_without_spaces() {
        let i = one("response_time_p99<=200ms");
        assert_eq!(
            (i.metric, i.op, i.metric_at),
            ("response_time_p99", Op::Le, 0)
        );
        assert_eq!(
            i.value,
            RawValue::Number {
                value: 200.0,
                unit: "ms",
                unit_at: 22,
                signed: false
            }
        );
        let i = one("  response_time_p99.9 <  1.5 s ");
        assert_eq!(
            (i.metric, i.op, i.text),
            (
                "response_time_p99.9",
                Op::Lt,
                "response_time_p99.9 <  1.5 s"
            )
        );
        assert!(matches!(
            i.value,
            RawValue::Number {
                value: 1.5,
                unit: "s",
                ..
            }
        ));
        assert_eq!(
            one("a<=200 ms").value,
            RawValue::Number {
                value: 200.0,
                unit: "ms",
                unit_at: 7,
                signed: false
            }
        );
        assert_eq!(
            one("health==generator-limited").value,
            RawValue::Word("generator-limited")
        );
        assert!(matches!(
            one("error_rate<=1%").value,
            RawValue::Number {
                value: 1.0,
                unit: "%",
                ..
            }
        ));
        assert!(matches!(
            one("time_to_first_token<250µs").value,
            RawValue::Number {
                value: 250.0,
                unit: "µs",
                ..
            }
        ));
        assert!(matches!(
            one("x>=.5").value,
            RawValue::Number { value: 0.5, .. }
        ));
        for (text, op) in [
            ("a<1", Op::Lt),
            ("a<=1", Op::Le),
            ("a>1", Op::Gt),
            ("a>=1", Op::Ge),
            ("a==1", Op::Eq),
            ("a!=1", Op::Ne),
        ] {
            assert_eq!(one(text).op, op, "{text}");
            assert_eq!(op.as_str(), &text[1..text.len() - 1]);
        }
    }

    #[test]
    fn changes_carry_their_sign() {
        assert_eq!(
            one("response_time_p99>+10%").value,
            RawValue::Number {
                value: 10.0,
                unit: "%",
                unit_at: 21,
                signed: true
            }
        );
        assert_eq!(
            one("achieved_qps < -5 %").value,
            RawValue::Number {
                value: -5.0,
                unit: "%",
                unit_at: 18,
                signed: true
            }
        );
        assert!(matches!(
            one("mean_latency>-.5ms").value,
            RawValue::Number {
                value: -0.5,
                unit: "ms",
                signed: true,
                ..
            }
        ));
        assert_eq!(one("a>-1").value_at, 2, "the value starts at its sign");
    }

    #[test]
    fn lists_keep_positions_in_the_whole_text() {
        let text = "time_to_first_token<=200ms, time_per_output_token<=50ms";
        let l = list(text).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[1].metric, "time_per_output_token");
        assert_eq!(l[1].metric_at, 28);
        assert_eq!(&text[l[1].value_at..], "50ms");
    }

    #[test]
    fn errors_point_at_the_problem() {
        let at = |text: &str| {
            let e = list(text).unwrap_err();
            (column(text, e.at), e.msg)
        };
        assert_eq!(at(""), (1, "the expression is empty".into()));
        assert_eq!(at("   "), (4, "the expression is empty".into()));
        assert_eq!(
            at("a<1,,b<2"),
            (5, "an empty item (two commas, or a comma at an end)".into())
        );
        assert_eq!(at("a<1,").0, 5);
        assert_eq!(
            at("response_time_p99"),
            (
                18,
                "response_time_p99 needs a comparison: <, <=, >, >=, == or != and a value".into()
            )
        );
        assert_eq!(at("p99=1"), (4, "`=` is not a comparison; use `==`".into()));
        assert_eq!(
            at("p99 ~ 1"),
            (
                5,
                "expected a comparison (<, <=, >, >=, ==, !=) after p99, found \"~\"".into()
            )
        );
        assert_eq!(at("p99<="), (6, "expected a value after <=".into()));
        assert_eq!(
            at("p99<=-x"),
            (6, "expected a value after <=, found \"-\"".into())
        );
        assert_eq!(
            at("p99<=+"),
            (6, "expected a value after <=, found \"+\"".into())
        );
        assert_eq!(at("p99<=1.2.3"), (6, "\"1.2.3\" is not a number".into()));
        assert_eq!(at("p99<=."), (6, "\".\" is not a number".into()));
        assert_eq!(
            at("p99<=1ms 2"),
            (
                10,
                "unexpected \"2\" after the value (one comparison per item; separate items with \
                 commas)"
                    .into()
            )
        );
        assert_eq!(at("p99<=1 && a<2").0, 8);
        assert_eq!(at("<1").0, 1);
        // Positions count characters, not bytes.
        assert_eq!(at("µ<1").0, 1);
        assert_eq!(at("a<1µs b").0, 7);
    }
}
