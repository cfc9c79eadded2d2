//! Path router compiled once per config: a byte trie, so matching costs the path's length,
//! not the number of routes. The first route in file order that matches wins; a route's
//! methods and host, when given, are checked as each candidate is considered.

use http::Method;

use crate::config::{PathMatch, Route};

#[derive(Debug, Default)]
struct Node {
    /// Sorted by byte; paths are short and fan-out is small, so a sorted Vec beats a map.
    children: Vec<(u8, u32)>,
    /// Routes whose `path_prefix` ends here.
    prefix: Vec<u32>,
    /// Routes with an exact `path` ending here.
    exact: Vec<u32>,
}

/// Finds the route for a request.
#[derive(Debug)]
pub struct Router {
    nodes: Vec<Node>,
    /// Per route, its allowed methods (`None` = any).
    methods: Vec<Option<Vec<Method>>>,
    /// Per route, the host it is restricted to (lowercase; `None` = any).
    hosts: Vec<Option<Box<str>>>,
    /// Whether any route has a host (see [`Router::by_host`]), found once here rather than
    /// for every request.
    by_host: bool,
}

impl Router {
    /// Compiles `routes`.
    #[must_use]
    pub(crate) fn new(routes: &[Route]) -> Self {
        let mut router = Self {
            nodes: vec![Node::default()],
            methods: routes.iter().map(|r| r.methods.clone()).collect(),
            hosts: routes
                .iter()
                .map(|r| r.host.as_deref().map(Box::from))
                .collect(),
            by_host: routes.iter().any(|r| r.host.is_some()),
        };
        for (index, route) in routes.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            match &route.path {
                PathMatch::Exact(paths) => {
                    for p in paths {
                        let node = router.insert(p.as_bytes());
                        router.nodes[node].exact.push(index);
                    }
                }
                PathMatch::Prefix(p) => {
                    let node = router.insert(p.as_bytes());
                    router.nodes[node].prefix.push(index);
                }
            }
        }
        router
    }

    fn insert(&mut self, path: &[u8]) -> usize {
        let mut node = 0;
        for &b in path {
            node = match self.nodes[node]
                .children
                .binary_search_by_key(&b, |&(c, _)| c)
            {
                Ok(i) => self.nodes[node].children[i].1 as usize,
                Err(i) => {
                    let child = self.nodes.len();
                    self.nodes.push(Node::default());
                    let child_id = u32::try_from(child).unwrap_or(u32::MAX);
                    self.nodes[node].children.insert(i, (b, child_id));
                    child
                }
            };
        }
        node
    }

    /// Whether any route is restricted to a host. When none is, the request's host cannot
    /// change the match, and the caller need not look for it.
    #[must_use]
    pub(crate) fn by_host(&self) -> bool {
        self.by_host
    }

    /// Index of the first route (in file order) matching `method`, `host` (any case; a
    /// route with a `host` never matches a request whose host is unknown) and `path`.
    #[must_use]
    pub fn find(&self, method: &Method, host: Option<&str>, path: &str) -> Option<usize> {
        let allows = |r: u32| {
            self.methods[r as usize]
                .as_ref()
                .is_none_or(|ms| ms.contains(method))
                && self.hosts[r as usize]
                    .as_deref()
                    .is_none_or(|want| host.is_some_and(|h| h.eq_ignore_ascii_case(want)))
        };
        let mut best: Option<u32> = None;
        let mut consider = |candidates: &[u32]| {
            // Candidates are in ascending route order, so the first allowed one is the best here.
            if let Some(&r) = candidates.iter().find(|&&r| allows(r))
                && best.is_none_or(|b| r < b)
            {
                best = Some(r);
            }
        };
        let mut node = &self.nodes[0];
        consider(&node.prefix);
        for &b in path.as_bytes() {
            match node.children.binary_search_by_key(&b, |&(c, _)| c) {
                Ok(i) => node = &self.nodes[node.children[i].1 as usize],
                Err(_) => return best.map(|r| r as usize),
            }
            consider(&node.prefix);
        }
        consider(&node.exact);
        best.map(|r| r as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Kind;

    fn route(id: &str, path: PathMatch, methods: Option<Vec<Method>>) -> Route {
        Route {
            id: id.into(),
            path,
            methods,
            host: None,
            kind: Kind::Api,
            service: "s".into(),
            upstream: 0,
        }
    }

    #[test]
    fn first_match_in_file_order_wins() {
        let routes = vec![
            route("token", PathMatch::Prefix("/api/token/js/".into()), None),
            route("xp", PathMatch::Prefix("/api/xp/".into()), None),
            route("api", PathMatch::Prefix("/api/".into()), None),
            route(
                "shadowed",
                PathMatch::Exact(vec!["/api/credit".into()]),
                None,
            ),
            route(
                "exact",
                PathMatch::Exact(vec!["/webcollect/a.gw".into(), "/b".into()]),
                None,
            ),
        ];
        let r = Router::new(&routes);
        let get = Method::GET;
        assert_eq!(r.find(&get, None, "/api/token/js/tokenlib.js"), Some(0));
        assert_eq!(r.find(&get, None, "/api/xp/tradeInfoXp"), Some(1));
        assert_eq!(r.find(&get, None, "/api/credit"), Some(2));
        assert_eq!(r.find(&get, None, "/api"), None);
        assert_eq!(r.find(&get, None, "/webcollect/a.gw"), Some(4));
        assert_eq!(r.find(&get, None, "/webcollect/a.gwx"), None);
        assert_eq!(r.find(&get, None, "/b"), Some(4));
        assert_eq!(r.find(&get, None, "/"), None);
    }

    #[test]
    fn methods_filter_and_fall_through() {
        let routes = vec![
            route(
                "post-only",
                PathMatch::Prefix("/api/".into()),
                Some(vec![Method::POST]),
            ),
            route("any", PathMatch::Prefix("/".into()), None),
        ];
        let r = Router::new(&routes);
        assert_eq!(r.find(&Method::POST, None, "/api/credit"), Some(0));
        assert_eq!(r.find(&Method::GET, None, "/api/credit"), Some(1));
    }

    #[test]
    fn hosts_filter_and_fall_through() {
        let mut admin = route("admin", PathMatch::Prefix("/webcollect/".into()), None);
        admin.host = Some("admin.example.jp".into());
        let routes = vec![
            admin,
            route("link", PathMatch::Prefix("/webcollect/".into()), None),
        ];
        let r = Router::new(&routes);
        let get = Method::GET;
        let path = "/webcollect/login.gw";
        assert_eq!(r.find(&get, Some("admin.example.jp"), path), Some(0));
        assert_eq!(r.find(&get, Some("Admin.Example.JP"), path), Some(0));
        assert_eq!(
            r.find(&get, Some("payment.kuronekoyamato.co.jp"), path),
            Some(1)
        );
        assert_eq!(r.find(&get, None, path), Some(1));
        assert!(r.by_host());
        assert!(!Router::new(&routes[1..]).by_host());
    }

    #[test]
    fn finds_routes_among_500() {
        let mut routes: Vec<Route> = (0..499)
            .map(|i| route(&i.to_string(), PathMatch::Prefix(format!("/r{i}/")), None))
            .collect();
        routes.push(route(
            "last",
            PathMatch::Exact(vec!["/target".into()]),
            None,
        ));
        let r = Router::new(&routes);
        assert_eq!(r.find(&Method::GET, None, "/target"), Some(499));
        assert_eq!(r.find(&Method::GET, None, "/r250/x"), Some(250));
    }
}
