//! The server side of a topic: a [`Handler`] receives every method called or
//! cast on it; [`MethodRouter`] dispatches by method name to async functions.

use crate::{CallContext, RemoteError};
use async_trait::async_trait;
use futures::future::BoxFuture;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

/// Handles the messages of one RPC server (one topic, one server name).
///
/// The same handler is invoked concurrently for different messages (up to
/// [`crate::ServerOptions::max_concurrency`]); invocations *start* in the order
/// the messages were delivered on each queue. For a `cast` the returned value
/// is discarded (errors are logged); for a `call` it is sent back to the caller.
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Handles `method` with `args`. Return [`RemoteError::no_such_method`]
    /// for methods you do not know.
    async fn handle(&self, ctx: CallContext, method: &str, args: Value) -> Result<Value, RemoteError>;
}

#[async_trait]
impl<H: Handler + ?Sized> Handler for Arc<H> {
    async fn handle(&self, ctx: CallContext, method: &str, args: Value) -> Result<Value, RemoteError> {
        (**self).handle(ctx, method, args).await
    }
}

type Method = Arc<dyn Fn(CallContext, Value) -> BoxFuture<'static, Result<Value, RemoteError>> + Send + Sync>;

/// A [`Handler`] that dispatches on the method name, like an oslo endpoint
/// object whose public methods are the RPC API.
///
/// ```
/// use neutrino_rpc::{MethodRouter, RemoteError};
/// use serde_json::json;
///
/// let router = MethodRouter::new()
///     .method("ping", |_ctx, _args| async { Ok(json!("pong")) })
///     .typed("add", |_ctx, (a, b): (i64, i64)| async move { Ok::<_, RemoteError>(a + b) });
/// assert!(router.has_method("add"));
/// ```
#[derive(Clone, Default)]
pub struct MethodRouter {
    methods: HashMap<String, Method>,
}

impl MethodRouter {
    /// An empty router (every method answers `NoSuchMethod`).
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `name` with a function of the raw JSON arguments.
    pub fn method<F, Fut>(mut self, name: &str, f: F) -> Self
    where
        F: Fn(CallContext, Value) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, RemoteError>> + Send + 'static,
    {
        self.methods.insert(name.to_string(), Arc::new(move |c, a| Box::pin(f(c, a))));
        self
    }

    /// Registers `name` with a function of typed arguments: the JSON
    /// arguments are decoded into `A` (a bad shape answers `InvalidArguments`)
    /// and the result is encoded from `R`.
    pub fn typed<A, R, F, Fut>(self, name: &str, f: F) -> Self
    where
        A: DeserializeOwned + Send + 'static,
        R: Serialize + Send + 'static,
        F: Fn(CallContext, A) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<R, RemoteError>> + Send + 'static,
    {
        let f = Arc::new(f);
        let method = name.to_string();
        self.method(name, move |ctx, args| {
            let f = f.clone();
            let method = method.clone();
            async move {
                let a: A = serde_json::from_value(args).map_err(|e| RemoteError::invalid_args(&method, e))?;
                let r = f(ctx, a).await?;
                serde_json::to_value(r).map_err(|e| RemoteError::new("EncodeError", e.to_string()))
            }
        })
    }

    /// Is `name` registered?
    pub fn has_method(&self, name: &str) -> bool {
        self.methods.contains_key(name)
    }
}

#[async_trait]
impl Handler for MethodRouter {
    async fn handle(&self, ctx: CallContext, method: &str, args: Value) -> Result<Value, RemoteError> {
        match self.methods.get(method) {
            Some(m) => m(ctx, args).await,
            None => Err(RemoteError::no_such_method(method)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn routes_by_name() {
        let r = MethodRouter::new()
            .method("echo", |_c, a| async move { Ok(a) })
            .typed("add", |_c, (a, b): (i64, i64)| async move { Ok::<_, RemoteError>(a + b) });
        let c = CallContext::new();
        assert_eq!(r.handle(c.clone(), "echo", json!([1])).await, Ok(json!([1])));
        assert_eq!(r.handle(c.clone(), "add", json!([2, 3])).await, Ok(json!(5)));
        let e = r.handle(c.clone(), "add", json!("x")).await.unwrap_err();
        assert_eq!(e.kind, "InvalidArguments");
        let e = r.handle(c, "nope", json!({})).await.unwrap_err();
        assert_eq!(e.kind, "NoSuchMethod");
    }
}
