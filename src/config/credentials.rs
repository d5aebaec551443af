//! Vertex AI credentials as configured: service accounts from `GOOGLE_CREDENTIALS_JSON` and
//! from `*.json` files in `STORAGE_DIR/credentials`, and express API keys from
//! `VERTEX_EXPRESS_API_KEY`. Owns parsing and validation only: what is usable becomes an
//! [`Account`] (its RSA key parsed and test-signed once) or an [`ExpressKey`]; what is not
//! becomes a [`Problem`] naming where it was and whose it was, never the key.
//!
//! Accepted `GOOGLE_CREDENTIALS_JSON` forms (HAJIMI's and then some):
//! - one service-account object;
//! - a JSON array of them;
//! - several objects separated by commas, newlines or anything else (HAJIMI scans for
//!   top-level `{…}` by brace depth; we do the same, but braces inside JSON strings do not
//!   count, and raw line breaks inside strings — a key pasted with real newlines — are
//!   read as `\n`);
//! - the whole thing as a JSON string holding one of the above (a doubly encoded secret);
//! - a `private_key` whose line breaks arrived as the two characters `\n` (escaped twice).
//!
//! Required fields: `type` = `service_account`, `project_id`, `private_key` (an RSA key in
//! PEM, PKCS#8 `BEGIN PRIVATE KEY` as Google issues them, or PKCS#1), `client_email`.
//! `token_uri` defaults to Google's; it must be `https` (plain `http` only to a loopback
//! address, for tests). `private_key_id` is optional (sent as the JWT `kid`). HAJIMI also
//! required `private_key_id` and skipped a second account of the same project; we key
//! accounts by `client_email` instead, so two accounts of one project both serve.

use std::fmt;
use std::path::Path;

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Map, Value};
use url::Url;

use crate::mask::{KeyId, Secret};

/// Google's OAuth token endpoint, the `token_uri` of every real key file.
pub const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// Upper bound of the accounts read from one source (the variable, or the directory).
pub const MAX_ACCOUNTS: usize = 1000;
/// Upper bound of one credentials file (a key file is about 2.3 KB).
pub const MAX_FILE_BYTES: u64 = 256 * 1024;
/// Upper bound of the `GOOGLE_CREDENTIALS_JSON` text scanned (about 1000 key files).
pub const MAX_TEXT_BYTES: usize = 4 * 1024 * 1024;
/// Upper bound of the express keys read from `VERTEX_EXPRESS_API_KEY`.
pub const MAX_EXPRESS_KEYS: usize = 1000;
/// Longest `project_id` / `client_email` accepted (Google's are far shorter).
const MAX_FIELD_LEN: usize = 256;

/// Where an account (or a problem) was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The n-th object (1-based) of `GOOGLE_CREDENTIALS_JSON`.
    Env { position: usize },
    /// The n-th object (1-based) of a file in the credentials directory (a file usually
    /// holds one; the position is shown only past the first).
    File { name: String, position: usize },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env { position } => write!(f, "GOOGLE_CREDENTIALS_JSON #{position}"),
            Self::File { name, position: 1 } => write!(f, "credentials/{name}"),
            Self::File { name, position } => write!(f, "credentials/{name} #{position}"),
        }
    }
}

/// A usable service account. Cheap to share behind an `Arc`; `Debug` and `Display` show the
/// id, email and project, never the key.
#[derive(Clone)]
pub struct Account {
    id: KeyId,
    client_email: String,
    project_id: String,
    private_key_id: Option<String>,
    token_uri: Url,
    key: EncodingKey,
    /// Hash of the key text and token endpoint: tells a replaced key of the same email.
    fingerprint: u64,
    origin: Origin,
}

impl Account {
    /// The account's id in logs, metrics, the store and the pool: [`KeyId::of`] its
    /// `client_email` (stable across restarts and key rotations; never derived from the key).
    pub fn id(&self) -> KeyId {
        self.id
    }

    pub fn client_email(&self) -> &str {
        &self.client_email
    }

    /// The account's own project (see `VERTEX_PROJECT_ID` for the override).
    pub fn project_id(&self) -> &str {
        &self.project_id
    }

