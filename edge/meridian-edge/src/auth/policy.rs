//! Who may call what, judged at the edge from the method and path alone (the cores judge again,
//! with ownership, which the edge cannot see).
//!
//! The table follows the public contract: guests browse, search, keep a cart and sign in;
//! signed-in users manage themselves, their orders, payments and reviews; sellers manage
//! products and stock; admins run the shop. A path the table does not name is a guest's (the
//! core answers 404 or its own 401).

use super::token::Role;

/// The least a caller must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    Guest,
    SignedIn,
    Seller,
    Admin,
}

impl Access {
    /// Whether a caller with `role` (`None`: a guest) passes.
    pub fn admits(self, role: Option<Role>) -> bool {
        match (self, role) {
            (Access::Guest, _) => true,
            (_, None) => false,
            (Access::SignedIn, Some(_)) => true,
            (Access::Seller, Some(role)) => role >= Role::Seller,
            (Access::Admin, Some(role)) => role == Role::Admin,
        }
    }
}

/// What `method path` requires. `path` is the request path without its query.
pub fn required(method: &str, path: &str) -> Access {
    let segments: Vec<&str> = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .collect();
    match (method, segments.as_slice()) {
        // Users.
        (_, ["users", "register" | "login" | "logout"]) | (_, ["users", "token", "refresh"]) => {
            Access::Guest
        }
        ("PUT", ["users", _, "role"]) | (_, ["users", "signing-keys", ..]) => Access::Admin,
        (_, ["users", ..]) => Access::SignedIn,
        // Catalog.
        ("GET" | "HEAD", ["products" | "categories", ..]) => Access::Guest,
        ("POST", ["products", _, "reviews"]) => Access::SignedIn,
        (_, ["products", ..]) => Access::Seller,
        (_, ["categories", ..]) => Access::Admin,
        // Reviews: the author or an admin, checked by the core.
        (_, ["reviews", ..]) => Access::SignedIn,
        // Orders: shipping is the seller's (or an admin's), the rest the buyer's.
        ("POST", ["orders", _, "ship"]) => Access::Seller,
        (_, ["orders", ..]) => Access::SignedIn,
        // Inventory: anyone may look; holds and releases are internal (admins); stock is the
        // seller's.
        ("GET" | "HEAD", ["inventory", ..]) => Access::Guest,
        ("POST", ["inventory", "reserve" | "release"]) => Access::Admin,
        (_, ["inventory", ..]) => Access::Seller,
        // Payments: refunds are an admin's.
        ("POST", ["payments", _, "refund"]) => Access::Admin,
        (_, ["payments", ..]) => Access::SignedIn,
        (_, ["notifications", ..]) => Access::Admin,
        // Search: anyone reads; rebuilding the index is an admin's.
        ("POST", ["search", "reindex"]) => Access::Admin,
        (_, ["recommendations", "user", ..]) => Access::SignedIn,
        _ => Access::Guest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contract_routes_need_what_the_contract_says() {
        let table = [
            ("GET", "/products", Access::Guest),
            ("GET", "/products/0190/reviews", Access::Guest),
            ("GET", "/categories", Access::Guest),
            ("GET", "/search?q=shoe", Access::Guest),
            ("POST", "/search/reindex", Access::Admin),
            ("POST", "/cart/items", Access::Guest),
            ("POST", "/users/register", Access::Guest),
            ("POST", "/users/login", Access::Guest),
            ("POST", "/users/token/refresh", Access::Guest),
            ("GET", "/.well-known/jwks.json", Access::Guest),
            ("GET", "/inventory/0190", Access::Guest),
            ("GET", "/users/0190", Access::SignedIn),
            ("POST", "/users/0190/addresses", Access::SignedIn),
            ("POST", "/orders", Access::SignedIn),
            ("PUT", "/orders/0190/cancel", Access::SignedIn),
            ("POST", "/products/0190/reviews", Access::SignedIn),
            ("DELETE", "/reviews/0190", Access::SignedIn),
            ("POST", "/payments", Access::SignedIn),
            ("GET", "/recommendations/user/0190", Access::SignedIn),
            ("GET", "/recommendations/product/0190", Access::Guest),
            ("POST", "/products", Access::Seller),
            ("PUT", "/products/0190", Access::Seller),
            ("DELETE", "/products/0190", Access::Seller),
            ("PUT", "/inventory/0190", Access::Seller),
            ("POST", "/orders/0190/ship", Access::Seller),
            ("PUT", "/users/0190/role", Access::Admin),
            ("POST", "/users/signing-keys/rotate", Access::Admin),
            ("POST", "/categories", Access::Admin),
            ("POST", "/inventory/reserve", Access::Admin),
            ("POST", "/payments/0190/refund", Access::Admin),
            ("POST", "/notifications/send", Access::Admin),
        ];
        for (method, target, access) in table {
            let path = target.split('?').next().unwrap_or_default();
            assert_eq!(required(method, path), access, "{method} {target}");
        }
    }

    #[test]
    fn roles_rank_buyer_seller_admin() {
        assert!(Access::Guest.admits(None));
        assert!(!Access::SignedIn.admits(None));
        assert!(Access::SignedIn.admits(Some(Role::Buyer)));
        assert!(!Access::Seller.admits(Some(Role::Buyer)));
        assert!(Access::Seller.admits(Some(Role::Seller)));
        assert!(Access::Seller.admits(Some(Role::Admin)));
        assert!(!Access::Admin.admits(Some(Role::Seller)));
        assert!(Access::Admin.admits(Some(Role::Admin)));
    }
}
