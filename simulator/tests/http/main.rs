//! HTTP-level tests of the Daraja simulator: every request goes over loopback, and callbacks
//! are caught by a real receiver.

mod account;
mod b2c;
mod c2b;
mod cli;
mod common;
mod control;
mod determinism;
mod faults;
mod oauth;
mod robustness;
mod scenarios;
mod stk;
mod stk_query;
