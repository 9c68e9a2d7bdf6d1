//! Keyset paging, as every admin list pages: a page is read with one row more than its
//! `limit`, ordered by id; the extra row only says there is a next page, whose cursor is the
//! last kept row's id (the next read starts after it).

/// The first `limit` of `rows` (read with `limit + 1`) and the next page's cursor: `key` of
/// the last kept row when the extra row came back, else none.
pub fn keyset_page<T>(
    mut rows: Vec<T>,
    limit: usize,
    key: impl Fn(&T) -> Option<String>,
) -> (Vec<T>, Option<String>) {
    let more = rows.len() > limit;
    rows.truncate(limit);
    let next = if more {
        rows.last().and_then(key)
    } else {
        None
    };
    (rows, next)
}

/// A list's `limit` parameter: a whole number from 1 to `max`, or the message that says so.
pub fn parse_limit(value: &str, max: usize) -> Result<usize, String> {
    value
        .parse::<usize>()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| format!("'limit' must be a whole number from 1 to {max}"))
}

/// A page over several sharded lists read one after the other (the index shards of objects
/// holding pending writes): at most `limit` items, then a cursor `<shard>:<after>` where the
/// next page starts (after that item of that shard; `after` empty: the shard's start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardWalk {
    shards: u32,
    shard: u32,
    after: Option<String>,
    remaining: usize,
    /// The next page's cursor, set once this page is full.
    next: Option<String>,
}

impl ShardWalk {
    /// A page of at most `limit` items from `cursor` (none: the first shard's start).
    pub fn new(cursor: Option<&str>, limit: usize, shards: u32) -> Result<ShardWalk, String> {
        let (shard, after) = match cursor {
            None | Some("") => (0, None),
            Some(c) => c
                .split_once(':')
                .and_then(|(n, after)| {
                    let n = n.parse::<u32>().ok().filter(|n| *n < shards)?;
                    Some((n, Some(after.to_owned()).filter(|a| !a.is_empty())))
                })
                .ok_or_else(|| "'cursor' must be a nextCursor this API returned".to_owned())?,
        };
        Ok(ShardWalk {
            shards,
            shard,
            after,
            remaining: limit,
            next: None,
        })
    }

    /// The next read: (shard, after, how many to read: one more than still fits), or none
    /// when the page is full or every shard is read.
    pub fn next_read(&self) -> Option<(u32, Option<&str>, usize)> {
        if self.remaining == 0 || self.next.is_some() || self.shard >= self.shards {
            return None;
        }
        Some((self.shard, self.after.as_deref(), self.remaining + 1))
    }

    /// Takes what the last read gave (in the shard's order) and returns the items this page
    /// keeps of it.
    pub fn take(&mut self, items: Vec<String>) -> Vec<String> {
        let (kept, more) = keyset_page(items, self.remaining, |s: &String| Some(s.clone()));
        self.remaining -= kept.len();
        match more {
            Some(last) => self.next = Some(format!("{}:{last}", self.shard)),
            None => {
                self.shard += 1;
                self.after = None;
                if self.remaining == 0 && self.shard < self.shards {
                    self.next = Some(format!("{}:", self.shard));
                }
            }
        }
        kept
    }

    /// The next page's cursor once [`Self::next_read`] says none: none after the last shard.
    pub fn next_cursor(&self) -> Option<String> {
        self.next.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_a_whole_number_from_one_to_the_maximum() {
        assert_eq!(parse_limit("1", 200), Ok(1));
        assert_eq!(parse_limit("200", 200), Ok(200));
        for bad in ["0", "201", "-1", "1.5", "", "ten"] {
            assert_eq!(
                parse_limit(bad, 200),
                Err("'limit' must be a whole number from 1 to 200".to_owned()),
                "{bad}"
            );
        }
    }

    fn page(n: usize, limit: usize) -> (Vec<String>, Option<String>) {
        let rows = (0..n).map(|i| format!("id{i}")).collect();
        keyset_page(rows, limit, |r: &String| Some(r.clone()))
    }

    #[test]
    fn the_extra_row_means_a_next_page_starting_after_the_last_kept_one() {
        assert_eq!(
            page(3, 2),
            (vec!["id0".into(), "id1".into()], Some("id1".into()))
        );
        // Exactly `limit` rows: the last page.
        assert_eq!(page(2, 2), (vec!["id0".into(), "id1".into()], None));
        assert_eq!(page(1, 2), (vec!["id0".into()], None));
        assert_eq!(page(0, 2), (vec![], None));
    }

    #[test]
    fn a_shard_walk_pages_across_shards_and_resumes_where_it_stopped() {
        let shards: Vec<Vec<String>> = vec![
            vec!["a".into(), "b".into(), "c".into()],
            vec![],
            vec!["d".into(), "e".into()],
        ];
        let read = |shard: u32, after: Option<&str>, n: usize| -> Vec<String> {
            shards[shard as usize]
                .iter()
                .filter(|o| after.is_none_or(|a| o.as_str() > a))
                .take(n)
                .cloned()
                .collect()
        };
        let run = |cursor: Option<&str>, limit: usize| {
            let mut walk = ShardWalk::new(cursor, limit, 3).unwrap();
            let mut page = Vec::new();
            let mut reads = 0;
            while let Some((shard, after, n)) = walk.next_read() {
                page.extend(walk.take(read(shard, after, n)));
                reads += 1;
            }
            (page, walk.next_cursor(), reads)
        };
        assert_eq!(
            run(None, 2),
            (vec!["a".into(), "b".into()], Some("0:b".into()), 1)
        );
        assert_eq!(
            run(Some("0:b"), 2),
            (vec!["c".into(), "d".into()], Some("2:d".into()), 3)
        );
        assert_eq!(run(Some("2:d"), 2), (vec!["e".into()], None, 1));
        // A page that ends exactly with a shard goes on at the next shard's start.
        assert_eq!(
            run(None, 3),
            (
                vec!["a".into(), "b".into(), "c".into()],
                Some("1:".into()),
                1
            )
        );
        assert_eq!(run(Some("1:"), 3), (vec!["d".into(), "e".into()], None, 2));
        assert_eq!(run(None, 10).0.len(), 5);
        for bad in ["x", "3:a", "-1:a", "a:b"] {
            assert!(ShardWalk::new(Some(bad), 2, 3).is_err(), "{bad}");
        }
    }
}
