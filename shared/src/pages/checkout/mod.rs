//! The hosted payment page: what a customer sees at `/pay/{session_id}`, in English or
//! Kiswahili, from typing the phone number to the receipt.
//!
//! Everything here is pure: the caller loads the session, fills a [`PageModel`] and serves
//! [`render_page`]'s HTML with [`crate::pages::security_headers`]. What the caller's routes must
//! do for the page to work:
//!
//! - `POST /pay/{id}` (form field `phone`, plus `lang`) and `POST /pay/{id}/cancel` (field
//!   `lang`) answer with `303 See Other` to `GET /pay/{id}?lang=..`, never straight to the shop:
//!   the policy's `form-action 'self'` makes browsers block a redirect off our origin that
//!   answers a form post, and a GET page can be refreshed without re-posting.
//! - `GET /pay/{id}/status?lang=..` answers [`StatusAnswer`] as JSON (`cache-control: no-store`);
//!   the page polls it every second while waiting and does not send cookies.
//! - `GET` of each [`asset`]'s path serves its body with its content type, `nosniff` and a long
//!   immutable cache: the path changes whenever the content does.

pub mod assets;
pub mod i18n;
pub mod model;
pub mod money;
pub mod phone;
pub mod render;
pub mod status;

pub use assets::{asset, assets, Asset};
pub use i18n::{status_message, Lang};
pub use model::{ClosedReason, Outcome, PageModel, PageState};
pub use money::format_kes;
pub use phone::{display_masked, phone_problem, PhoneProblem};
pub use render::{render_page, safe_href};
pub use status::StatusAnswer;
