//! Node adapter (wasm-bindgen exports for npm). Arrives with the npm issue.
