//! Core of the M-Pesa checkout: the domain, the Daraja client, the ports (storage, queue,
//! secrets) with their AWS and in-memory adapters, auth, and the HTTP API that the Lambda
//! functions and the dev stack share.

pub mod api;
pub mod audit;
pub mod auth;
pub mod aws;
pub mod callback_token;
pub mod clock;
pub mod config;
pub mod daraja;
pub mod domain;
pub mod engine;
pub mod events;
pub mod idempotency;
pub mod lambda;
pub mod metrics;
pub mod pages;
pub mod queue;
pub mod repo;
pub mod secrets;
pub mod services;
pub mod store;
pub mod views;
pub mod webhooks;
pub mod wiring;
