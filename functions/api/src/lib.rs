//! The portal API (`/v1`) and the platform API (`/platform/v1`): thin
//! handlers that parse, call one use case, and map the result.

pub mod ctx;
pub mod openapi;
pub mod routes;
pub mod state;
pub mod views;

pub use routes::{router, routes};
pub use state::AppState;
