//! README's Architecture is drawn from the tree: every folder under `src/` is drawn in its
//! place (under its parent, indented deeper), nothing drawn under `src/` is missing from the
//! tree, and every file at `src/`'s top level and in `src/worker/` is named. `src/` keeps at
//! most five files at its top level.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The fenced block that follows `## Architecture`.
fn architecture_block(readme: &str) -> Vec<&str> {
    let section = readme
        .split("\n## Architecture\n")
        .nth(1)
        .expect("README has a `## Architecture` section");
    let mut lines = section.lines().skip_while(|l| !l.starts_with("```"));
    lines.next().expect("the section opens a fenced block");
    lines.take_while(|l| !l.starts_with("```")).collect()
}

/// The folders drawn inside `src/`, as paths relative to `src/` (`worker/appointment`): a
/// line whose first word ends in `/` is a folder, its parent the nearest line above it that is
/// indented less.
fn drawn_folders(block: &[&str]) -> BTreeSet<String> {
    let start = block
        .iter()
        .position(|l| l.starts_with("src/"))
        .expect("the drawing has `src/`");
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut drawn = BTreeSet::new();
    for line in &block[start + 1..] {
        let indent = line.len() - line.trim_start().len();
        if indent == 0 {
            break; // the next top-level entry: `src/` is over
        }
        let Some(word) = line.split_whitespace().next() else {
            continue;
        };
        let Some(name) = word.strip_suffix('/') else {
            continue;
        };
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let path = match stack.last() {
            Some((_, parent)) => format!("{parent}/{name}"),
            None => name.to_owned(),
        };
        drawn.insert(path.clone());
        stack.push((indent, path));
    }
    drawn
}

fn folders_under(dir: &Path, prefix: &str, out: &mut BTreeSet<String>) {
    for entry in fs::read_dir(dir).expect("src/ is readable") {
        let entry = entry.expect("a directory entry");
        if entry.path().is_dir() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            folders_under(&entry.path(), &path, out);
            out.insert(path);
        }
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = fs::read_dir(dir)
        .expect("a readable folder")
        .map(|e| e.expect("a directory entry"))
        .filter(|e| e.path().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    files
}

fn readme() -> String {
    fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README.md")
}

#[test]
fn every_folder_under_src_is_drawn_and_nothing_else() {
    let readme = readme();
    let drawn = drawn_folders(&architecture_block(&readme));
    let mut tree = BTreeSet::new();
    folders_under(&Path::new(ROOT).join("src"), "", &mut tree);
    let missing: Vec<_> = tree.difference(&drawn).collect();
    let stale: Vec<_> = drawn.difference(&tree).collect();
    assert!(
        missing.is_empty(),
        "folders under src/ missing from README's Architecture: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "README's Architecture draws folders src/ does not have: {stale:?}"
    );
}

#[test]
fn every_top_level_and_worker_file_is_named() {
    let readme = readme();
    let block = architecture_block(&readme);
    let words: BTreeSet<&str> = block.iter().flat_map(|l| l.split_whitespace()).collect();
    for dir in ["src", "src/worker"] {
        for file in files_in(&Path::new(ROOT).join(dir)) {
            assert!(
                words.contains(file.as_str()),
                "{dir}/{file} is not named in README's Architecture"
            );
        }
    }
}

#[test]
fn src_keeps_at_most_five_files_at_its_top_level() {
    let files = files_in(&Path::new(ROOT).join("src"));
    assert!(
        files.len() <= 5,
        "src/ has {} files: {files:?}",
        files.len()
    );
}

#[test]
fn the_reader_finds_a_missing_folder() {
    // The check itself: a drawing without `worker/appointment/` lacks that folder.
    let block = [
        "src/        core",
        "  worker/   adapter",
        "    admin/  admin",
        "  node/     node",
        "npm/        js",
    ];
    let drawn = drawn_folders(&block);
    let expected: BTreeSet<String> = ["worker", "worker/admin", "node"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(drawn, expected);
    assert!(!drawn.contains("worker/appointment"));
}