    pub fn private_key_id(&self) -> Option<&str> {
        self.private_key_id.as_deref()
    }

    pub fn token_uri(&self) -> &Url {
        &self.token_uri
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The parsed RSA key, for signing assertions (`token.rs`).
    pub(crate) fn encoding_key(&self) -> &EncodingKey {
        &self.key
    }

    /// Whether `other` carries the same key and token endpoint (a cached token of one
    /// stays valid for the other).
    pub fn same_credentials(&self, other: &Account) -> bool {
        self.fingerprint == other.fingerprint
            && self.client_email == other.client_email
            && self.token_uri == other.token_uri
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("id", &self.id)
            .field("client_email", &self.client_email)
            .field("project_id", &self.project_id)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.client_email, self.project_id)
    }
}

/// What is wrong with one configured credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// The text holds no JSON object at all.
    NoObject,
    /// An object (or the text) is not valid JSON; `detail` is the parser's line/column.
    NotJson { detail: String },
    /// An element of a JSON array is not an object.
    NotAnObject,
    /// A required field is absent, empty or not a string.
    Missing { field: &'static str },
    /// `type` is not `service_account` (an OAuth client file, a user credential…).
    WrongType { found: String },
    /// A field has an unusable value (too long, control characters, not an email).
    BadField { field: &'static str },
    /// `private_key` is not an RSA private key in PEM.
    BadKey,
    /// `token_uri` is not an `https` URL (or `http` to a loopback address).
    BadTokenUri,
    /// A second account with an email already loaded (the first one is kept).
    Duplicate { first: Origin },
    /// The file could not be read.
    Unreadable { detail: String },
    /// Over [`MAX_FILE_BYTES`] / [`MAX_TEXT_BYTES`].
    TooLarge,
    /// Over [`MAX_ACCOUNTS`]: the rest was not read.
    TooMany,
}

/// A credential that cannot be used, by position and email (when it had one).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub origin: Origin,
    pub email: Option<String>,
    pub kind: ProblemKind,
}

impl Problem {
    /// One bilingual line for the start-up log and the dashboard.
    pub fn message(&self) -> String {
        let who = match &self.email {
            Some(e) => format!("{} ({e})", self.origin),
            None => self.origin.to_string(),
        };
        let what = match &self.kind {
            ProblemKind::NoObject => "没有找到任何 JSON 对象 / contains no JSON object".to_owned(),
            ProblemKind::NotJson { detail } => {
                format!("不是有效的 JSON（{detail}）/ is not valid JSON ({detail})")
            }
            ProblemKind::NotAnObject => "不是 JSON 对象 / is not a JSON object".to_owned(),
            ProblemKind::Missing { field } => {
                format!("缺少字段 {field} / the field `{field}` is missing or empty")
            }
            ProblemKind::WrongType { found } => format!(
                "type 为 {found:?}，不是 service_account（需要服务账号密钥文件）/ \
                 `type` is {found:?}, not \"service_account\" (a service-account key file is needed)"
            ),
            ProblemKind::BadField { field } => {
                format!("字段 {field} 的值无效 / the field `{field}` has an unusable value")
            }
            ProblemKind::BadKey => "private_key 不是有效的 RSA 私钥（PEM）/ \
                 `private_key` is not a valid RSA private key in PEM form"
                .to_owned(),
            ProblemKind::BadTokenUri => "token_uri 必须是 https 地址 / \
                 `token_uri` must be an https URL"
                .to_owned(),
            ProblemKind::Duplicate { first } => {
                format!("与 {first} 的账号重复，已忽略 / the same account as {first}; ignored")
            }
            ProblemKind::Unreadable { detail } => {
                format!("无法读取（{detail}）/ cannot be read ({detail})")
            }
            ProblemKind::TooLarge => "内容过大 / is too large".to_owned(),
            ProblemKind::TooMany => format!(
                "账号超过 {MAX_ACCOUNTS} 个，其余未读取 / more than {MAX_ACCOUNTS} accounts; the rest was not read"
            ),
        };
        format!("{who}：{what}")
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

/// The accounts and problems of one or more sources, in the order found.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    pub accounts: Vec<Account>,
    pub problems: Vec<Problem>,
}

impl Loaded {
    /// `self` then `more`; an account whose email is already present is dropped with a
    /// [`ProblemKind::Duplicate`] (the first one wins: the variable before the files).
    pub fn merge(mut self, more: Loaded) -> Loaded {
        self.problems.extend(more.problems);
        for account in more.accounts {
            self.push(account);
        }
        self
    }

