//! The JSON envelope every message travels in, whatever the transport.
//!
//! Request:
//! ```json
//! {"neutrino.rpc": 1, "method": "update_device_up", "args": {...},
//!  "context": {"request_id": "req-..."}, "version": "1.5",
//!  "msg_id": "5c0f...", "reply_to": "reply_9a1e..."}
//! ```
//! `msg_id` and `reply_to` are present for calls only. Reply:
//! ```json
//! {"neutrino.rpc": 1, "msg_id": "5c0f...", "result": ...}
//! {"neutrino.rpc": 1, "msg_id": "5c0f...", "failure": {"kind": "...", "message": "..."}}
//! ```
//! The format version (`neutrino.rpc`) is checked on receipt; an unknown
//! major version is rejected rather than misread.

use crate::{CallContext, RemoteError, RpcError};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The envelope format version written by this crate.
pub const FORMAT_VERSION: u32 = 1;

/// What a caller sends: method, arguments and context.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The method to invoke on the server.
    pub method: String,
    /// The arguments, normally a JSON object of keyword arguments.
    pub args: Value,
    /// The caller's context.
    pub context: CallContext,
    /// The API version of the target, if declared.
    pub version: Option<String>,
}

impl Request {
    /// A request for `method` with `args` in `context`.
    pub fn new(context: &CallContext, method: &str, args: Value) -> Self {
        Request { method: method.to_string(), args, context: context.clone(), version: None }
    }
}

#[derive(Serialize)]
struct RequestOut<'a> {
    #[serde(rename = "neutrino.rpc")]
    format: u32,
    method: &'a str,
    args: &'a Value,
    context: &'a CallContext,
    #[serde(skip_serializing_if = "Option::is_none")]
    version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    msg_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reply_to: Option<&'a str>,
}

#[derive(Deserialize)]
struct RequestIn {
    #[serde(rename = "neutrino.rpc")]
    format: u32,
    method: String,
    #[serde(default)]
    args: Value,
    #[serde(default)]
    context: CallContext,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    msg_id: Option<String>,
    #[serde(default)]
    reply_to: Option<String>,
}

/// A request as received: the request plus, for calls, where to reply.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// The request; its context carries `msg_id` and `api_version`.
    pub request: Request,
    /// For calls: the reply address (an AMQP queue name).
    pub reply_to: Option<String>,
}

/// Encodes a request; `call` is `Some((msg_id, reply_to))` for calls.
pub fn encode_request(req: &Request, call: Option<(&str, &str)>, limit: usize) -> Result<Vec<u8>, RpcError> {
    let out = RequestOut {
        format: FORMAT_VERSION,
        method: &req.method,
        args: &req.args,
        context: &req.context,
        version: req.version.as_deref(),
        msg_id: call.map(|c| c.0),
        reply_to: call.map(|c| c.1),
    };
    let bytes = serde_json::to_vec(&out).map_err(|e| RpcError::Malformed(e.to_string()))?;
    check_size(bytes.len(), limit)?;
    Ok(bytes)
}

/// Decodes a request envelope.
pub fn decode_request(bytes: &[u8]) -> Result<Incoming, RpcError> {
    let r: RequestIn = serde_json::from_slice(bytes).map_err(|e| RpcError::Malformed(e.to_string()))?;
    check_format(r.format)?;
    let mut context = r.context;
    context.api_version = r.version.clone();
    context.msg_id = r.msg_id;
    Ok(Incoming {
        request: Request { method: r.method, args: r.args, context, version: r.version },
        reply_to: r.reply_to,
    })
}

#[derive(Serialize, Deserialize)]
struct ReplyWire {
    #[serde(rename = "neutrino.rpc")]
    format: u32,
    msg_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    failure: Option<RemoteError>,
}

