//! Routing of `/v2.0/...` requests to plugins, with authentication, body
//! limits, policy and rendering.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Request};
use axum::response::Response;
use neutrino_lib::plugin::{Listing, ResourcePlugin};
use neutrino_lib::resource::ResourceDef;
use neutrino_lib::{Context, Fault, Map};
use serde_json::{json, Value};

use crate::policy::{self, Op, Related};
use crate::{discovery, listing, request, respond, Api};

/// Entry point for every request not matched by a fixed route.
pub async fn dispatch(State(api): State<Arc<Api>>, req: Request<Body>) -> Response {
    let started = Instant::now();
    let request_id = format!("req-{}", uuid::Uuid::new_v4());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let headers = req.headers().clone();
    let span = tracing::info_span!("request", %request_id, %method, %path);
    let _enter = span.enter();
    drop(_enter);
    let mut resp = match handle(&api, &method, &path, &query, &headers, req.into_body(), &request_id).await {
        Ok(r) => r,
        Err(Outcome::Fault(f)) => {
            if f.status >= 500 {
                tracing::error!(parent: &span, status = f.status, kind = %f.kind, "request failed");
            }
            respond::fault(&f)
        }
        Err(Outcome::Unauthorized(a)) if a.status == 503 => respond::json(
            503,
            &serde_json::json!({"error": {"code": 503, "title": "Service Unavailable", "message": a.message}}),
        ),
        Err(Outcome::Unauthorized(a)) => respond::unauthorized(&a.message, a.www_authenticate.as_deref()),
    };
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        resp.headers_mut().insert("x-openstack-request-id", v);
    }
    tracing::info!(
        parent: &span,
        status = resp.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "handled"
    );
    resp
}

enum Outcome {
    Fault(Fault),
    Unauthorized(crate::AuthFailure),
}

impl From<Fault> for Outcome {
    fn from(f: Fault) -> Self {
        Outcome::Fault(f)
    }
}

fn if_match(headers: &HeaderMap) -> Result<Option<i64>, Fault> {
    let Some(v) = headers.get("if-match").and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let v = v.trim();
    if v == "*" {
        return Ok(None);
    }
    match v.strip_prefix("revision_number=").and_then(|n| n.trim().parse::<i64>().ok()) {
        Some(n) => Ok(Some(n)),
        None => Err(Fault::bad_request(format!("If-Match header must be of the form revision_number=N, not '{v}'"))),
    }
}

/// Reads a JSON body of at most `api.max_body` bytes. A larger body is
/// drained (up to a bound) before the 413, so the connection stays usable.
async fn body_json(api: &Api, body: Body) -> Result<Value, Fault> {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut buf: Vec<u8> = vec![];
    let mut seen: usize = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| Fault::bad_request("Malformed request body"))?;
        if let Ok(data) = frame.into_data() {
            seen += data.len();
            if seen <= api.max_body {
                buf.extend_from_slice(&data);
            } else if seen > api.max_body.saturating_mul(64) {
                break;
            }
        }
    }
    if seen > api.max_body {
        return Err(Fault::new(
            413,
            "RequestEntityTooLarge",
            format!("Request is too large (limit {} bytes).", api.max_body),
        ));
    }
    request::parse_json(&buf)
}

