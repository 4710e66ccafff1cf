//! The workload side of an LLM run, through the library: data sets from files, their order,
//! request bodies once per distinct prompt, and synthetic prompts cut to exact token counts by
//! tokenizers that the tests build and write as `tokenizer.json` files.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use pacer::llm::synth::CORPUS;
use pacer::llm::{
    Api, Bodies, BodyTemplate, Dataset, DatasetError, LengthDist, LoadOptions, Order, PayloadStyle,
    Prompt, Synthesizer, Tokenizer, approx_tokens, draw_max_tokens,
};
use pacer::rng::SplitMix64;
use serde_json::{Value, json};
use tokenizers::Model;
use tokenizers::models::TrainerWrapper;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;

/// A fresh directory for one test's files, removed when the test ends.
struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("pacer-workload-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

fn write(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// Text the fixtures are also trained on and the tests count: punctuation, digits, accents,
/// quotes, newlines.
const EXTRA: &str = "It's 3:15 -- \"don't\" they'll say; 12,345 apples (and 6.5 pears)!\n\
                     Café naïve résumé: 東京 and Zürich.\r\n  Tabs\tand  double  spaces.";

/// `\w+|[^\w\s]+` runs, as the `Whitespace` pre-tokenizer splits.
fn whitespace_pieces(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let mut current = String::new();
    let mut word = false;
    for c in text.chars() {
        if c.is_whitespace() {
            if !current.is_empty() {
                pieces.push(std::mem::take(&mut current));
            }
            continue;
        }
        let w = c.is_alphanumeric() || c == '_';
        if !current.is_empty() && w != word {
            pieces.push(std::mem::take(&mut current));
        }
        word = w;
        current.push(c);
    }
    if !current.is_empty() {
        pieces.push(current);
    }
    pieces
}

/// The template post-processor that puts `<s>` (id 0) before a sequence, as Llama's does.
fn bos_processor() -> Value {
    json!({
        "type": "TemplateProcessing",
        "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                 {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<s>": {"id": "<s>", "ids": [0], "tokens": ["<s>"]}}
    })
}

fn bos_added_token() -> Value {
    json!({"id": 0, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false,
           "normalized": false, "special": true})
}

/// A WordLevel tokenizer over every piece of the corpus and [`EXTRA`], written as JSON by hand.
fn word_level(dir: &Path, bos: bool) -> PathBuf {
    let mut vocab = serde_json::Map::new();
    vocab.insert("<s>".into(), json!(0));
    vocab.insert("[UNK]".into(), json!(1));
    for piece in whitespace_pieces(CORPUS)
        .into_iter()
        .chain(whitespace_pieces(EXTRA))
    {
        let id = vocab.len();
        vocab.entry(piece).or_insert(json!(id));
    }
    let tokenizer = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": if bos { json!([bos_added_token()]) } else { json!([]) },
        "normalizer": null,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": if bos { bos_processor() } else { Value::Null },
        "decoder": null,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"}
    });
    let name = if bos {
        "wordlevel-bos.json"
    } else {
        "wordlevel.json"
    };
    write(dir, name, &tokenizer.to_string())
}

/// The GPT-2 pre-tokenizer: byte-level with its own regex (lookahead: fancy-regex's job).
fn gpt2_pre_tokenizer() -> Value {
    json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true})
}

/// Llama 3's pre-tokenizer: its split regex, then bytes.
fn llama3_pre_tokenizer() -> Value {
    let pattern = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
    json!({"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": false},
        {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}
    ]})
}

