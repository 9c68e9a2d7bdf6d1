//! A request body read chunk by chunk under a byte limit: the reader stops at the first chunk
//! that goes over, so a sender without `Content-Length` cannot make us read more than the
//! limit (plus one chunk) before the 413.

/// The body read so far, or the news that it went over the limit.
#[derive(Debug)]
pub struct CappedBody {
    limit: usize,
    bytes: Vec<u8>,
}

/// The body went over the limit; the caller answers 413 and reads no more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit;

impl CappedBody {
    /// An empty body that may grow to `limit` bytes.
    pub fn new(limit: usize) -> Self {
        CappedBody {
            limit,
            bytes: Vec::new(),
        }
    }

    /// Adds a chunk; `Err(OverLimit)` as soon as the total is over the limit (the chunk is
    /// not kept).
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), OverLimit> {
        if self.bytes.len().saturating_add(chunk.len()) > self.limit {
            return Err(OverLimit);
        }
        self.bytes.extend_from_slice(chunk);
        Ok(())
    }

    /// The whole body.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_at_the_limit_is_whole_and_one_byte_more_is_over() {
        let mut body = CappedBody::new(10);
        assert_eq!(body.push(b"01234"), Ok(()));
        assert_eq!(body.push(b""), Ok(()));
        assert_eq!(body.push(b"56789"), Ok(()));
        assert_eq!(body.into_bytes(), b"0123456789");
        let mut body = CappedBody::new(10);
        assert_eq!(body.push(b"0123456789"), Ok(()));
        assert_eq!(body.push(b"x"), Err(OverLimit));
    }

    #[test]
    fn a_huge_chunk_is_refused_without_being_kept() {
        let mut body = CappedBody::new(4);
        assert_eq!(body.push(&[0; 1 << 20]), Err(OverLimit));
        assert!(body.into_bytes().is_empty());
    }
}