    fn push(&mut self, account: Account) {
        if let Some(first) = self
            .accounts
            .iter()
            .find(|a| a.client_email == account.client_email)
        {
            self.problems.push(Problem {
                origin: account.origin.clone(),
                email: Some(account.client_email.clone()),
                kind: ProblemKind::Duplicate {
                    first: first.origin.clone(),
                },
            });
            return;
        }
        self.accounts.push(account);
    }
}

/// The bilingual start-up error for a `GOOGLE_CREDENTIALS_JSON` that is set but yields no
/// usable account (exit code 2), listing what was wrong.
pub fn no_usable_account_message(problems: &[Problem]) -> String {
    let mut msg = "GOOGLE_CREDENTIALS_JSON 已设置，但没有可用的服务账号 / \
                   GOOGLE_CREDENTIALS_JSON is set but holds no usable service account"
        .to_owned();
    for p in problems.iter().take(20) {
        msg.push_str("\n  - ");
        msg.push_str(&p.message());
    }
    msg
}

/// Parses the text of `GOOGLE_CREDENTIALS_JSON` (every form listed in the module doc).
pub fn parse_credentials_json(text: &str) -> Loaded {
    parse_text(text, &|position| Origin::Env { position })
}

/// Reads every `*.json` file of `dir` (`STORAGE_DIR/credentials`), in name order; a missing
/// directory is no problem. Blocking file I/O: call it from `spawn_blocking` or before the
/// server starts.
pub fn load_dir(dir: &Path) -> Loaded {
    let mut loaded = Loaded::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return loaded,
        Err(e) => {
            loaded.problems.push(Problem {
                origin: Origin::File {
                    name: String::new(),
                    position: 1,
                },
                email: None,
                kind: ProblemKind::Unreadable {
                    detail: e.kind().to_string(),
                },
            });
            return loaded;
        }
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x.eq_ignore_ascii_case("json"))
        })
        .take(MAX_ACCOUNTS + 1)
        .collect();
    files.sort();
    for path in files {
        if loaded.accounts.len() >= MAX_ACCOUNTS {
            loaded.problems.push(Problem {
                origin: file_origin(&path, 1),
                email: None,
                kind: ProblemKind::TooMany,
            });
            break;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let origin = |position| Origin::File {
            name: name.clone(),
            position,
        };
        match read_bounded(&path) {
            Ok(text) => {
                let one = parse_text(&text, &origin);
                loaded = loaded.merge(one);
            }
            Err(kind) => loaded.problems.push(Problem {
                origin: origin(1),
                email: None,
                kind,
            }),
        }
    }
    loaded
}

fn file_origin(path: &Path, position: usize) -> Origin {
    Origin::File {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        position,
    }
}

fn read_bounded(path: &Path) -> Result<String, ProblemKind> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| ProblemKind::Unreadable {
        detail: e.kind().to_string(),
    })?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| ProblemKind::Unreadable {
            detail: e.kind().to_string(),
        })?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(ProblemKind::TooLarge);
    }
    Ok(text)
}

fn parse_text(text: &str, origin: &dyn Fn(usize) -> Origin) -> Loaded {
    let mut loaded = Loaded::default();
    if text.len() > MAX_TEXT_BYTES {
        loaded.problems.push(Problem {
            origin: origin(1),
            email: None,
            kind: ProblemKind::TooLarge,
        });
        return loaded;
    }
    let objects = split_objects(text);
    if objects.is_empty() {
        loaded.problems.push(Problem {
            origin: origin(1),
            email: None,
            kind: ProblemKind::NoObject,
        });
        return loaded;
    }
    for (i, object) in objects.into_iter().enumerate() {
        let position = i + 1;
        if loaded.accounts.len() >= MAX_ACCOUNTS {
            loaded.problems.push(Problem {
                origin: origin(position),
                email: None,
                kind: ProblemKind::TooMany,
            });
            break;
        }
        let result = object.and_then(|v| match v {
            Value::Object(map) => account_from(&map, origin(position)),
            _ => Err((None, ProblemKind::NotAnObject)),
        });
        match result {
            Ok(account) => loaded.push(account),
            Err((email, kind)) => loaded.problems.push(Problem {
                origin: origin(position),
                email,
                kind,
            }),
        }
    }
    loaded
}