/// A byte-level BPE trained here on the corpus and [`EXTRA`] with a small vocabulary, so words
/// split into pieces and some decoded id runs re-encode differently: the case the exact cut must
/// handle.
fn byte_bpe(dir: &Path, name: &str, pre_tokenizer: Value, bos: bool, vocab_size: usize) -> PathBuf {
    let config = json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": [],
        "normalizer": null,
        "pre_tokenizer": pre_tokenizer,
        "post_processor": if bos { bos_processor() } else { Value::Null },
        "decoder": {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true},
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null,
                  "end_of_word_suffix": null, "fuse_unk": false, "byte_fallback": false,
                  "ignore_merges": false, "vocab": {}, "merges": []}
    });
    let mut tokenizer = tokenizers::Tokenizer::from_str(&config.to_string()).unwrap();
    let mut trainer = tokenizer.get_model().get_trainer();
    let TrainerWrapper::BpeTrainer(bpe) = &mut trainer else {
        panic!("a BPE model trains with a BPE trainer")
    };
    bpe.vocab_size = vocab_size;
    bpe.show_progress = false;
    bpe.initial_alphabet = ByteLevel::alphabet();
    if bos {
        bpe.special_tokens = vec![tokenizers::AddedToken::from("<s>", true)];
    }
    let lines: Vec<&str> = CORPUS.lines().chain(EXTRA.lines()).collect();
    tokenizer.train(&mut trainer, lines.into_iter()).unwrap();
    let path = dir.join(name);
    tokenizer.save(&path, false).unwrap();
    path
}

/// Every fixture: (what it is, its file).
fn fixtures(dir: &Path) -> Vec<(&'static str, PathBuf)> {
    vec![
        ("wordlevel", word_level(dir, false)),
        ("wordlevel+bos", word_level(dir, true)),
        (
            "gpt2-bpe",
            byte_bpe(dir, "gpt2.json", gpt2_pre_tokenizer(), false, 400),
        ),
        (
            "llama3-bpe+bos",
            byte_bpe(dir, "llama3.json", llama3_pre_tokenizer(), true, 600),
        ),
    ]
}

/// Lengths from 1 to past the corpus's length (so it wraps), dense at the small end.
const SIZES: &[usize] = &[
    1, 2, 3, 4, 5, 7, 8, 13, 16, 31, 50, 64, 100, 127, 200, 256, 500, 1000, 1500, 3000,
];

#[test]
fn synthetic_prompts_have_exactly_the_asked_token_counts() {
    let dir = temp_dir("exact");
    for (what, path) in fixtures(&dir) {
        let tokenizer = Tokenizer::from_file(&path).unwrap();
        let special = tokenizer.special_tokens();
        assert_eq!(special, usize::from(what.ends_with("+bos")), "{what}");
        for prefix in [0, 1, 7, 50] {
            let synth = Synthesizer::new(Some(&tokenizer), prefix).unwrap();
            assert!(synth.is_exact());
            assert_eq!(synth.min_tokens(), special + prefix + 1);
            let prefix_ids = tokenizer.encode(synth.prefix()).unwrap();
            assert_eq!(prefix_ids.len(), prefix, "{what}: prefix {prefix}");
            for (i, &size) in SIZES.iter().enumerate() {
                let p = synth.prompt(i as u64 * 31, size).unwrap();
                let expected = size.max(synth.min_tokens());
                let label = format!("{what}, prefix {prefix}, size {size}");
                assert_eq!(p.tokens, expected, "{label}");
                assert_eq!(
                    tokenizer.count_prompt(&p.text).unwrap(),
                    expected,
                    "{label}"
                );
                assert_eq!(
                    tokenizer.count(&p.text).unwrap(),
                    expected - special,
                    "{label}"
                );
                assert!(p.text.starts_with(synth.prefix()), "{label}");
                let ids = tokenizer.encode(&p.text).unwrap();
                assert_eq!(
                    ids[..prefix],
                    prefix_ids[..],
                    "{label}: the prefix's tokens"
                );
                // The same index and size give the same prompt.
                assert_eq!(synth.prompt(i as u64 * 31, size).unwrap(), p, "{label}");
            }
        }
    }
}

