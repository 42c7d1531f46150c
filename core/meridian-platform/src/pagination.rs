//! `?limit=` and opaque `?cursor=` for every list.
//!
//! A cursor is the base64url of a small JSON value naming where the next page starts; clients
//! must treat it as opaque, and a tampered one is a 400, never a 500.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::ApiError;

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
pub struct PageParams {
    /// Items per page: 1 to 100, default 20; larger values are capped at 100.
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(limit) if limit < 1 => Err(ApiError::field("limit", "must be at least 1")),
            Some(limit) => Ok(limit.min(MAX_LIMIT)),
        }
    }

    pub fn cursor<T: DeserializeOwned>(&self) -> Result<Option<T>, ApiError> {
        self.cursor.as_deref().map(decode).transpose()
    }
}

pub fn encode<T: Serialize>(position: &T) -> String {
    // Serializing plain position structs cannot fail.
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

fn decode<T: DeserializeOwned>(cursor: &str) -> Result<T, ApiError> {
    let invalid = || ApiError::BadRequest("the cursor is not valid".into());
    if cursor.len() > 512 {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    serde_json::from_slice(&bytes).map_err(|_| invalid())
}

/// A page of a list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows: the extra row only says another page exists.
    pub fn from_rows<P: Serialize>(
        mut rows: Vec<T>,
        limit: i64,
        position: impl Fn(&T) -> P,
    ) -> Self {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(|last| encode(&position(last)))
        } else {
            None
        };
        Page {
            items: rows,
            next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_cap_and_refuse_nonsense() {
        let params = |limit| PageParams {
            limit,
            cursor: None,
        };
        assert_eq!(params(None).limit().ok(), Some(20));
        assert_eq!(params(Some(5000)).limit().ok(), Some(100));
        assert!(params(Some(0)).limit().is_err());
        assert!(params(Some(-3)).limit().is_err());
    }

    #[test]
    fn cursors_round_trip_and_tampering_is_a_client_error() {
        let cursor = encode(&("abc", 7));
        let params = PageParams {
            limit: None,
            cursor: Some(cursor),
        };
        assert_eq!(
            params.cursor::<(String, i32)>().ok(),
            Some(Some(("abc".into(), 7)))
        );
        let tampered = PageParams {
            limit: None,
            cursor: Some("%%%".into()),
        };
        assert!(matches!(
            tampered.cursor::<(String, i32)>(),
            Err(ApiError::BadRequest(_))
        ));
    }

    #[test]
    fn a_page_reports_a_cursor_only_when_more_rows_exist() {
        let page = Page::from_rows(vec![1, 2, 3], 2, |n| *n);
        assert_eq!(page.items, [1, 2]);
        assert_eq!(page.next_cursor, Some(encode(&2)));
        let last = Page::from_rows(vec![1, 2], 2, |n| *n);
        assert_eq!(last.next_cursor, None);
    }
}
