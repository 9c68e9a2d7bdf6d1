//! The HTTP boundary. Each runtime supplies a client (`fetch` in the Worker and in Node; an
//! in-memory one in tests). Futures are not `Send`: wasm is single-threaded.

/// HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET: the Eka API's resource reads.
    Get,
    /// POST: the Eka login, the forward and reminder callbacks.
    Post,
}

impl Method {
    /// The method's name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
        }
    }
}

/// A request. The client enforces `timeout_ms` (an abort signal in `fetch`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// GET or POST.
    pub method: Method,
    /// Absolute `http(s)://` URL; ids in its path are already percent-encoded.
    pub url: String,
    /// Headers, in the order they are sent; may hold secrets, so never logged.
    pub headers: Vec<(String, String)>,
    /// The exact bytes to send (signatures cover them), or none for GET.
    pub body: Option<Vec<u8>>,
    /// Give up after this long.
    pub timeout_ms: u32,
    /// Read at most this many bytes of the answer and cancel the rest of its body (what is
    /// kept of a receiver's answer); none reads it whole (the Eka API's resources).
    pub max_response_bytes: Option<usize>,
}

/// A response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status the server answered (any, 2xx or not: callers decide).
    pub status: u16,
    /// Response headers as the runtime gives them (the Worker's `fetch`: lowercase names,
    /// repeated ones joined); the Node adapter passes none.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A redirect (3xx): never followed. It is a failed attempt, recorded with its status and
    /// [`HttpResponse::location`].
    pub fn is_redirect(&self) -> bool {
        is_redirect(self.status)
    }

    /// Where a redirect pointed (`Location`), cut to [`LOCATION_KEPT_CHARS`] characters.
    pub fn location(&self) -> Option<String> {
        self.header("Location")
            .map(|l| l.trim().chars().take(LOCATION_KEPT_CHARS).collect())
    }
}

/// A 3xx status. Outgoing requests never follow redirects: a POST turned into a GET, or a
/// signed body re-sent to another host, is never a delivery.
pub fn is_redirect(status: u16) -> bool {
    (300..400).contains(&status)
}

/// The most of a receiver's answer that is read (and kept on record): 2 KB. The rest of its
/// body is cancelled, not read.
pub const KEPT_RESPONSE_BYTES: usize = 2048;

/// How much of a redirect's `Location` is kept on record.
pub const LOCATION_KEPT_CHARS: usize = 512;

/// A transport failure (no response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// No response within the timeout.
    Timeout,
    /// Connection refused, DNS, TLS, …; the text never includes request headers.
    Network(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Timeout => f.write_str("timed out"),
            HttpError::Network(why) => write!(f, "network error: {why}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// Sends HTTP requests.
#[allow(async_fn_in_trait)]
pub trait HttpClient {
    /// Sends one request.
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError>;
}

impl<T: HttpClient + ?Sized> HttpClient for &T {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        (**self).send(request).await
    }
}

impl<T: HttpClient + ?Sized> HttpClient for std::rc::Rc<T> {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        (**self).send(request).await
    }
}

/// The current time. Passed in because `SystemTime::now()` panics on wasm32.
pub trait Clock {
    /// Unix time in milliseconds.
    fn now_ms(&self) -> i64;
}

impl<T: Clock + ?Sized> Clock for &T {
    fn now_ms(&self) -> i64 {
        (**self).now_ms()
    }
}
