//! HTTP routes of the review server.
//!
//! | route | reply |
//! | --- | --- |
//! | `GET /` | the page (`assets/review.html`) |
//! | `GET /api/state` | run, classes, candidates with scores, top classes and decisions |
//! | `GET /api/image/ID.png` | image `ID` of the reviewed split, as PNG at its stored size |
//! | `POST /api/decision` | `{"id", "action", "new_label", "note"}`: set a decision |
//! | `POST /api/undo` | `{"id"}`: undo that id's last change |
//!
//! Errors are JSON `{"error": MESSAGE}` with a 4xx status, and nothing is written for them.
//!
//! | status | cause |
//! | --- | --- |
//! | 400 | an invalid body: malformed JSON, unknown id, class or action |
//! | 403 | a foreign Host or Origin |
//! | 404 | an unknown path or image id |
//! | 405 | a wrong method |
//! | 409 | a decision on the test split, or an undo with nothing to undo |
//! | 413 | a body over [`MAX_BODY_BYTES`] |
//! | 415 | a POST that is not `application/json` |

use std::io::{Read, Write};
use std::sync::{Mutex, PoisonError};

use serde_json::{Map, Value, json};
use tiny_http::{Method, Request, StatusCode};
use toploss_data::corrections::resolve_label;
use toploss_data::{Action, Correction};

use super::session::{ApiError, Decisions, ReviewData, change_json, state_json, undo_json};

/// The page, embedded in the binary.
const PAGE_HTML: &str = include_str!("../../assets/review.html");

/// Largest request body accepted. A decision is under 200 bytes plus its note, so this leaves
/// room for a note of a few thousand characters.
pub const MAX_BODY_BYTES: usize = 8 * 1024;

/// The page may load only its own inline script and style, and images and JSON from this
/// server (plus the empty `data:` favicon), so it makes no request to another host.
const PAGE_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; \
    style-src 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// The server's shared state: read-only data plus the decisions behind a mutex.
pub struct App {
    /// Data the page shows.
    pub data: ReviewData,
    /// Decisions; the lock is held across the file write, so writes never interleave.
    pub decisions: Mutex<Decisions>,
    /// `Host` header values accepted (empty: any), so that a web page on another site cannot
    /// reach the server through DNS rebinding.
    pub allowed_hosts: Vec<String>,
}

/// A reply before it becomes a tiny_http response.
#[derive(Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type` header.
    pub content_type: &'static str,
    /// Body bytes.
    pub body: Vec<u8>,
    /// Other headers.
    pub headers: Vec<(&'static str, String)>,
}

impl Reply {
    fn json(status: u16, value: &Value) -> Self {
        Self {
            status,
            content_type: "application/json; charset=utf-8",
            body: value.to_string().into_bytes(),
            headers: vec![("Cache-Control", "no-store".to_string())],
        }
    }

    fn error(error: ApiError) -> Self {
        Self::json(error.status, &json!({ "error": error.message }))
    }
}

/// The request as the routes see it.
pub struct Incoming<'a> {
    /// HTTP method.
    pub method: &'a Method,
    /// Request target, with any query string.
    pub url: &'a str,
    /// `Host` header, if sent.
    pub host: Option<&'a str>,
    /// `Origin` header, if sent.
    pub origin: Option<&'a str>,
    /// `Content-Type` header, if sent.
    pub content_type: Option<&'a str>,
    /// The body, or the error that reading it gave (413).
    pub body: Result<Vec<u8>, ApiError>,
}