#[test]
fn synthetic_prompts_differ_after_the_prefix() {
    let dir = temp_dir("distinct");
    let path = byte_bpe(&dir, "gpt2.json", gpt2_pre_tokenizer(), false, 400);
    let tokenizer = Tokenizer::from_file(&path).unwrap();
    let synth = Synthesizer::new(Some(&tokenizer), 32).unwrap();
    // Bodies start at words; past the last one, a new round.
    let corpus_tokens = tokenizer.word_starts(CORPUS).unwrap().len() as u64;
    assert!(corpus_tokens as usize >= CORPUS.split_whitespace().count());
    // Past the corpus's length too, where bodies start with their round's number.
    let indices: Vec<u64> = (0..300)
        .chain(corpus_tokens - 5..corpus_tokens + 300)
        .collect();
    let mut seen = HashSet::new();
    for &i in &indices {
        let p = synth.prompt(i, 64).unwrap();
        assert_eq!(p.tokens, 64, "index {i}");
        assert!(p.text.starts_with(synth.prefix()));
        assert!(seen.insert(p.text), "index {i} repeats an earlier prompt");
    }
    // The first body tokens differ from one prompt to the next (no accidental shared prefix
    // beyond the asked one).
    let body_start = |i: u64| {
        tokenizer
            .encode(&synth.prompt(i, 64).unwrap().text)
            .unwrap()[32..40]
            .to_vec()
    };
    let firsts: HashSet<Vec<u32>> = (0..200).map(body_start).collect();
    assert!(
        firsts.len() > 190,
        "{} distinct body starts of 200",
        firsts.len()
    );
}

#[test]
fn approximate_prompts_without_a_tokenizer() {
    let synth = Synthesizer::new(None, 0).unwrap();
    assert!(!synth.is_exact());
    for &size in SIZES {
        let p = synth.prompt(3, size).unwrap();
        let words = p.text.split_whitespace().count();
        assert_eq!(
            words,
            ((size as f64 * 0.75).round() as usize).max(1),
            "size {size}"
        );
        assert_eq!(p.tokens, size);
        // The inverse rule agrees within rounding.
        assert!(approx_tokens(&p.text).abs_diff(size) <= 1, "size {size}");
    }
    let synth = Synthesizer::new(None, 40).unwrap();
    assert_eq!(synth.prefix().split_whitespace().count(), 30);
    let a = synth.prompt(0, 100).unwrap();
    let b = synth.prompt(1, 100).unwrap();
    assert!(a.text.starts_with(synth.prefix()) && b.text.starts_with(synth.prefix()));
    assert_ne!(a.text, b.text);
    assert_eq!(a.text.split_whitespace().count(), 30 + 45);
    // Asked below the prefix: the prefix and one token of body.
    assert_eq!(synth.prompt(0, 10).unwrap().tokens, 41);
    let words = CORPUS.split_whitespace().count() as u64;
    let texts: HashSet<String> = (0..words * 2)
        .map(|i| synth.prompt(i, 60).unwrap().text)
        .collect();
    assert_eq!(
        texts.len() as u64,
        words * 2,
        "bodies differ past the corpus's length"
    );
}

#[test]
fn tokenizer_files_that_cannot_be_used_are_refused_with_their_path() {
    let dir = temp_dir("bad-tokenizer");
    let missing = dir.join("missing.json");
    let e = Tokenizer::from_file(&missing).unwrap_err();
    assert_eq!(e.path, missing);
    assert!(e.to_string().contains(&*missing.to_string_lossy()), "{e}");

    for (name, contents) in [
        ("not-json.json", "this is not json"),
        ("empty.json", ""),
        ("not-a-tokenizer.json", r#"{"model": {"type": "Nope"}}"#),
        (
            "truncated.json",
            r#"{"version": "1.0", "model": {"type": "WordLevel", "vocab": {"#,
        ),
    ] {
        let path = write(&dir, name, contents);
        let e = Tokenizer::from_file(&path).unwrap_err();
        let text = e.to_string();
        assert!(text.contains(&*path.to_string_lossy()), "{name}: {text}");
        assert!(
            text.contains("not a Hugging Face tokenizer.json"),
            "{name}: {text}"
        );
    }
    let e = Tokenizer::from_file(&*dir).unwrap_err();
    assert!(e.to_string().contains(&*dir.to_string_lossy()), "{e}");
}

#[test]
fn a_saved_truncation_does_not_cap_counts() {
    let dir = temp_dir("truncation");
    let path = word_level(&dir, false);
    let mut json: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    json["truncation"] =
        json!({"direction": "Right", "max_length": 4, "strategy": "LongestFirst", "stride": 0});
    let path = write(&dir, "truncating.json", &json.to_string());
    let tokenizer = Tokenizer::from_file(&path).unwrap();
    assert_eq!(
        tokenizer
            .count("the river that runs past the old mill")
            .unwrap(),
        8
    );
}

fn options() -> LoadOptions<'static> {
    LoadOptions::default()
}