/// Encodes the reply to call `msg_id`.
pub fn encode_reply(msg_id: &str, outcome: &Result<Value, RemoteError>, limit: usize) -> Result<Vec<u8>, RpcError> {
    let wire = match outcome {
        Ok(v) => {
            ReplyWire { format: FORMAT_VERSION, msg_id: msg_id.to_string(), result: Some(v.clone()), failure: None }
        }
        Err(e) => {
            ReplyWire { format: FORMAT_VERSION, msg_id: msg_id.to_string(), result: None, failure: Some(e.clone()) }
        }
    };
    let bytes = serde_json::to_vec(&wire).map_err(|e| RpcError::Malformed(e.to_string()))?;
    check_size(bytes.len(), limit)?;
    Ok(bytes)
}

/// Decodes a reply: its `msg_id` and the outcome.
pub fn decode_reply(bytes: &[u8]) -> Result<(String, Result<Value, RemoteError>), RpcError> {
    let w: ReplyWire = serde_json::from_slice(bytes).map_err(|e| RpcError::Malformed(e.to_string()))?;
    check_format(w.format)?;
    let outcome = match w.failure {
        Some(f) => Err(f),
        None => Ok(w.result.unwrap_or(Value::Null)),
    };
    Ok((w.msg_id, outcome))
}

fn check_format(v: u32) -> Result<(), RpcError> {
    if v == FORMAT_VERSION {
        Ok(())
    } else {
        Err(RpcError::Malformed(format!("unsupported envelope version {v} (this side speaks {FORMAT_VERSION})")))
    }
}

fn check_size(size: usize, limit: usize) -> Result<(), RpcError> {
    if size > limit {
        Err(RpcError::MessageTooLarge { size, limit })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn request_round_trip() {
        let ctx = CallContext::admin();
        let mut req = Request::new(&ctx, "m", json!({"a": 1, "b": [1, 2]}));
        req.version = Some("1.2".into());
        let bytes = encode_request(&req, Some(("id1", "reply_x")), 1 << 20).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["neutrino.rpc"], 1);
        assert_eq!(v["msg_id"], "id1");
        let inc = decode_request(&bytes).unwrap();
        assert_eq!(inc.reply_to.as_deref(), Some("reply_x"));
        assert_eq!(inc.request.method, "m");
        assert_eq!(inc.request.args, req.args);
        assert_eq!(inc.request.context.msg_id.as_deref(), Some("id1"));
        assert_eq!(inc.request.context.api_version.as_deref(), Some("1.2"));
        assert_eq!(inc.request.context.request_id, ctx.request_id);
    }

    #[test]
    fn cast_has_no_reply_fields() {
        let req = Request::new(&CallContext::new(), "m", json!({}));
        let bytes = encode_request(&req, None, 1024).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert!(v.get("msg_id").is_none() && v.get("reply_to").is_none());
        assert!(!decode_request(&bytes).unwrap().request.context.is_call());
    }

    #[test]
    fn reply_round_trip() {
        let ok = encode_reply("m1", &Ok(json!({"x": true})), 1024).unwrap();
        assert_eq!(decode_reply(&ok).unwrap(), ("m1".into(), Ok(json!({"x": true}))));
        let err = encode_reply("m2", &Err(RemoteError::new("K", "msg")), 1024).unwrap();
        assert_eq!(decode_reply(&err).unwrap(), ("m2".into(), Err(RemoteError::new("K", "msg"))));
        let null = encode_reply("m3", &Ok(Value::Null), 1024).unwrap();
        assert_eq!(decode_reply(&null).unwrap().1, Ok(Value::Null));
    }

    #[test]
    fn size_limit_and_version_are_enforced() {
        let req = Request::new(&CallContext::new(), "m", json!("x".repeat(2000)));
        assert!(matches!(encode_request(&req, None, 1000), Err(RpcError::MessageTooLarge { limit: 1000, .. })));
        let future = br#"{"neutrino.rpc": 2, "method": "m"}"#;
        assert!(matches!(decode_request(future), Err(RpcError::Malformed(_))));
        assert!(decode_request(b"not json").is_err());
    }
}