type Scanned = Result<Value, (Option<String>, ProblemKind)>;

/// The JSON values the text holds, in order: the whole text when it is JSON (an object, the
/// elements of an array, or a string holding either), else every top-level `{…}` found by
/// scanning.
fn split_objects(text: &str) -> Vec<Scanned> {
    let trimmed = text.trim().trim_start_matches('\u{feff}');
    match serde_json::from_str::<Value>(trimmed) {
        Ok(Value::Array(items)) => return items.into_iter().map(Ok).collect(),
        Ok(Value::String(inner)) if inner.trim_start().starts_with(['{', '[']) => {
            return split_objects(&inner);
        }
        Ok(v @ Value::Object(_)) => return vec![Ok(v)],
        _ => {}
    }
    scan_objects(trimmed)
        .into_iter()
        .map(|raw| {
            raw.and_then(|raw| {
                serde_json::from_str::<Value>(&raw).map_err(|e| {
                    (
                        None,
                        ProblemKind::NotJson {
                            detail: format!("line {} column {}", e.line(), e.column()),
                        },
                    )
                })
            })
        })
        .collect()
}

/// HAJIMI's scan, string-aware: outside objects every character is a separator; inside one,
/// braces count by depth except within JSON strings, and raw CR/LF/TAB within strings are
/// written escaped (JSON forbids them; a pasted key often has them).
fn scan_objects(text: &str) -> Vec<Result<String, (Option<String>, ProblemKind)>> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if depth == 0 {
            if c == '{' {
                depth = 1;
                current.clear();
                current.push(c);
            }
            continue;
        }
        if in_string {
            match c {
                _ if escaped => {
                    escaped = false;
                    current.push(c);
                }
                '\\' => {
                    escaped = true;
                    current.push(c);
                }
                '"' => {
                    in_string = false;
                    current.push(c);
                }
                '\n' => current.push_str("\\n"),
                '\r' => current.push_str("\\r"),
                '\t' => current.push_str("\\t"),
                _ => current.push(c),
            }
            continue;
        }
        current.push(c);
        match c {
            '"' => in_string = true,
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    out.push(Ok(std::mem::take(&mut current)));
                    if out.len() > MAX_ACCOUNTS {
                        return out;
                    }
                }
            }
            _ => {}
        }
    }
    if depth > 0 {
        out.push(Err((
            None,
            ProblemKind::NotJson {
                detail: "unterminated object".to_owned(),
            },
        )));
    }
    out
}