fn texts(d: &Dataset) -> Vec<&str> {
    d.entries
        .iter()
        .map(|e| match &e.prompt {
            Prompt::Text(t) => &**t,
            Prompt::Chat(m) => &*m[0].content,
        })
        .collect()
}

#[test]
fn completions_and_chat_lines_load() {
    let dir = temp_dir("lines");
    let path = write(
        &dir,
        "mixed.jsonl",
        "\u{feff}{\"prompt\": \"Snow is white\"}\r\n\
         \n\
         {\"prompt\": \"Why is the sky blue?\", \"max_tokens\": 32, \"id\": 7}\n\
         {\"messages\": [{\"role\": \"system\", \"content\": \"Be brief.\"}, {\"role\": \"user\", \"content\": \"Hi\", \"name\": \"x\"}]}\n\
         {\"prompt\": \"last, no newline\", \"max_tokens\": null}",
    );
    let d = Dataset::load(&path, &options()).unwrap();
    assert_eq!(d.source, path.display().to_string());
    assert_eq!(d.skipped, 0);
    assert_eq!(
        texts(&d),
        [
            "Snow is white",
            "Why is the sky blue?",
            "Be brief.",
            "last, no newline"
        ]
    );
    let lines: Vec<usize> = d.entries.iter().map(|e| e.line).collect();
    assert_eq!(lines, [1, 3, 4, 5]);
    let max: Vec<Option<u32>> = d.entries.iter().map(|e| e.max_tokens).collect();
    assert_eq!(max, [None, Some(32), None, None]);
    let Prompt::Chat(messages) = &d.entries[2].prompt else {
        panic!("line 4 is chat")
    };
    let pairs: Vec<(&str, &str)> = messages.iter().map(|m| (&*m.role, &*m.content)).collect();
    assert_eq!(pairs, [("system", "Be brief."), ("user", "Hi")]);
}

const SHAREGPT: &str = r#"[
  {"id": "a", "conversations": [{"from": "human", "value": "Name three rivers."}, {"from": "gpt", "value": "The Nile, the Amazon and the Danube."}]},
  {"id": "b", "conversations": [{"from": "system", "value": "You are kind."}, {"from": "human", "value": "Say hi"}, {"from": "gpt", "value": "hi"}, {"from": "human", "value": "again"}]},
  {"id": "c", "conversations": []},
  {"id": "d", "conversations": [{"from": "gpt", "value": "no question asked"}]},
  {"id": "e", "conversations": [{"from": "human", "value": "unanswered"}]},
  {"id": "f", "conversations": [{"from": "human", "value": "Count"}, {"from": "gpt", "value": "one two three four five six"}], "max_tokens": 3}
]"#;

