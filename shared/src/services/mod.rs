//! Use cases: the application logic between the HTTP/queue edges and the domain. Each service
//! holds exactly the ports it needs.

pub mod callback_intake;
pub mod callback_processor;
pub mod limits;
pub mod payments;
pub mod reconciliation;
pub mod settlement;
pub mod stk_callbacks;
