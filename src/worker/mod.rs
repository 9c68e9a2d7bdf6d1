//! Cloudflare Worker adapter (routes, env, D1, Durable Objects). Arrives with the Worker issue.