#[test]
fn sharegpt_array_and_lines_load_the_same() {
    let dir = temp_dir("sharegpt");
    let array = write(&dir, "sharegpt.json", SHAREGPT);
    let elements: Vec<Value> = serde_json::from_str(SHAREGPT).unwrap();
    let jsonl: String = elements.iter().map(|e| format!("{e}\n")).collect();
    let lines = write(&dir, "sharegpt.jsonl", &jsonl);

    for path in [&array, &lines] {
        // Without the reply's length: every conversation with a human turn is a prompt.
        let d = Dataset::load(path, &options()).unwrap();
        assert_eq!(
            texts(&d),
            ["Name three rivers.", "Say hi", "unanswered", "Count"],
            "{path:?}"
        );
        assert_eq!(
            d.skipped, 2,
            "{path:?}: the empty one and the one without a human turn"
        );
        let max: Vec<Option<u32>> = d.entries.iter().map(|e| e.max_tokens).collect();
        assert_eq!(max, [None, None, None, Some(3)]);

        // With it, approximately: 7 words / 0.75 = 9 tokens, 1 word / 0.75 = 1.
        let with_len = LoadOptions {
            output_len_from_dataset: true,
            ..options()
        };
        let d = Dataset::load(path, &with_len).unwrap();
        assert_eq!(
            texts(&d),
            ["Name three rivers.", "Say hi", "Count"],
            "{path:?}"
        );
        assert_eq!(d.skipped, 3, "{path:?}: and now the unanswered one");
        let max: Vec<Option<u32>> = d.entries.iter().map(|e| e.max_tokens).collect();
        assert_eq!(max, [Some(9), Some(1), Some(3)], "{path:?}");
    }

    // Exactly, with a tokenizer: the reply's own tokens.
    let tokenizer = Tokenizer::from_file(word_level(&dir, true)).unwrap();
    let exact = LoadOptions {
        output_len_from_dataset: true,
        tokenizer: Some(&tokenizer),
        ..options()
    };
    let d = Dataset::load(&array, &exact).unwrap();
    let max: Vec<Option<u32>> = d.entries.iter().map(|e| e.max_tokens).collect();
    // "The Nile , the Amazon and the Danube ." is 9 words and punctuation; "hi" is 1.
    assert_eq!(max, [Some(9), Some(1), Some(3)]);
    assert_eq!(d.entries[0].prompt.count_tokens(&tokenizer).unwrap(), 1 + 4);
}

/// The error for `contents`, as a file.
fn refused(dir: &Path, name: &str, contents: &str) -> DatasetError {
    let path = write(dir, name, contents);
    let e = Dataset::load(&path, &options()).unwrap_err();
    assert!(
        e.to_string().contains(&*path.to_string_lossy()),
        "{name}: {e}"
    );
    e
}

fn refused_line(dir: &Path, name: &str, contents: &str) -> (usize, String) {
    match refused(dir, name, contents) {
        DatasetError::Line { line, reason, .. } => (line, reason),
        other => panic!("{name}: {other}"),
    }
}

#[test]
fn malformed_lines_are_refused_with_their_number() {
    let dir = temp_dir("malformed");
    let good = "{\"prompt\": \"fine\"}\n";
    for (name, bad, expect) in [
        ("not-json", "{\"prompt\": \"unterminated}", "EOF"),
        ("not-object", "[\"a\", \"b\"]", "expected a JSON object"),
        ("plain-text", "hello there", "expected a JSON object"),
        (
            "no-shape",
            "{\"text\": \"close but no\"}",
            "expected a JSON object with \"prompt\"",
        ),
        (
            "prompt-number",
            "{\"prompt\": 42}",
            "invalid type: integer `42`, expected a string",
        ),
        ("empty-prompt", "{\"prompt\": \"\"}", "empty \"prompt\""),
        (
            "two-shapes",
            "{\"prompt\": \"a\", \"messages\": [{\"role\": \"user\", \"content\": \"b\"}]}",
            "more than one",
        ),
        ("empty-messages", "{\"messages\": []}", "empty \"messages\""),
        (
            "message-no-content",
            "{\"messages\": [{\"role\": \"user\"}]}",
            "missing field `content`",
        ),
        (
            "message-parts",
            "{\"messages\": [{\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"x\"}]}]}",
            "expected a string",
        ),
        (
            "turn-no-value",
            "{\"conversations\": [{\"from\": \"human\"}]}",
            "missing field `value`",
        ),
        (
            "conversations-object",
            "{\"conversations\": {\"from\": \"human\"}}",
            "turns",
        ),
        (
            "zero-max-tokens",
            "{\"prompt\": \"a\", \"max_tokens\": 0}",
            "from 1",
        ),
        (
            "negative-max-tokens",
            "{\"prompt\": \"a\", \"max_tokens\": -5}",
            "invalid value",
        ),
        (
            "trailing",
            "{\"prompt\": \"a\"} {\"prompt\": \"b\"}",
            "trailing characters",
        ),
    ] {
        let contents = format!("{good}\n{good}{bad}\n{good}");
        let (line, reason) = refused_line(&dir, &format!("{name}.jsonl"), &contents);
        assert_eq!(line, 4, "{name}: {reason}");
        assert!(reason.contains(expect), "{name}: {reason}");
    }
    // Invalid UTF-8 inside a string.
    let path = dir.join("latin1.jsonl");
    std::fs::write(&path, b"{\"prompt\": \"ok\"}\n{\"prompt\": \"caf\xe9\"}\n").unwrap();
    match Dataset::load(&path, &options()).unwrap_err() {
        DatasetError::Line { line: 2, .. } => {}
        other => panic!("{other}"),
    }
    // In the array form, serde's line within the file, and the entry's position.
    let (line, reason) = refused_line(
        &dir,
        "array.json",
        "[\n  {\"prompt\": \"a\"},\n  {\"prompt\": \"b\"},\n  {\"nothing\": 1}\n]",
    );
    assert_eq!(line, 4, "{reason}");
    assert!(
        reason.contains("entry 3") && reason.contains("expected a JSON object"),
        "{reason}"
    );
    let (line, reason) = refused_line(
        &dir,
        "array-bad-json.json",
        "[\n{\"prompt\": \"a\"},\n{\"prompt\": }\n]",
    );
    assert_eq!(line, 3, "{reason}");
    let (_, reason) = refused_line(&dir, "array-of-strings.json", "[\"a\", \"b\"]");
    assert!(reason.contains("expected a JSON object"), "{reason}");
    let (line, _) = refused_line(&dir, "array-unclosed.json", "[{\"prompt\": \"a\"},\n");
    assert_eq!(line, 2);
}

