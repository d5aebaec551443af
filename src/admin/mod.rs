//! The dashboard's services, below the routes (who may use it is `crate::access`): the
//! settings write path (`settings`: validate → commit → publish), key management (`keys`),
//! the key test (`key_test`) and what the dashboard reads (`views`). The JSON API
//! (`routes::admin`) and the web pages call these; neither implements them again.

pub mod key_test;
pub mod keys;
pub mod settings;
pub mod views;