async fn handle(
    api: &Api,
    method: &Method,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    body: Body,
    request_id: &str,
) -> Result<Response, Outcome> {
    let trimmed = path.trim_end_matches('/');
    let Some(rest) = trimmed.strip_prefix("/v2.0") else {
        return Err(Fault::no_such_path().into());
    };
    let rest = rest.trim_start_matches('/');
    let rest = rest.strip_suffix(".json").unwrap_or(rest);
    let mut ctx = api.auth.authenticate(headers).await.map_err(Outcome::Unauthorized)?;
    ctx.request_id = request_id.to_string();
    let segs: Vec<&str> = if rest.is_empty() { vec![] } else { rest.split('/').collect() };
    match (method, segs.as_slice()) {
        (&Method::GET, []) => return Ok(discovery::resources(api, headers)),
        (&Method::GET, ["extensions"]) => return Ok(discovery::extensions(api, None)),
        (&Method::GET, ["extensions", alias]) => {
            let a = percent_decode(alias);
            return Ok(discovery::extensions(api, Some(&a)));
        }
        _ => {}
    }
    // Longest collection path first (e.g. "metering/metering-labels").
    let (plugin, used) = find_plugin(api, &segs).ok_or_else(Fault::no_such_path)?;
    let def = plugin.def();
    let tail: Vec<String> = segs[used..].iter().map(|s| percent_decode(s)).collect();
    let tail: Vec<&str> = tail.iter().map(String::as_str).collect();
    let base = format!("{}{}", discovery::base_url(headers), trimmed);
    match (method.clone(), tail.as_slice()) {
        (Method::GET, []) => list(api, plugin.as_ref(), &ctx, query, &base).await,
        (Method::POST, []) => create(api, plugin.as_ref(), &ctx, body).await,
        (Method::GET, [id]) => show(plugin.as_ref(), &ctx, id, query).await,
        (Method::PUT, [id]) => update(api, plugin.as_ref(), &ctx, id, headers, body).await,
        (Method::DELETE, [id]) => delete(api, plugin.as_ref(), &ctx, id, headers).await,
        (m, [id, "tags", rest @ ..]) if def.tags => tags(api, plugin.as_ref(), &ctx, &m, id, rest, body).await,
        (Method::PUT, [id, action]) if plugin.has_member_action(action) => {
            let target = plugin.get(&ctx, id).await?;
            check(api, &ctx, def, Op::Update, &target, &Map::new()).await?;
            let b = body_json(api, body).await?;
            let out = plugin.member_action(&ctx, id, action, b).await?;
            Ok(respond::json(200, &out))
        }
        (m, [id, rest @ ..]) if !rest.is_empty() => {
            let b = match m {
                Method::POST | Method::PUT => Some(body_json(api, body).await?),
                _ => None,
            };
            let (status, out) = plugin.sub_request(&ctx, m.as_str(), id, rest, b).await?;
            Ok(match out {
                Some(v) => respond::json(status, &v),
                None => respond::empty(status),
            })
        }
        (m, _) => {
            Err(Fault::new(405, "HTTPMethodNotAllowed", format!("The method {m} is not allowed for this resource."))
                .into())
        }
    }
}

fn percent_decode(s: &str) -> String {
    form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_string())
}

fn find_plugin<'a>(api: &'a Api, segs: &[&str]) -> Option<(&'a Arc<dyn ResourcePlugin>, usize)> {
    for n in (1..=segs.len().min(2)).rev() {
        let key = segs[..n].join("/");
        if let Some(p) = api.plugins.get(key.as_str()) {
            return Some((p, n));
        }
    }
    None
}

/// Facts policy needs: the network of a subnet or port. On create, a
/// network the caller cannot see is "not found", before any policy check.
async fn related(api: &Api, ctx: &Context, def: &ResourceDef, op: Op, target: &Map) -> Result<Option<Map>, Fault> {
    if def.member != "subnet" && def.member != "port" {
        return Ok(None);
    }
    let Some(net_id) = target.get("network_id").and_then(Value::as_str) else {
        return Ok(None);
    };
    let Some(nets) = api.plugins.get("networks") else {
        return Ok(None);
    };
    if op == Op::Create {
        nets.get(ctx, net_id).await?;
    }
    match nets.get(&Context::admin(), net_id).await {
        Ok(n) => Ok(Some(n)),
        Err(f) if f.status == 404 => Ok(None),
        Err(f) => Err(f),
    }
}

async fn check(api: &Api, ctx: &Context, def: &ResourceDef, op: Op, target: &Map, attrs: &Map) -> Result<(), Fault> {
    if !policy::may_write(ctx) {
        return Err(Fault::policy(&format!(
            "rule:{}_{}",
            match op {
                Op::Create => "create",
                Op::Update => "update",
                Op::Delete => "delete",
            },
            def.member
        )));
    }
    if ctx.is_admin() {
        return Ok(());
    }
    let net = related(api, ctx, def, op, target).await?;
    policy::authorize(ctx, def, op, target, attrs, &Related { network: net.as_ref() })
}

fn render(ctx: &Context, def: &ResourceDef, mut doc: Map, fields: Option<&listing::ListQuery>) -> Value {
    policy::redact(ctx, def, &mut doc);
    if let Some(q) = fields {
        q.select(&mut doc);
    }
    Value::Object(doc)
}