#[test]
fn empty_missing_and_oversized_files_are_refused_with_their_path() {
    let dir = temp_dir("empty");
    for (name, contents) in [
        ("empty.jsonl", ""),
        ("blank.jsonl", "\n\n   \n"),
        ("bom.jsonl", "\u{feff}"),
        ("empty-array.json", " []\n"),
    ] {
        match refused(&dir, name, contents) {
            DatasetError::Empty { skipped: 0, .. } => {}
            other => panic!("{name}: {other}"),
        }
    }
    let e = refused(
        &dir,
        "all-skipped.json",
        r#"[{"conversations": []}, {"conversations": [{"from": "gpt", "value": "x"}]}]"#,
    );
    assert!(matches!(e, DatasetError::Empty { skipped: 2, .. }), "{e}");
    assert!(e.to_string().contains("2 conversations skipped"), "{e}");

    let missing = dir.join("nope.jsonl");
    let e = Dataset::load(&missing, &options()).unwrap_err();
    assert!(matches!(e, DatasetError::Io { .. }), "{e}");
    assert!(e.to_string().contains(&*missing.to_string_lossy()), "{e}");
    let e = Dataset::load(&*dir, &options()).unwrap_err();
    assert!(e.to_string().contains(&*dir.to_string_lossy()), "{e}");

    let contents = "{\"prompt\": \"0123456789\"}\n".repeat(10);
    let path = write(&dir, "big.jsonl", &contents);
    let small = LoadOptions {
        max_bytes: contents.len() as u64 - 1,
        ..options()
    };
    let e = Dataset::load(&path, &small).unwrap_err();
    match &e {
        DatasetError::TooBig { size, max, .. } => {
            assert_eq!(
                (*size, *max),
                (contents.len() as u64, contents.len() as u64 - 1)
            );
        }
        other => panic!("{other}"),
    }
    assert!(e.to_string().contains("--max-dataset-bytes"), "{e}");
    let exact = LoadOptions {
        max_bytes: contents.len() as u64,
        ..options()
    };
    assert_eq!(Dataset::load(&path, &exact).unwrap().len(), 10);
}

#[test]
fn inline_prompts() {
    let d = Dataset::from_prompts(&["a", "b"]).unwrap();
    assert_eq!(texts(&d), ["a", "b"]);
    assert_eq!(d.source, "inline");
    match Dataset::from_prompts(&["a", ""]).unwrap_err() {
        DatasetError::Line {
            line: 2, reason, ..
        } => assert_eq!(reason, "empty prompt"),
        other => panic!("{other}"),
    }
    let none: [&str; 0] = [];
    let e = Dataset::from_prompts(&none).unwrap_err();
    assert_eq!(e.to_string(), "dataset inline: no prompts in it");
}

