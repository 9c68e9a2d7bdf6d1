//! What every handler needs from the environment: settings, and the Eka client of this
//! isolate (one per isolate, so the token is shared across requests).

use std::cell::RefCell;
use std::rc::Rc;

use worker::Env;

use super::fetch_client::{FetchClient, WorkerClock};
use crate::eka_api::{EkaApiConfig, EkaClient};
use crate::settings::Settings;

/// The Eka client over `fetch`.
pub type Client = EkaClient<FetchClient, WorkerClock>;

thread_local! {
    static CLIENT: RefCell<Option<Rc<Client>>> = const { RefCell::new(None) };
}

/// This isolate's client for `config` (a new one if the configuration changed).
pub fn client_for(config: &EkaApiConfig) -> Rc<Client> {
    CLIENT.with(|cell| {
        let mut slot = cell.borrow_mut();
        match slot.as_ref() {
            Some(client) if client.config() == config => Rc::clone(client),
            _ => {
                let client = Rc::new(EkaClient::new(config.clone(), FetchClient, WorkerClock));
                *slot = Some(Rc::clone(&client));
                client
            }
        }
    })
}

/// Settings from the env, plus a problem when the D1 binding is missing.
pub fn settings(env: &Env) -> Settings {
    let mut settings = Settings::from_lookup(|name| env.var(name).ok().map(|v| v.to_string()));
    if env.d1("DB").is_err() {
        settings
            .problems
            .push("the D1 binding DB is missing".to_owned());
    }
    settings
}