async fn list(
    api: &Api,
    plugin: &dyn ResourcePlugin,
    ctx: &Context,
    query: &str,
    base: &str,
) -> Result<Response, Outcome> {
    let _ = api;
    let def = plugin.def();
    let q = listing::parse(def, query)?;
    let page = match plugin.list_page(ctx, &q.spec).await? {
        Listing::Unfiltered(docs) => q.apply(def, docs)?,
        Listing::Page(docs) => docs,
        Listing::Stream(rows) => return Ok(stream_listing(ctx.clone(), def, q, rows)),
    };
    let links = q.links(&page, base);
    let items: Vec<Value> = page.into_iter().map(|d| render(ctx, def, d, Some(&q))).collect();
    let large = items.len() > 1000;
    let mut body = serde_json::Map::new();
    body.insert(def.collection.to_string(), Value::Array(items));
    if let Some(l) = links {
        body.insert(format!("{}_links", def.collection), l);
    }
    let resp = respond::json(200, &Value::Object(body));
    if large {
        release_free_memory();
    }
    Ok(resp)
}

/// A whole collection, written item by item as the store reads it: memory
/// stays bounded by a few rows whatever the size of the table. An error
/// after the first byte ends the body early (the client sees a truncated
/// response, never a complete-looking wrong one).
fn stream_listing(
    ctx: Context,
    def: &'static ResourceDef,
    q: listing::ListQuery,
    rows: futures::stream::BoxStream<'static, Result<Map, Fault>>,
) -> Response {
    use futures::StreamExt;
    let head = futures::stream::once(futures::future::ready(Ok::<_, std::io::Error>(axum::body::Bytes::from(
        format!("{{\"{}\": [", def.collection),
    ))));
    let mut first = true;
    let items = rows.map(move |r| match r {
        Ok(doc) => {
            let mut out = if first { Vec::new() } else { b", ".to_vec() };
            first = false;
            let v = render(&ctx, def, doc, Some(&q));
            serde_json::to_writer(&mut out, &v).map_err(std::io::Error::other)?;
            Ok(axum::body::Bytes::from(out))
        }
        Err(f) => {
            tracing::error!(status = f.status, kind = %f.kind, "listing failed while streaming");
            Err(std::io::Error::other(f.message))
        }
    });
    let tail = futures::stream::once(futures::future::ready(Ok(axum::body::Bytes::from_static(b"]}"))));
    let body = Body::from_stream(head.chain(items).chain(tail).chain(futures::stream::once(async {
        release_free_memory();
        Ok(axum::body::Bytes::new())
    })));
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body)
        .unwrap_or_else(|_| respond::fault(&Fault::internal()))
}

/// Gives the heap's free pages back to the system after a large listing,
/// so a burst does not stay resident (glibc keeps freed memory otherwise).
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory of the allocator; it has
    // no preconditions and touches no live allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

async fn show(plugin: &dyn ResourcePlugin, ctx: &Context, id: &str, query: &str) -> Result<Response, Outcome> {
    let def = plugin.def();
    let doc = plugin.get(ctx, id).await?;
    let fields: Vec<String> = form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "fields")
        .flat_map(|(_, v)| v.split(',').map(String::from).collect::<Vec<_>>())
        .filter(|s| !s.is_empty())
        .collect();
    let q = listing::ListQuery { fields, ..Default::default() };
    Ok(respond::json(200, &json!({ def.member: render(ctx, def, doc, Some(&q)) })))
}

async fn create(api: &Api, plugin: &dyn ResourcePlugin, ctx: &Context, body: Body) -> Result<Response, Outcome> {
    let def = plugin.def();
    let b = body_json(api, body).await?;
    let (raw, bulk) = request::create_items(def, &b)?;
    let mut items = vec![];
    let mut tags = vec![];
    for r in &raw {
        let mut item = request::prepare_create(def, ctx, r)?;
        // Policy looks at what the caller asked for, not at the defaults.
        let given: Map =
            item.iter().filter(|(k, _)| r.get(k.as_str()).is_some()).map(|(k, v)| (k.clone(), v.clone())).collect();
        check(api, ctx, def, Op::Create, &item, &given).await?;
        // Tags in a create body are applied after the create, except where the
        // plugin stores them itself (ports: tag-ports-during-bulk-creation).
        let t = if def.member == "port" { None } else { item.remove("tags") };
        tags.push(t);
        items.push(item);
    }
    let mut created = plugin.create(ctx, items).await?;
    for (doc, t) in created.iter_mut().zip(tags) {
        if let Some(Value::Array(t)) = t {
            let t: Vec<String> = t.iter().filter_map(|x| x.as_str().map(String::from)).collect();
            if !t.is_empty() {
                let id = doc.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                let new = plugin.set_tags(ctx, &id, t).await?;
                doc.insert("tags".into(), json!(new));
                if let Some(r) = doc.get("revision_number").and_then(Value::as_i64) {
                    doc.insert("revision_number".into(), json!(r + 1));
                }
            }
        }
    }
    let out: Vec<Value> = created.into_iter().map(|d| render(ctx, def, d, None)).collect();
    Ok(if bulk {
        respond::json(201, &json!({ def.collection: out }))
    } else {
        respond::json(201, &json!({ def.member: out.into_iter().next().unwrap_or(Value::Null) }))
    })
}

