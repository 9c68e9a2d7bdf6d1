//! Randomness for event ids and nonces: the one place that calls `getrandom` (the OS
//! natively; `crypto.getRandomValues` on wasm, through getrandom's JS backend). The core's
//! functions take random bytes as parameters; adapters fetch them here.

/// `N` random bytes, or why the platform could not give them.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).map_err(|e| format!("no randomness available: {e}"))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_draws_differ() {
        let a = super::random_bytes::<16>().unwrap();
        let b = super::random_bytes::<16>().unwrap();
        assert_ne!(a, b);
    }
}
