//! The path, query and query pairs of an absolute http(s) URL, as the `url` crate gives them
//! (WHATWG parsing: tabs and newlines dropped, `\` as `/`, `.` and `..` segments resolved, the
//! path and special-query percent-encode sets), without parsing the rest of the URL. The
//! Worker reads its request URL through these: `url::Url::parse` (host parsing, IDNA) cost
//! the upload ~10 KB gzip. `tests/request_url.rs` checks them against the `url` crate.

use percent_encoding::{utf8_percent_encode, AsciiSet, CONTROLS};

/// https://url.spec.whatwg.org/#path-percent-encode-set
const PATH: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'<')
    .add(b'>')
    .add(b'`')
    .add(b'#')
    .add(b'?')
    .add(b'{')
    .add(b'}');

/// https://url.spec.whatwg.org/#special-query-percent-encode-set
const SPECIAL_QUERY: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'\'');

/// The path (`/` at least) and the query (without `?`; `None` when the URL has no `?`) of
/// `href`, an absolute http(s) URL such as a Worker's `request.url`.
pub fn path_and_query(href: &str) -> (String, Option<String>) {
    let href: String = href
        .trim_matches(|c: char| c <= ' ')
        .chars()
        .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
        .collect();
    let href = href.split('#').next().unwrap_or_default();
    let (before_query, query) = match href.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (href, None),
    };
    // Past the scheme, the slashes after it and the authority.
    let after_scheme = before_query
        .split_once(':')
        .map_or(before_query, |(_, rest)| rest)
        .trim_start_matches(['/', '\\']);
    let raw_path = after_scheme
        .find(['/', '\\'])
        .map_or("", |at| &after_scheme[at..]);
    let query = query.map(|q| utf8_percent_encode(q, SPECIAL_QUERY).to_string());
    (normalise_path(raw_path), query)
}

/// The query's name/value pairs, decoded as `Url::query_pairs` decodes them.
pub fn query_pairs(href: &str) -> Vec<(String, String)> {
    let query = path_and_query(href).1.unwrap_or_default();
    form_urlencoded::parse(query.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// `raw` (empty or starting with `/` or `\`) with `\` as `/`, dot segments resolved and the
/// path percent-encode set applied.
fn normalise_path(raw: &str) -> String {
    let raw = raw.replace('\\', "/");
    let segments: Vec<&str> = raw.strip_prefix('/').unwrap_or(&raw).split('/').collect();
    let mut kept: Vec<&str> = Vec::with_capacity(segments.len());
    for (i, segment) in segments.iter().enumerate() {
        let last = i + 1 == segments.len();
        let lower = segment.to_ascii_lowercase();
        match lower.as_str() {
            ".." | ".%2e" | "%2e." | "%2e%2e" => {
                kept.pop();
                if last {
                    kept.push("");
                }
            }
            "." | "%2e" => {
                if last {
                    kept.push("");
                }
            }
            _ => kept.push(segment),
        }
    }
    let mut path = String::with_capacity(raw.len() + 1);
    for segment in kept {
        path.push('/');
        path.extend(utf8_percent_encode(segment, PATH));
    }
    if path.is_empty() {
        path.push('/');
    }
    path
}