/// Handles one tiny_http request; a failure to send the reply is logged.
pub fn handle(app: &App, mut request: Request) {
    let body = read_body(&mut request);
    let header = |name: &'static str| {
        request
            .headers()
            .iter()
            .find(|header| header.field.equiv(name))
            .map(|header| header.value.as_str().to_string())
    };
    let (host, origin, content_type) = (header("Host"), header("Origin"), header("Content-Type"));
    let incoming = Incoming {
        method: request.method(),
        url: request.url(),
        host: host.as_deref(),
        origin: origin.as_deref(),
        content_type: content_type.as_deref(),
        body,
    };
    let reply = route(app, &incoming);
    if reply.status >= 400 {
        tracing::info!(
            method = %request.method(),
            url = request.url(),
            status = reply.status,
            "rejected request"
        );
    }

    if let Err(error) = send(request, reply) {
        tracing::debug!("cannot send the reply: {error}");
    }
}

/// Writes `reply` with `Connection: close`, so that each connection carries one request.
///
/// tiny_http 0.12 serves each keep-alive connection as one task of its thread pool until the
/// client closes it, and a burst of new connections can stay queued behind those tasks. With
/// keep-alive, 12 clients that connected at once got 4 replies (the test
/// `review_answers_a_burst_of_connections`), and chromium's image requests hung the same way.
/// With one request per connection, each task ends as soon as the client closes. tiny_http
/// drops a `Connection` header given to `Response`, so the response goes to the raw writer.
fn send(request: Request, reply: Reply) -> std::io::Result<()> {
    let status = StatusCode(reply.status);
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
         X-Content-Type-Options: nosniff\r\nConnection: close\r\n",
        status.0,
        status.default_reason_phrase(),
        reply.content_type,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");

    let mut writer = request.into_writer();
    writer.write_all(head.as_bytes())?;
    writer.write_all(&reply.body)?;
    writer.flush()
}

/// Reads the body up to [`MAX_BODY_BYTES`]; a longer one (by its Content-Length, or as read)
/// is a 413 error and is not read further.
fn read_body(request: &mut Request) -> Result<Vec<u8>, ApiError> {
    let too_large = || ApiError {
        status: 413,
        message: format!("request body too large: at most {MAX_BODY_BYTES} bytes"),
    };
    // NOTE: tiny_http 0.12 reads and discards the unread body before it sends the reply. A
    // client that announces 1 TB and sends 2 bytes got no 413 and held one of the 4 worker
    // threads until it closed the connection. The server went on serving the others.
    if request
        .body_length()
        .is_some_and(|length| length > MAX_BODY_BYTES)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    request
        .as_reader()
        .take(MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|error| ApiError::bad_request(format!("cannot read the request body: {error}")))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(too_large());
    }
    Ok(body)
}

/// Sends a request to its route.
pub fn route(app: &App, incoming: &Incoming<'_>) -> Reply {
    if !app.allowed_hosts.is_empty()
        && let Some(host) = incoming.host
        && !app.allowed_hosts.iter().any(|allowed| allowed == host)
    {
        return Reply::error(ApiError {
            status: 403,
            message: format!(
                "unexpected Host {host:?}; open the address that `toploss review` printed"
            ),
        });
    }

    let path = incoming.url.split(['?', '#']).next().unwrap_or_default();
    let result = match (path, incoming.method) {
        ("/" | "/index.html", Method::Get) => return page(),
        ("/api/state", Method::Get) => {
            let decisions = lock(app);
            Ok(Reply::json(200, &state_json(&app.data, &decisions)))
        }
        ("/api/decision", Method::Post) => {
            check_post(incoming).and_then(|body| post_decision(app, &body))
        }
        ("/api/undo", Method::Post) => check_post(incoming).and_then(|body| post_undo(app, &body)),
        ("/" | "/index.html" | "/api/state", _) => Err(wrong_method(path, "GET")),
        ("/api/decision" | "/api/undo", _) => Err(wrong_method(path, "POST")),
        _ => match path.strip_prefix("/api/image/") {
            Some(name) if *incoming.method == Method::Get => image(app, name),
            Some(_) => Err(wrong_method(path, "GET")),
            None => Err(ApiError {
                status: 404,
                message: format!("not found: {path}"),
            }),
        },
    };
    result.unwrap_or_else(Reply::error)
}