#[test]
fn shuffled_order_is_a_seeded_permutation_that_cycles() {
    for len in [1, 2, 3, 10, 1000, 4097] {
        let order = Order::shuffled(len, 42);
        let first: Vec<usize> = (0..len as u64).map(|i| order.entry_for(i)).collect();
        let mut sorted = first.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (0..len).collect::<Vec<_>>(),
            "a permutation of {len}"
        );
        // Cycling: request i and i + k·len send the same entry.
        for i in 0..len as u64 {
            assert_eq!(order.entry_for(i + 3 * len as u64), first[i as usize]);
        }
        assert_eq!(
            order.entry_for(u64::MAX),
            first[(u64::MAX % len as u64) as usize]
        );
        // Seeded: the same seed, the same order; another seed, another.
        let again: Vec<usize> = (0..len as u64)
            .map(|i| Order::shuffled(len, 42).entry_for(i))
            .collect();
        assert_eq!(first, again);
        if len >= 10 {
            let other: Vec<usize> = (0..len as u64)
                .map(|i| Order::shuffled(len, 43).entry_for(i))
                .collect();
            assert_ne!(first, other, "{len}");
            assert_ne!(
                first,
                (0..len).collect::<Vec<_>>(),
                "shuffled at all ({len})"
            );
        }
    }
    let order = Order::sequential(3);
    let seq: Vec<usize> = (0..7).map(|i| order.entry_for(i)).collect();
    assert_eq!(seq, [0, 1, 2, 0, 1, 2, 0]);
}

#[test]
fn a_cycled_dataset_builds_one_body_per_distinct_prompt() {
    let dir = temp_dir("bodies");
    let lines: String = (0..1000)
        .map(|i| {
            format!(
                "{}\n",
                json!({"prompt": format!("prompt number {}", i % 900), "max_tokens": 8 + i % 2})
            )
        })
        .collect();
    let path = write(&dir, "thousand.jsonl", &lines);
    let d = Dataset::load(&path, &options()).unwrap();
    assert_eq!(d.len(), 1000);
    let template = BodyTemplate {
        model: "m",
        stream: true,
        api: Api::Completions,
        style: PayloadStyle::Fireworks,
        max_tokens: 64,
        overrides: None,
    };
    let bodies = Bodies::build(&d.entries, &template).unwrap();
    // Lines i and i + 900 share a prompt; they share a body only when max_tokens agrees too
    // (i and i + 900 have the same parity): all 100 repeats do.
    assert_eq!(bodies.distinct().len(), 900);
    let order = Order::shuffled(d.len(), 7);
    let mut used = vec![0u32; bodies.distinct().len()];
    for request in 0..100_000u64 {
        let entry = order.entry_for(request);
        used[bodies.index_of(entry)] += 1;
        if request % 9973 == 0 {
            let sent: Value = serde_json::from_slice(bodies.of(entry)).unwrap();
            let Prompt::Text(prompt) = &d.entries[entry].prompt else {
                unreachable!()
            };
            assert_eq!(sent["prompt"], json!(&**prompt));
            assert_eq!(
                sent["max_tokens"],
                json!(d.entries[entry].max_tokens.unwrap())
            );
        }
    }
    assert!(used.iter().all(|&n| n >= 100), "every body is sent");
    assert_eq!(used.iter().map(|&n| n as u64).sum::<u64>(), 100_000);
}

