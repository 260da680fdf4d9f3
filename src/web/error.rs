//! What a request to the page can fail with: each answers for itself with its
//! status and its words (axum's `error-handling` example), so a handler only
//! says what went wrong.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::folotoy::sn::SnError;
use crate::history::HistoryError;

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("this page answers only the names it is known by: an IP address, localhost, or a name in web.hosts")]
    UnknownHost,
    #[error("only the addresses in web.allow_from may open this page (in the add-on, Home Assistant's ingress)")]
    NotAllowedFrom,
    #[error(
        "this page needs its token (web.token): open it once as /?token=<web.token>, or send Authorization: Bearer \
         <web.token>"
    )]
    NoToken,
    #[error("{0}")]
    Toy(#[from] SnError),
    #[error("only the page itself can {0}")]
    NotFromThePage(&'static str),
    #[error("no conversations are kept (history.enabled is false)")]
    NoHistory,
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error("the bridge is stopping")]
    Stopping,
    /// A change the page asked for that cannot be made, and why.
    #[error("{0}")]
    Refused(String),
    /// A change that the bridge's state does not allow now, and why.
    #[error("{0}")]
    Conflict(String),
    #[error("the page's work stopped: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl PageError {
    fn status(&self) -> StatusCode {
        match self {
            PageError::Toy(_) | PageError::Refused(_) | PageError::History(HistoryError::Ambiguous(_)) => {
                StatusCode::BAD_REQUEST
            }
            PageError::UnknownHost | PageError::NotAllowedFrom | PageError::NotFromThePage(_) => StatusCode::FORBIDDEN,
            PageError::NoToken => StatusCode::UNAUTHORIZED,
            PageError::NoHistory => StatusCode::NOT_FOUND,
            PageError::History(HistoryError::Stopped) | PageError::Stopping => StatusCode::SERVICE_UNAVAILABLE,
            PageError::Conflict(_) => StatusCode::CONFLICT,
            PageError::History(_) | PageError::Task(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), self.to_string()).into_response();
        if let PageError::NoToken = self {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