fn string_field<'a>(map: &'a Map<String, Value>, field: &'static str) -> Option<&'a str> {
    map.get(field)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

fn plain_field<'a>(
    map: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a str, ProblemKind> {
    let value = string_field(map, field).ok_or(ProblemKind::Missing { field })?;
    if value.len() > MAX_FIELD_LEN || value.chars().any(char::is_control) {
        return Err(ProblemKind::BadField { field });
    }
    Ok(value)
}

/// Validates one service-account object.
fn account_from(
    map: &Map<String, Value>,
    origin: Origin,
) -> Result<Account, (Option<String>, ProblemKind)> {
    let email = string_field(map, "client_email")
        .filter(|e| e.len() <= MAX_FIELD_LEN && !e.chars().any(char::is_control))
        .map(str::to_owned);
    let fail = |kind| (email.clone(), kind);
    match string_field(map, "type") {
        None => return Err(fail(ProblemKind::Missing { field: "type" })),
        Some("service_account") => {}
        Some(other) => {
            let found: String = other.chars().take(40).filter(|c| !c.is_control()).collect();
            return Err(fail(ProblemKind::WrongType { found }));
        }
    }
    let project_id = plain_field(map, "project_id").map_err(fail)?;
    let pem = string_field(map, "private_key").ok_or(fail(ProblemKind::Missing {
        field: "private_key",
    }))?;
    let client_email = plain_field(map, "client_email").map_err(fail)?;
    if !client_email.contains('@') || client_email.contains(char::is_whitespace) {
        return Err(fail(ProblemKind::BadField {
            field: "client_email",
        }));
    }
    let token_uri = match string_field(map, "token_uri") {
        None => Url::parse(DEFAULT_TOKEN_URI).map_err(|_| fail(ProblemKind::BadTokenUri))?,
        Some(s) => token_uri(s).ok_or(fail(ProblemKind::BadTokenUri))?,
    };
    let private_key_id = string_field(map, "private_key_id")
        .filter(|k| k.len() <= MAX_FIELD_LEN && !k.chars().any(char::is_control))
        .map(str::to_owned);
    let pem = normalize_pem(pem);
    let key = rsa_key(&pem).ok_or(fail(ProblemKind::BadKey))?;
    let fingerprint = {
        let mut h = xxhash_rust::xxh64::Xxh64::new(0x7665_7274_6578);
        h.update(pem.as_bytes());
        h.update(token_uri.as_str().as_bytes());
        h.digest()
    };
    Ok(Account {
        id: KeyId::of(client_email),
        client_email: client_email.to_owned(),
        project_id: project_id.to_owned(),
        private_key_id,
        token_uri,
        key,
        fingerprint,
        origin,
    })
}

/// A key whose line breaks arrived as the two characters `\n` gets real ones back.
fn normalize_pem(pem: &str) -> String {
    if !pem.contains('\n') && pem.contains("\\n") {
        pem.replace("\\n", "\n")
    } else {
        pem.to_owned()
    }
}

/// Parses the PEM and signs a probe with it, so a key that would fail at the first token
/// request is reported at start-up instead.
fn rsa_key(pem: &str) -> Option<EncodingKey> {
    if !pem.contains("PRIVATE KEY-----") {
        return None;
    }
    let key = EncodingKey::from_rsa_pem(pem.as_bytes()).ok()?;
    jsonwebtoken::crypto::sign(b"hajimi key check", &key, Algorithm::RS256).ok()?;
    Some(key)
}

fn token_uri(s: &str) -> Option<Url> {
    let url = Url::parse(s).ok()?;
    let loopback = match url.host()? {
        url::Host::Domain(d) => d.eq_ignore_ascii_case("localhost"),
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    let ok = match url.scheme() {
        "https" => true,
        "http" => loopback,
        _ => false,
    };
    (ok && url.username().is_empty() && url.password().is_none()).then_some(url)
}

/// One Vertex express-mode API key. `Debug`/`Display` mask it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpressKey {
    id: KeyId,
    secret: Secret,
}

impl ExpressKey {
    pub fn new(key: &str) -> Self {
        Self {
            id: KeyId::of(key),
            secret: Secret::new(key),
        }
    }

    /// [`KeyId::of`] the key, like an AI Studio key's id.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The key, for the `x-goog-api-key` header only.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }
}

impl fmt::Display for ExpressKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.secret, f)
    }
}

