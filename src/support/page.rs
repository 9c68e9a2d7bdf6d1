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
}
