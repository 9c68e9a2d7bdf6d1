//! `request_url` against the `url` crate (which the Worker used to parse its request URL):
//! same path, query and query pairs for ordinary and awkward request URLs.

use eka_webhook_edge::support::request_url::{path_and_query, query_pairs};
use url::Url;

fn corpus() -> Vec<String> {
    let hosts = [
        "https://edge.example.com",
        "http://127.0.0.1:8787",
        "https://u:p@h.example",
    ];
    let paths = [
        "",
        "/",
        "/webhook",
        "/admin/events",
        "/a/b/../c",
        "/a/./b",
        "/a/..",
        "/a/.",
        "/..",
        "/./",
        "/a/%2e%2E/b",
        "/a/.%2e",
        "/a/%2E",
        "//double//slash/",
        "/a\\b\\..\\c",
        "/sp ace",
        "/q\"uote",
        "/<x>",
        "/`tick`",
        "/{b}",
        "/caf\u{e9}",
        "/%41%zz",
        "/a\tb\nc",
        "/\u{7f}del",
        "/emoji\u{1f600}",
        "/a/b/",
        "/...",
        "/.a/..b",
        "/a%2fb",
    ];
    let queries = [
        "",
        "?",
        "?a=1",
        "?appointmentId=ap%201&start=10&end=20",
        "?a=b+c&d=%2B",
        "?x=1&x=2",
        "?sp ace='q'",
        "?<>\"#frag",
        "?caf\u{e9}=\u{1f600}",
        "?=v&k=&&k2",
        "?a=%zz",
        "?a=1\t2",
        "?status=failed&limit=5&cursor=abc%3D%3D",
    ];
    let fragments = ["", "#f", "#f?x=1"];
    let mut out = Vec::new();
    for h in hosts {
        for p in paths {
            for q in queries {
                for f in fragments {
                    out.push(format!("{h}{p}{q}{f}"));
                }
            }
        }
    }
    out.push(" https://h.example/a?b=c ".to_owned());
    out.push("https://h.example\\a\\b?c".to_owned());
    out
}

#[test]
fn path_query_and_pairs_match_the_url_crate() {
    let mut checked = 0;
    for href in corpus() {
        let Ok(url) = Url::parse(&href) else { continue };
        let (path, query) = path_and_query(&href);
        assert_eq!(path, url.path(), "path of {href:?}");
        assert_eq!(query.as_deref(), url.query(), "query of {href:?}");
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        assert_eq!(query_pairs(&href), pairs, "pairs of {href:?}");
        checked += 1;
    }
    assert!(checked > 3000, "{checked}");
}
