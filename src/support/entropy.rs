//! Randomness for event ids and nonces: the OS natively (`getrandom`), `crypto.getRandomValues`
//! in the Worker (directly) and in Node (through getrandom's JS backend). The core's
//! functions take random bytes as parameters; adapters fetch them here.

/// `N` random bytes, or why the platform could not give them.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], String> {
    let mut bytes = [0u8; N];
    fill(&mut bytes).map_err(|e| format!("no randomness available: {e}"))?;
    Ok(bytes)
}

#[cfg(not(all(target_arch = "wasm32", feature = "worker")))]
fn fill(bytes: &mut [u8]) -> Result<(), getrandom::Error> {
    getrandom::getrandom(bytes)
}

/// In the Worker, `crypto.getRandomValues` called directly: workerd always has it, and
/// getrandom's JS backend (which looks for it, or for Node's `crypto`, in a thread-local on
/// each call) cost the upload ~5 KB. Our draws are far below its 65,536-byte limit.
#[cfg(all(target_arch = "wasm32", feature = "worker"))]
fn fill(bytes: &mut [u8]) -> Result<(), String> {
    use wasm_bindgen::prelude::wasm_bindgen;
    use wasm_bindgen::JsValue;
    #[wasm_bindgen]
    extern "C" {
        #[wasm_bindgen(js_namespace = crypto, js_name = getRandomValues, catch)]
        fn get_random_values(bytes: &mut [u8]) -> Result<JsValue, JsValue>;
    }
    get_random_values(bytes)
        .map(drop)
        .map_err(|e| match e.as_string() {
            Some(text) => text,
            // A JS error's message (the upload has no Debug formatting: `-Zfmt-debug=none`).
            None => wasm_bindgen::JsCast::dyn_into::<js_sys::Error>(e)
                .map(|e| String::from(e.message()))
                .unwrap_or_else(|_| "crypto.getRandomValues failed".to_owned()),
        })
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