fn lock(app: &App) -> std::sync::MutexGuard<'_, Decisions> {
    // A panic in another request cannot leave the decisions half-changed: each change is one
    // assignment after the file write succeeded.
    app.decisions.lock().unwrap_or_else(PoisonError::into_inner)
}

fn wrong_method(path: &str, allowed: &str) -> ApiError {
    ApiError {
        status: 405,
        message: format!("{path} accepts {allowed} only"),
    }
}

fn page() -> Reply {
    Reply {
        status: 200,
        content_type: "text/html; charset=utf-8",
        body: PAGE_HTML.as_bytes().to_vec(),
        headers: vec![
            ("Content-Security-Policy", PAGE_CSP.to_string()),
            ("Cache-Control", "no-store".to_string()),
        ],
    }
}

/// Serves `ID.png`: only ids of the reviewed split, never a path from the request.
fn image(app: &App, name: &str) -> Result<Reply, ApiError> {
    let not_found = || ApiError {
        status: 404,
        message: format!(
            "no image {name:?}: the {} split has ids 0 to {}, served as /api/image/ID.png",
            app.data.split,
            app.data.len().saturating_sub(1)
        ),
    };
    let digits = name.strip_suffix(".png").ok_or_else(not_found)?;
    if digits.is_empty() || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return Err(not_found());
    }
    let id: usize = digits.parse().map_err(|_| not_found())?;
    if id >= app.data.len() {
        return Err(not_found());
    }
    let png = super::encode_png(&app.data.images, id).map_err(|error| ApiError {
        status: 500,
        message: format!("cannot encode image {id}: {error}"),
    })?;
    Ok(Reply {
        status: 200,
        content_type: "image/png",
        body: png,
        // The run's images never change while the server runs.
        headers: vec![("Cache-Control", "private, max-age=3600".to_string())],
    })
}

/// Checks a POST's headers and returns its body.
fn check_post(incoming: &Incoming<'_>) -> Result<Vec<u8>, ApiError> {
    // A page on another site can send a POST here without a CORS preflight only with a
    // "simple" content type. Requiring JSON forces the preflight, which this server never
    // grants.
    let is_json = incoming.content_type.is_some_and(|value| {
        value
            .split(';')
            .next()
            .is_some_and(|kind| kind.trim().eq_ignore_ascii_case("application/json"))
    });
    if !is_json {
        return Err(ApiError {
            status: 415,
            message: "send the body as JSON with Content-Type: application/json".to_string(),
        });
    }
    if let (Some(origin), Some(host)) = (incoming.origin, incoming.host)
        && origin != format!("http://{host}")
    {
        return Err(ApiError {
            status: 403,
            message: format!("requests from {origin} are not allowed"),
        });
    }
    incoming.body.clone()
}

/// Parses a JSON object body, allowing only the `allowed` keys.
fn parse_object(body: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| ApiError::bad_request(format!("malformed JSON body: {error}")))?;
    let Value::Object(object) = value else {
        return Err(ApiError::bad_request(format!(
            "expected a JSON object with the keys {}",
            allowed.join(", ")
        )));
    };
    if let Some(key) = object.keys().find(|key| !allowed.contains(&key.as_str())) {
        return Err(ApiError::bad_request(format!(
            "unknown key {key:?}; expected {}",
            allowed.join(", ")
        )));
    }
    Ok(object)
}

/// Reads and range-checks the `id` of a body.
fn parse_id(data: &ReviewData, object: &Map<String, Value>) -> Result<u32, ApiError> {
    let value = object
        .get("id")
        .ok_or_else(|| ApiError::bad_request("missing key \"id\""))?;
    let id = value
        .as_u64()
        .and_then(|id| u32::try_from(id).ok())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "invalid id {value}: expected a sample id, a non-negative integer"
            ))
        })?;
    if id as usize >= data.len() {
        return Err(ApiError::bad_request(format!(
            "unknown id {id}: the {} split of this run has {} samples (ids 0 to {})",
            data.split,
            data.len(),
            data.len().saturating_sub(1)
        )));
    }
    Ok(id)
}