#[test]
fn synthetic_workload_end_to_end() {
    // What the wiring will do: draw lengths, make prompts, build bodies.
    let dir = temp_dir("synthetic");
    let tokenizer = Tokenizer::from_file(byte_bpe(
        &dir,
        "llama3.json",
        llama3_pre_tokenizer(),
        true,
        600,
    ))
    .unwrap();
    let input: LengthDist = "120:30".parse().unwrap();
    let output: LengthDist = "uniform:16:64".parse().unwrap();
    let synth = Synthesizer::new(Some(&tokenizer), 20).unwrap();
    let (mut entries, asked) = synth.entries(200, &input, 1).unwrap();
    // The lengths are the seed's draws (raised to the minimum), and repeat with it.
    let mut rng = SplitMix64::new(1);
    for (i, &n) in asked.iter().enumerate() {
        let drawn = input.draw(&mut rng) as usize;
        assert_eq!(n as usize, drawn.max(synth.min_tokens()), "entry {i}");
    }
    assert_eq!(synth.entries(200, &input, 1).unwrap().1, asked);
    draw_max_tokens(&mut entries, &output, 2);
    let bodies = Bodies::build(
        &entries,
        &BodyTemplate {
            model: "m",
            stream: true,
            api: Api::Chat,
            style: PayloadStyle::Fireworks,
            max_tokens: 1,
            overrides: None,
        },
    )
    .unwrap();
    assert_eq!(bodies.distinct().len(), 200);
    for (i, entry) in entries.iter().enumerate() {
        let sent: Value = serde_json::from_slice(bodies.of(i)).unwrap();
        let content = sent["messages"][0]["content"].as_str().unwrap();
        assert_eq!(tokenizer.count_prompt(content).unwrap(), asked[i] as usize);
        assert_eq!(
            entry.prompt.count_tokens(&tokenizer).unwrap(),
            asked[i] as usize
        );
        let m = sent["max_tokens"].as_u64().unwrap();
        assert!((16..=64).contains(&m));
        assert_eq!(entry.max_tokens, Some(m as u32));
    }
}

#[test]
fn drawn_max_tokens_fill_only_the_entries_without_one() {
    let mut entries: Vec<pacer::llm::Entry> = Dataset::from_prompts(&["a", "b", "c", "d"])
        .unwrap()
        .entries;
    entries[1].max_tokens = Some(7);
    let output: LengthDist = "uniform:100:200".parse().unwrap();
    let mut again = entries.clone();
    draw_max_tokens(&mut entries, &output, 9);
    draw_max_tokens(&mut again, &output, 9);
    assert_eq!(entries, again, "seeded");
    let mut rng = SplitMix64::new(9);
    let draws: Vec<u32> = (0..3).map(|_| output.draw(&mut rng)).collect();
    let max: Vec<Option<u32>> = entries.iter().map(|e| e.max_tokens).collect();
    assert_eq!(
        max,
        [Some(draws[0]), Some(7), Some(draws[1]), Some(draws[2])]
    );
}

#[test]
fn prefix_groups_share_exactly_their_prefix_and_differ_between_groups() {
    let dir = temp_dir("groups");
    let path = byte_bpe(&dir, "gpt2.json", gpt2_pre_tokenizer(), false, 400);
    let tokenizer = Tokenizer::from_file(&path).unwrap();
    let p = 24;
    for tok in [Some(&tokenizer), None] {
        let synth = Synthesizer::with_groups(tok, p, 2).unwrap();
        assert_eq!(synth.groups(), 2);
        let (a, b) = (synth.prefix_of(0), synth.prefix_of(1));
        assert_ne!(a, b, "two groups, two prefixes");
        if tok.is_some() {
            assert_eq!(tokenizer.encode(a).unwrap().len(), p);
            assert_eq!(tokenizer.encode(b).unwrap().len(), p);
        }
        // Round robin: prompt i is of group i mod 2.
        let prompts: Vec<String> = (0..8).map(|i| synth.prompt(i, 80).unwrap().text).collect();
        for (i, text) in prompts.iter().enumerate() {
            let own = synth.prefix_of(synth.group_of(i as u64));
            assert_eq!(synth.group_of(i as u64), (i % 2) as u32);
            assert!(text.starts_with(own), "{i}: {text}");
            if let Some(t) = tok {
                // Exactly the first P tokens are the group's.
                let ids = t.encode(text).unwrap();
                assert_eq!(ids[..p], t.encode(own).unwrap()[..], "{i}");
                assert_eq!(t.count_prompt(text).unwrap(), 80, "{i}");
            }
        }
        // Same group: same first P tokens, then different bodies; other group: another start.
        assert_ne!(prompts[0], prompts[2]);
        assert!(!prompts[1].starts_with(a) && !prompts[0].starts_with(b));
        // One group is the single prefix of before.
        let one = Synthesizer::new(tok, p).unwrap();
        assert_eq!(one.prefix(), a);
    }
}
