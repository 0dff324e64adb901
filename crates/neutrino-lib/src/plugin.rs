//! The interface between the API edge and the plugins.
//!
//! The edge parses, validates and converts requests against a
//! [`ResourceDef`](crate::resource::ResourceDef), enforces policy, and renders
//! responses; a plugin implements the semantics and owns persistence.

use async_trait::async_trait;
use serde_json::Value;

use crate::listing::ListSpec;
use crate::{resource::ResourceDef, Context, Fault, Map};

/// What a plugin answers to a list request.
pub enum Listing {
    /// Every resource the caller may see, unfiltered: the edge filters,
    /// sorts and pages it in memory (for small collections that are not
    /// tables: quotas, availability zones, service providers).
    Unfiltered(Vec<Map>),
    /// The page asked for: filters, order and page already applied.
    Page(Vec<Map>),
    /// Every matching resource in order (no limit was asked), as it is read.
    Stream(futures::stream::BoxStream<'static, Result<Map, Fault>>),
}

impl ListHint {
    /// The equality filters of a list request, as a hint.
    pub fn of(spec: &ListSpec) -> ListHint {
        ListHint { projects: None, eq: spec.filters.iter().map(|f| (f.attr.clone(), f.values.clone())).collect() }
    }
}

/// What the edge already knows about a list request, so a plugin can narrow
/// its query. The edge applies every filter again on what comes back, so a
/// plugin may ignore any part of it.
#[derive(Debug, Default, Clone)]
pub struct ListHint {
    /// Only resources of these projects are of interest (`None`: any).
    pub projects: Option<Vec<String>>,
    /// Equality filters: attribute name and accepted values (converted).
    pub eq: Vec<(String, Vec<Value>)>,
}

impl ListHint {
    /// The accepted values of an equality filter on `attr`, if any.
    pub fn values(&self, attr: &str) -> Option<&[Value]> {
        self.eq.iter().find(|(a, _)| a == attr).map(|(_, v)| v.as_slice())
    }
}

/// The outcome of a sub-resource request: status and optional body.
pub type SubResponse = (u16, Option<Value>);

/// A plugin serving one resource collection.
#[async_trait]
pub trait ResourcePlugin: Send + Sync {
    /// The resource served.
    fn def(&self) -> &'static ResourceDef;

    /// Creates resources, all or nothing; the items are validated request bodies.
    async fn create(&self, ctx: &Context, items: Vec<Map>) -> Result<Vec<Map>, Fault>;

    /// Reads one resource (any project: the edge applies policy).
    async fn get(&self, ctx: &Context, id: &str) -> Result<Map, Fault>;

    /// Lists resources; see [`ListHint`].
    async fn list(&self, ctx: &Context, hint: &ListHint) -> Result<Vec<Map>, Fault>;

    /// Answers a list request where the data is (filters, order, page in
    /// the database). The default hands every visible resource to the edge.
    async fn list_page(&self, ctx: &Context, spec: &ListSpec) -> Result<Listing, Fault> {
        Ok(Listing::Unfiltered(self.list(ctx, &ListHint::of(spec)).await?))
    }

    /// Updates one resource with validated changes, checking `If-Match` when given.
    async fn update(&self, ctx: &Context, id: &str, changes: Map, if_match: Option<i64>) -> Result<Map, Fault>;

    /// Deletes one resource, checking `If-Match` when given.
    async fn delete(&self, ctx: &Context, id: &str, if_match: Option<i64>) -> Result<(), Fault>;

    /// Replaces the tags of a resource; returns the new tag list.
    async fn set_tags(&self, _ctx: &Context, _id: &str, _tags: Vec<String>) -> Result<Vec<String>, Fault> {
        Err(Fault::no_such_path())
    }

    /// A member action, `PUT /v2.0/<collection>/<id>/<action>` (e.g. `add_router_interface`).
    async fn member_action(&self, _ctx: &Context, _id: &str, _action: &str, _body: Value) -> Result<Value, Fault> {
        Err(Fault::no_such_path())
    }

    /// Is `action` a member action of this resource?
    fn has_member_action(&self, _action: &str) -> bool {
        false
    }

    /// A request below a member that is neither tags nor an action
    /// (e.g. `/v2.0/ports/<id>/bindings/<host>`).
    async fn sub_request(
        &self,
        _ctx: &Context,
        _method: &str,
        _id: &str,
        _rest: &[&str],
        _body: Option<Value>,
    ) -> Result<SubResponse, Fault> {
        Err(Fault::no_such_path())
    }

    /// Extension aliases this plugin implements.
    fn extensions(&self) -> &'static [&'static str] {
        &[]
    }
}
