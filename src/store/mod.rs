//! The `sayiir-persistence` store traits, one module per trait. Each method
//! checks its input, takes a connection, calls the table functions of
//! [`crate::models`] (in a transaction where it needs more than one
//! statement) and maps the error to `BackendError`. The finder's
//! maintenance lives in [`crate::dispatch`].
//!
//! Lock order, for every operation that locks more than one row:
//! **workflow row → claim row → signal rows → event rows → output, history
//! and queue rows**. Single-statement writes follow it too (the workflow row
//! is the first row they touch).

mod claim;
mod retry;
mod signal;
mod snapshot;
mod task_result;