fn check_editable(data: &ReviewData) -> Result<(), ApiError> {
    if data.editable() {
        return Ok(());
    }
    Err(ApiError {
        status: 409,
        message: format!(
            "the {} split is read-only: corrections.csv holds training-sample ids; review with \
             --split train to make decisions",
            data.split
        ),
    })
}

/// Parses a decision body into a correction. A missing `note` keeps the id's current note.
fn parse_decision(
    data: &ReviewData,
    decisions: &Decisions,
    body: &[u8],
) -> Result<Correction, ApiError> {
    let object = parse_object(body, &["id", "action", "new_label", "note"])?;
    let id = parse_id(data, &object)?;

    let new_label = object.get("new_label").filter(|value| !value.is_null());
    let action_value = object
        .get("action")
        .ok_or_else(|| ApiError::bad_request("missing key \"action\""))?;
    let action = match (action_value.as_str(), new_label) {
        (Some("relabel"), Some(label)) => Action::Relabel(parse_class(data, label)?),
        (Some("relabel"), None) => {
            return Err(ApiError::bad_request(
                "relabel needs \"new_label\": a class index or name",
            ));
        }
        (Some("keep" | "discard"), Some(label)) => {
            return Err(ApiError::bad_request(format!(
                "{action_value} takes no new_label (got {label}); use relabel to change the label"
            )));
        }
        (Some("keep"), None) => Action::Keep,
        (Some("discard"), None) => Action::Discard,
        _ => {
            return Err(ApiError::bad_request(format!(
                "unknown action {action_value}: expected \"keep\", \"relabel\" or \"discard\""
            )));
        }
    };

    let note = match object.get("note") {
        None | Some(Value::Null) => decisions
            .get(id)
            .map(|decision| decision.note.clone())
            .unwrap_or_default(),
        Some(Value::String(note)) => note.trim().to_string(),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid note {other}: expected a string"
            )));
        }
    };

    Ok(Correction {
        id,
        action,
        note,
        path: data.images.path(id as usize).map(str::to_string),
    })
}

/// Reads `new_label`: a class index (a JSON number) or a class name (a JSON string). A string
/// of digits is matched against the names first, as in corrections.csv.
fn parse_class(data: &ReviewData, value: &Value) -> Result<u32, ApiError> {
    let classes = &data.classes;
    let label = match value {
        Value::Number(number) => number
            .as_u64()
            .filter(|&index| (index as usize) < classes.len())
            .map(|index| index as u32),
        Value::String(name) => resolve_label(name, classes),
        _ => None,
    };
    label.ok_or_else(|| {
        ApiError::bad_request(format!(
            "new_label {value} is not a class: expected a class index 0 to {} or one of the {} \
             class names",
            classes.len().saturating_sub(1),
            classes.len()
        ))
    })
}

fn post_decision(app: &App, body: &[u8]) -> Result<Reply, ApiError> {
    check_editable(&app.data)?;
    let mut decisions = lock(app);
    let correction = parse_decision(&app.data, &decisions, body)?;
    let id = correction.id;
    decisions.decide(&app.data, correction)?;
    Ok(Reply::json(200, &change_json(&app.data, &decisions, id)))
}

fn post_undo(app: &App, body: &[u8]) -> Result<Reply, ApiError> {
    check_editable(&app.data)?;
    let object = parse_object(body, &["id"])?;
    let id = parse_id(&app.data, &object)?;
    let mut decisions = lock(app);
    let result = decisions.undo(&app.data, id)?;
    Ok(Reply::json(
        200,
        &undo_json(&app.data, &decisions, id, result),
    ))
}
