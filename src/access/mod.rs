//! Who may use the dashboard: browser sessions with their CSRF tokens, the check of the web
//! password (Bearer, session cookie, or HAJIMI's body password), and the failed-login
//! throttle. Kept apart from the dashboard's other services, which work on the whole state.

pub mod session;
pub mod throttle;
