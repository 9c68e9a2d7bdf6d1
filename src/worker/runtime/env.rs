//! What every handler needs from the environment: settings, and an Eka client. Settings are
//! parsed once per isolate (a deployment's variables do not change under a running isolate)
//! and shared. A client is made per request (workerd forbids one request from waiting on
//! another's I/O); the access token is shared by all requests of the isolate.

use std::cell::RefCell;
use std::rc::Rc;

use worker::Env;

use crate::eka::api::{EkaApiConfig, EkaClient, TokenSlots};
use crate::settings::Settings;
use crate::worker::runtime::fetch_client::{FetchClient, WorkerClock};

/// The Eka client over `fetch`.
pub type Client = EkaClient<FetchClient, WorkerClock>;

thread_local! {
    /// The isolate's tokens, one per account, bounded (`TokenSlots::BOUND`, a core rule).
    static TOKENS: RefCell<TokenSlots> = RefCell::new(TokenSlots::default());
    static SETTINGS: RefCell<Option<Rc<Settings>>> = const { RefCell::new(None) };
}

/// A client for this request, sharing the isolate's token for `config`: each account (the
/// environment's, each source's) has its own token.
pub fn client_for(config: &EkaApiConfig) -> Client {
    let tokens = TOKENS.with(|cell| cell.borrow_mut().for_account(config));
    EkaClient::with_tokens(config.clone(), FetchClient, WorkerClock, tokens)
}

/// Settings from the env, plus a problem when the D1 binding is missing; parsed on the
/// isolate's first use.
pub fn settings(env: &Env) -> Rc<Settings> {
    SETTINGS.with(|cell| {
        Rc::clone(cell.borrow_mut().get_or_insert_with(|| {
            let mut settings =
                Settings::from_lookup(|name| env.var(name).ok().map(|v| v.to_string()));
            // Bodies are kept sealed in D1: a larger MAX_BODY_BYTES is capped (and named).
            crate::event_log::limits::cap_body_for_d1(&mut settings);
            if env.d1("DB").is_err() {
                settings
                    .problems
                    .push("the D1 binding DB is missing".to_owned());
            }
            Rc::new(settings)
        }))
    })
}