async fn update(
    api: &Api,
    plugin: &dyn ResourcePlugin,
    ctx: &Context,
    id: &str,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, Outcome> {
    let def = plugin.def();
    let b = body_json(api, body).await?;
    let changes = request::prepare_update(def, &b)?;
    let target = plugin.get(ctx, id).await?;
    check(api, ctx, def, Op::Update, &target, &changes).await?;
    let doc = plugin.update(ctx, id, changes, if_match(headers)?).await?;
    Ok(respond::json(200, &json!({ def.member: render(ctx, def, doc, None) })))
}

async fn delete(
    api: &Api,
    plugin: &dyn ResourcePlugin,
    ctx: &Context,
    id: &str,
    headers: &HeaderMap,
) -> Result<Response, Outcome> {
    let def = plugin.def();
    let target = plugin.get(ctx, id).await?;
    check(api, ctx, def, Op::Delete, &target, &Map::new()).await?;
    plugin.delete(ctx, id, if_match(headers)?).await?;
    Ok(respond::empty(204))
}

async fn tags(
    api: &Api,
    plugin: &dyn ResourcePlugin,
    ctx: &Context,
    method: &Method,
    id: &str,
    rest: &[&str],
    body: Body,
) -> Result<Response, Outcome> {
    let def = plugin.def();
    let target = plugin.get(ctx, id).await?;
    let current: Vec<String> = target
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str().map(String::from))
        .collect();
    let tag_missing =
        |t: &str| Fault::not_found("TagNotFound", format!("Tag {t} could not be found for {} {id}.", def.member));
    match (method.clone(), rest) {
        (Method::GET, []) => Ok(respond::json(200, &json!({"tags": current}))),
        (Method::GET, [t]) => {
            if current.iter().any(|c| c == t) {
                Ok(respond::empty(204))
            } else {
                Err(tag_missing(t).into())
            }
        }
        (Method::PUT, []) => {
            check(api, ctx, def, Op::Update, &target, &Map::new()).await?;
            let b = body_json(api, body).await?;
            let t = request::tags_of(
                b.get("tags")
                    .ok_or_else(|| Fault::bad_request("Invalid input for tags. Reason: 'tags' is required."))?,
            )?;
            let new = plugin.set_tags(ctx, id, t).await?;
            Ok(respond::json(200, &json!({"tags": new})))
        }
        (Method::PUT, [t]) => {
            check(api, ctx, def, Op::Update, &target, &Map::new()).await?;
            neutrino_lib::checks::tag(t)
                .map_err(|r| Fault::bad_request(format!("Invalid input for tags. Reason: {r}.")))?;
            let mut new = current.clone();
            if !new.iter().any(|c| c == t) {
                new.push(t.to_string());
                plugin.set_tags(ctx, id, new).await?;
            }
            Ok(respond::empty(201))
        }
        (Method::DELETE, []) => {
            check(api, ctx, def, Op::Update, &target, &Map::new()).await?;
            plugin.set_tags(ctx, id, vec![]).await?;
            Ok(respond::empty(204))
        }
        (Method::DELETE, [t]) => {
            check(api, ctx, def, Op::Update, &target, &Map::new()).await?;
            if !current.iter().any(|c| c == t) {
                return Err(tag_missing(t).into());
            }
            let new: Vec<String> = current.into_iter().filter(|c| c != t).collect();
            plugin.set_tags(ctx, id, new).await?;
            Ok(respond::empty(204))
        }
        _ => Err(Fault::no_such_path().into()),
    }
}
