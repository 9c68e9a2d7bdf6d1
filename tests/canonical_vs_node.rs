//! Property: for any text, our canonical form equals Node's `JSON.stringify(JSON.parse(text))`,
//! and we refuse exactly what `JSON.parse` refuses. Checked on a fixed hand-written corpus and
//! on a deterministic random corpus, against the machine's real `node`.

use std::io::Write;
use std::process::{Command, Stdio};

use eka_webhook_edge::signing::canonical::js_canonicalize;

/// A small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

const NUMBERS: &[&str] = &[
    "0",
    "-0",
    "1",
    "-1",
    "1.0",
    "1.50",
    "0.1",
    "1e21",
    "1E21",
    "1e-7",
    "1e-6",
    "123e-2",
    "9007199254740993",
    "18446744073709551616",
    "123456789012345678901234567890",
    "1e308",
    "1e309",
    "-1e400",
    "5e-324",
    "2.2250738585072014e-308",
    "0.000001",
    "1e+2",
    "100e-2",
    "4.35",
    "0.30000000000000004",
    "1.7976931348623157e308",
    "-123.456e-78",
];
const STRINGS: &[&str] = &[
    r#""""#,
    r#""plain""#,
    r#""café""#,
    r#""क्लिनिक""#,
    r#""\u00e9""#,
    r#""\u0026\u003c\u003e""#,
    r#""\/""#,
    r#""\"\\""#,
    r#""\b\f\n\r\t""#,
    r#""\u0000\u001f\u007f""#,
    r#""\ud83d\ude00""#,
    r#""\ud800""#,
    r#""\udfff""#,
    r#""\udc00\ud800""#,
    r#""a\ud800b""#,
    r#""\u2028\u2029""#,
    r#""😀""#,
    r#""\uD83D\uDE00x""#,
    r#""\ud83d\u0041""#,
];
const KEYS: &[&str] = &[
    r#""a""#,
    r#""b""#,
    r#""event""#,
    r#""0""#,
    r#""1""#,
    r#""2""#,
    r#""10""#,
    r#""01""#,
    r#""-1""#,
    r#""1.5""#,
    r#""4294967294""#,
    r#""4294967295""#,
    r#""99999999999""#,
    r#""__proto__""#,
    r#""\u0030""#,
    r#""é""#,
    r#""""#,
];
const SPACE: &[&str] = &["", "", "", " ", "\n", "\t", "\r\n  "];

fn value(rng: &mut Rng, depth: u32, out: &mut String) {
    let choice = if depth > 4 {
        rng.below(4)
    } else {
        rng.below(7)
    };
    match choice {
        0 => out.push_str(rng.pick(NUMBERS)),
        1 => out.push_str(rng.pick(STRINGS)),
        2 => out.push_str(rng.pick(&["true", "false", "null"])),
        3 => out.push_str(rng.pick(NUMBERS)),
        4 | 5 => {
            out.push('{');
            let n = rng.below(5);
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(rng.pick(SPACE));
                out.push_str(rng.pick(KEYS));
                out.push_str(rng.pick(SPACE));
                out.push(':');
                out.push_str(rng.pick(SPACE));
                value(rng, depth + 1, out);
            }
            out.push('}');
        }
        _ => {
            out.push('[');
            let n = rng.below(4);
            for i in 0..n {
                if i > 0 {
                    out.push(',');
                    out.push_str(rng.pick(SPACE));
                }
                value(rng, depth + 1, out);
            }
            out.push(']');
        }
    }
}

/// Random documents, a tenth of them damaged by deleting or inserting one character.
fn random_corpus(count: usize) -> Vec<Vec<u8>> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut corpus = Vec::with_capacity(count);
    for _ in 0..count {
        let mut text = String::new();
        value(&mut rng, 0, &mut text);
        let mut bytes = text.into_bytes();
        if rng.below(10) == 0 && !bytes.is_empty() {
            let at = rng.below(bytes.len() as u64) as usize;
            if rng.below(2) == 0 {
                bytes.remove(at);
            } else {
                bytes.insert(
                    at,
                    *b",:{}[]\"\\x0 "
                        .get(rng.below(11) as usize)
                        .unwrap_or(&b' '),
                );
            }
        }
        corpus.push(bytes);
    }
    corpus
}

fn fixed_corpus() -> Vec<Vec<u8>> {
    [
        r#"{"b":1,"10":2,"a":3,"2":4,"0":5}"#,
        r#"{"a":1,"b":2,"a":3}"#,
        r#"{"1":1,"1":2,"0":0}"#,
        " { \"x\" : [ 1.0 , -0 , 1e21 ] } ",
        r#"[1,]"#,
        r#"{"a":1,}"#,
        "01",
        "1.",
        "-",
        "+1",
        ".5",
        "NaN",
        "",
        " ",
        "\u{feff}{}",
        "\"\\x\"",
        "\"\\u12g4\"",
        "\"a\nb\"",
        "{} {}",
        "[1 2]",
        "tru",
        "nul",
        "{\"a\":\"\u{7f}\u{80}\u{9f}\"}",
    ]
    .iter()
    .map(|s| s.as_bytes().to_vec())
    .chain([b"\"a\xffb\"".to_vec(), b"{\"k\xc3\":1}".to_vec()])
    .collect()
}

fn node_canonical(corpus: &[Vec<u8>]) -> Option<Vec<Option<Vec<u8>>>> {
    use base64_lite::{decode, encode};
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/support/js_canonical.mjs"
    );
    let mut child = match Command::new("node")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("\n*** SKIPPED: node is not installed ({e}); the canonicaliser was not compared with JSON.stringify ***\n");
            return None;
        }
    };
    let input: Vec<String> = corpus.iter().map(|b| encode(b)).collect();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(serde_json::to_string(&input).unwrap().as_bytes())
        .unwrap();
    drop(stdin);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "node failed");
    let text = String::from_utf8(output.stdout).unwrap();
    Some(
        text.split('\n')
            .map(|line| {
                if line == "ERR" {
                    None
                } else {
                    Some(decode(line))
                }
            })
            .collect(),
    )
}

fn compare(corpus: Vec<Vec<u8>>) -> usize {
    let Some(expected) = node_canonical(&corpus) else {
        return 0;
    };
    assert_eq!(expected.len(), corpus.len());
    let mut valid = 0;
    for (input, want) in corpus.iter().zip(expected) {
        let ours = js_canonicalize(input, 64).ok();
        valid += usize::from(want.is_some());
        assert_eq!(
            ours.as_deref().map(String::from_utf8_lossy),
            want.as_deref().map(String::from_utf8_lossy),
            "input {:?}",
            String::from_utf8_lossy(input)
        );
    }
    valid
}

#[test]
fn fixed_corpus_matches_node() {
    compare(fixed_corpus());
}

#[test]
fn random_corpus_matches_node() {
    let valid = compare(random_corpus(3000));
    // Most documents are valid, so the comparison is not only of errors.
    assert!(valid == 0 || valid > 2000, "only {valid} valid documents");
}

/// Minimal base64 so the test needs no extra crate.
mod base64_lite {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

    pub fn encode(bytes: &[u8]) -> String {
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    pub fn decode(text: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = 0u32;
        let mut bits = 0;
        for c in text.bytes().filter(|c| *c != b'=') {
            let v = ALPHABET.iter().position(|a| *a == c).unwrap() as u32;
            buf = (buf << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((buf >> bits) as u8);
            }
        }
        out
    }
}