/// `VERTEX_EXPRESS_API_KEY`: keys separated by commas (HAJIMI), whitespace or newlines;
/// surrounding quotes stripped, empties dropped, de-duplicated in order, at most
/// [`MAX_EXPRESS_KEYS`].
pub fn parse_express_keys(text: &str) -> Vec<ExpressKey> {
    let mut seen = std::collections::HashSet::new();
    text.split(|c: char| c == ',' || c.is_whitespace())
        .map(|k| k.trim().trim_matches(['"', '\'']))
        .filter(|k| !k.is_empty() && !k.chars().any(char::is_control))
        .filter(|k| seen.insert(*k))
        .take(MAX_EXPRESS_KEYS)
        .map(ExpressKey::new)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vertex::testkey;
    use serde_json::json;

    fn sa(email: &str, project: &str) -> Value {
        json!({
            "type": "service_account",
            "project_id": project,
            "private_key_id": "0123456789abcdef",
            "private_key": testkey::pem(0),
            "client_email": email,
            "client_id": "1234567890",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": "https://oauth2.googleapis.com/token",
            "universe_domain": "googleapis.com"
        })
    }

    fn emails(l: &Loaded) -> Vec<&str> {
        l.accounts.iter().map(Account::client_email).collect()
    }

    const A: &str = "a@proj-a.iam.gserviceaccount.com";
    const B: &str = "b@proj-b.iam.gserviceaccount.com";

    #[test]
    fn one_object() {
        let l = parse_credentials_json(&sa(A, "proj-a").to_string());
        assert!(l.problems.is_empty(), "{:?}", l.problems);
        assert_eq!(emails(&l), [A]);
        let a = &l.accounts[0];
        assert_eq!(a.project_id(), "proj-a");
        assert_eq!(a.private_key_id(), Some("0123456789abcdef"));
        assert_eq!(a.token_uri().as_str(), DEFAULT_TOKEN_URI);
        assert_eq!(a.id(), KeyId::of(A));
        assert_eq!(a.origin(), &Origin::Env { position: 1 });
    }

    #[test]
    fn every_multi_account_form() {
        let (a, b) = (sa(A, "proj-a"), sa(B, "proj-b"));
        let pretty_a = serde_json::to_string_pretty(&a).unwrap_or_default();
        let forms = [
            format!("{a},{b}"),
            format!("[{a}, {b}]"),
            format!("{pretty_a}\n,\n{b}\n"),
            format!("{a}\n\n{b}"),
            format!("{a} ;; {b}"),
            // A doubly encoded secret.
            Value::String(format!("[{a},{b}]")).to_string(),
            format!("  \u{feff}{a}{b}  "),
        ];
        for text in forms {
            let l = parse_credentials_json(&text);
            assert!(l.problems.is_empty(), "{text:.80}: {:?}", l.problems);
            assert_eq!(emails(&l), [A, B], "{text:.80}");
            assert_eq!(l.accounts[1].origin(), &Origin::Env { position: 2 });
        }
    }

    #[test]
    fn braces_inside_strings_do_not_split_objects() {
        let mut a = sa(A, "proj-a");
        a["client_id"] = json!("}{ weird }");
        let text = format!("{a} , {}", sa(B, "proj-b"));
        let l = parse_credentials_json(&text);
        assert!(l.problems.is_empty(), "{:?}", l.problems);
        assert_eq!(emails(&l), [A, B]);
    }

    #[test]
    fn pasted_keys_with_real_or_doubly_escaped_newlines_parse() {
        // Real line breaks inside the JSON string (invalid JSON, but what a paste gives).
        let a = sa(A, "proj-a").to_string().replace("\\n", "\n");
        assert!(serde_json::from_str::<Value>(&a).is_err());
        let l = parse_credentials_json(&a);
        assert!(l.problems.is_empty(), "{:?}", l.problems);
        assert_eq!(emails(&l), [A]);
        // `\\n` in the JSON text: the key holds the two characters `\n`.
        let b = sa(B, "proj-b").to_string().replace("\\n", "\\\\n");
        let l = parse_credentials_json(&b);
        assert!(l.problems.is_empty(), "{:?}", l.problems);
        assert_eq!(emails(&l), [B]);
    }

    #[test]
    fn malformed_objects_are_reported_by_position_and_email_never_the_key() {
        let good = sa(A, "proj-a");
        let mut no_project = sa(B, "proj-b");
        no_project.as_object_mut().map(|m| m.remove("project_id"));
        let mut bad_key = sa("c@p.iam.gserviceaccount.com", "p");
        bad_key["private_key"] =
            json!("-----BEGIN PRIVATE KEY-----\nTUlJRXZRSUJBREFO\n-----END PRIVATE KEY-----\n");
        let mut oauth_client = sa("d@p.iam.gserviceaccount.com", "p");
        oauth_client["type"] = json!("authorized_user");
        let mut no_type = sa("e@p.iam.gserviceaccount.com", "p");
        no_type.as_object_mut().map(|m| m.remove("type"));
        let mut http_token = sa("f@p.iam.gserviceaccount.com", "p");
        http_token["token_uri"] = json!("http://evil.example/token");
        let mut no_email = sa("x", "p");
        no_email.as_object_mut().map(|m| m.remove("client_email"));
        let text = format!(
            "{good},{no_project},{bad_key},{oauth_client},{no_type},{http_token},{no_email},{{\"type\": oops}}"
        );
        let l = parse_credentials_json(&text);
        assert_eq!(emails(&l), [A]);
        let got: Vec<(usize, Option<&str>, &ProblemKind)> = l
            .problems
            .iter()
            .map(|p| match &p.origin {
                Origin::Env { position } => (*position, p.email.as_deref(), &p.kind),
                Origin::File { .. } => (0, None, &p.kind),
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    2,
                    Some(B),
                    &ProblemKind::Missing {
                        field: "project_id"
                    }
                ),
                (3, Some("c@p.iam.gserviceaccount.com"), &ProblemKind::BadKey),
                (
                    4,
                    Some("d@p.iam.gserviceaccount.com"),
                    &ProblemKind::WrongType {
                        found: "authorized_user".into()
                    }
                ),
                (
                    5,
                    Some("e@p.iam.gserviceaccount.com"),
                    &ProblemKind::Missing { field: "type" }
                ),
                (
                    6,
                    Some("f@p.iam.gserviceaccount.com"),
                    &ProblemKind::BadTokenUri
                ),
                (
                    7,
                    None,
                    &ProblemKind::Missing {
                        field: "client_email"
                    }
                ),
                (
                    8,
                    None,
                    &ProblemKind::NotJson {
                        detail: "line 1 column 10".into()
                    }
                ),
            ]
        );
        let all: String = l.problems.iter().map(Problem::message).collect();
        assert!(all.contains("GOOGLE_CREDENTIALS_JSON #3 (c@p.iam.gserviceaccount.com)"));
        assert!(all.contains(" / "), "bilingual: {all}");
        assert!(
            !all.contains("PRIVATE KEY") && !all.contains("TUlJ"),
            "{all}"
        );
    }

    #[test]
    fn text_without_objects_and_broken_text() {
        for text in ["", "   ", "not json", "[1, 2]"] {
            let l = parse_credentials_json(text);
            assert!(l.accounts.is_empty(), "{text}");
            assert!(!l.problems.is_empty(), "{text}");
        }
        let l = parse_credentials_json("hello");
        assert_eq!(l.problems[0].kind, ProblemKind::NoObject);
        let l = parse_credentials_json("[1]");
        assert_eq!(l.problems[0].kind, ProblemKind::NotAnObject);
        let truncated = sa(A, "p").to_string();
        let l = parse_credentials_json(&truncated[..truncated.len() - 1]);
        assert_eq!(
            l.problems[0].kind,
            ProblemKind::NotJson {
                detail: "unterminated object".into()
            }
        );
        let msg = no_usable_account_message(&l.problems);
        assert!(msg.contains("GOOGLE_CREDENTIALS_JSON #1"), "{msg}");
        assert!(
            msg.contains("没有可用") && msg.contains("no usable"),
            "{msg}"
        );
    }

    #[test]
    fn a_pkcs1_key_and_a_non_rsa_key() {
        let mut a = sa(A, "p");
        a["private_key"] = json!(testkey::pkcs1_pem(0));
        assert_eq!(emails(&parse_credentials_json(&a.to_string())), [A]);
        // An EC key in PKCS#8 is not an RSA key.
        let ec = testkey::ec_pem();
        a["private_key"] = json!(ec);
        assert!(ec.starts_with("-----BEGIN PRIVATE KEY-----\nMI"));
        let l = parse_credentials_json(&a.to_string());
        assert_eq!(l.problems[0].kind, ProblemKind::BadKey);
    }

    #[test]
    fn duplicates_keep_the_first() {
        let text = format!("{},{}", sa(A, "p1"), sa(A, "p2"));
        let l = parse_credentials_json(&text);
        assert_eq!(l.accounts.len(), 1);
        assert_eq!(l.accounts[0].project_id(), "p1");
        assert_eq!(
            l.problems[0].kind,
            ProblemKind::Duplicate {
                first: Origin::Env { position: 1 }
            }
        );
        // Two accounts of one project both load (HAJIMI skipped the second).
        let text = format!("{},{}", sa(A, "p"), sa(B, "p"));
        assert_eq!(parse_credentials_json(&text).accounts.len(), 2);
    }

    #[test]
    fn loopback_http_token_uri_is_accepted_for_tests() {
        for (uri, ok) in [
            ("http://127.0.0.1:9999/token", true),
            ("http://localhost/token", true),
            ("http://[::1]:1/token", true),
            ("https://oauth2.example/token", true),
            ("http://10.0.0.1/token", false),
            ("ftp://127.0.0.1/token", false),
            ("https://user:pw@oauth2.example/token", false),
            ("not a url", false),
        ] {
            let mut a = sa(A, "p");
            a["token_uri"] = json!(uri);
            let l = parse_credentials_json(&a.to_string());
            assert_eq!(l.accounts.len() == 1, ok, "{uri}");
        }
    }

    #[test]
    fn debug_and_display_never_show_the_key() {
        let l = parse_credentials_json(&sa(A, "proj-a").to_string());
        let a = &l.accounts[0];
        let shown = format!("{a:?} {a} {l:?}");
        assert!(shown.contains(A), "{shown}");
        assert!(
            !shown.contains("PRIVATE") && !shown.contains("MII"),
            "{shown}"
        );
        assert_eq!(a.to_string(), format!("{A} (proj-a)"));
    }

    #[test]
    fn same_credentials_tells_a_rotated_key() {
        let a1 = parse_credentials_json(&sa(A, "p").to_string()).accounts;
        let a2 = parse_credentials_json(&sa(A, "p").to_string()).accounts;
        let mut rotated = sa(A, "p");
        rotated["private_key"] = json!(testkey::pem(1));
        let a3 = parse_credentials_json(&rotated.to_string()).accounts;
        assert!(a1[0].same_credentials(&a2[0]));
        assert!(!a1[0].same_credentials(&a3[0]));
        assert_eq!(a1[0].id(), a3[0].id(), "the id follows the email");
    }

    #[test]
    fn files_in_the_credentials_directory() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("b.json"), sa(B, "proj-b").to_string())?;
        std::fs::write(dir.path().join("a.JSON"), sa(A, "proj-a").to_string())?;
        std::fs::write(dir.path().join("notes.txt"), "ignored")?;
        std::fs::write(dir.path().join("broken.json"), "{")?;
        std::fs::write(
            dir.path().join("huge.json"),
            " ".repeat(MAX_FILE_BYTES as usize + 1),
        )?;
        let l = load_dir(dir.path());
        assert_eq!(emails(&l), [A, B]);
        assert_eq!(
            l.accounts[0].origin(),
            &Origin::File {
                name: "a.JSON".into(),
                position: 1
            }
        );
        let problems: Vec<String> = l.problems.iter().map(Problem::message).collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(
            problems[0].starts_with("credentials/broken.json："),
            "{problems:?}"
        );
        assert!(
            problems[1].starts_with("credentials/huge.json："),
            "{problems:?}"
        );
        // The variable's account wins over a file's copy.
        let env = parse_credentials_json(&sa(B, "proj-env").to_string());
        let all = env.merge(l);
        assert_eq!(emails(&all), [B, A]);
        assert_eq!(all.accounts[0].project_id(), "proj-env");
        assert!(
            all.problems
                .iter()
                .any(|p| matches!(p.kind, ProblemKind::Duplicate { .. }))
        );
        // A missing directory is no problem.
        let none = load_dir(&dir.path().join("absent"));
        assert!(none.accounts.is_empty() && none.problems.is_empty());
        Ok(())
    }

    #[test]
    fn express_keys() {
        let keys = parse_express_keys(" AQ.key-one,AQ.key-two\nAQ.key-one, \"AQ.key-three\" ,,");
        let shown: Vec<String> = keys
            .iter()
            .map(|k| k.secret().expose().to_owned())
            .collect();
        assert_eq!(shown, ["AQ.key-one", "AQ.key-two", "AQ.key-three"]);
        assert_eq!(keys[0].id(), KeyId::of("AQ.key-one"));
        assert!(!format!("{:?} {}", keys[0], keys[0]).contains("key-one"));
        assert!(parse_express_keys(" , ").is_empty());
    }
}
