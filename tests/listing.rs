//! Listings computed by the database, checked against the same operation
//! computed here: random resource sets, random filters (attributes, tags,
//! fixed IPs), random sort keys and directions, and every page walked with
//! markers forwards and backwards, on SQLite and PostgreSQL. The seed is
//! printed (`NEUTRINO_LISTING_SEED` replays one).

mod common;

use std::cmp::Ordering;

use common::{project, Client, Server};
use serde_json::{json, Value};

/// xorshift64*: small, seeded, good enough to pick test cases.
struct Rng(u64);

impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("NEUTRINO_LISTING_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
        });
        eprintln!("listing test seed: NEUTRINO_LISTING_SEED={seed}");
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[self.below(v.len())]
    }
    fn chance(&mut self, pct: u64) -> bool {
        self.next() % 100 < pct
    }
}

const NAMES: &[&str] = &["alpha", "beta", "Beta", "gamma", "", "b c"];
const OWNERS: &[&str] = &["compute:nova", "compute:az1", ""];
const TAGS: &[&str] = &["red", "green", "blue", "x-1"];

/// One query: its string, and the expected ids computed here.
#[derive(Debug, Clone)]
struct Query {
    params: Vec<(String, String)>,
    sorts: Vec<(String, bool)>,
}

fn s(v: &Value) -> Option<&str> {
    v.as_str()
}

fn cmp_attr(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Null, Value::Null) => Ordering::Equal,
        (Value::Null, _) => Ordering::Less,
        (_, Value::Null) => Ordering::Greater,
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => x.as_i64().cmp(&y.as_i64()),
        (Value::String(x), Value::String(y)) => x.as_bytes().cmp(y.as_bytes()),
        _ => panic!("incomparable {a} {b}"),
    }
}

fn tags_of(p: &Value) -> Vec<String> {
    p["tags"].as_array().unwrap().iter().map(|t| t.as_str().unwrap().to_string()).collect()
}

/// The listing, computed here from the full set of documents.
fn expected(all: &[Value], q: &Query) -> Vec<String> {
    let mut out: Vec<&Value> = all
        .iter()
        .filter(|p| {
            let mut by_key: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
            for (k, v) in &q.params {
                by_key.entry(k.as_str()).or_default().push(v.as_str());
            }
            by_key.iter().all(|(k, vals)| {
                let tags = tags_of(p);
                let split = |v: &&str| v.split(',').map(String::from).collect::<Vec<_>>();
                match *k {
                    "sort_key" | "sort_dir" | "limit" | "marker" | "page_reverse" | "fields" => true,
                    "tags" => vals.iter().all(|v| split(v).iter().all(|t| tags.contains(t))),
                    "tags-any" => vals.iter().all(|v| split(v).iter().any(|t| tags.contains(t))),
                    "not-tags" => vals.iter().all(|v| !split(v).iter().all(|t| tags.contains(t))),
                    "not-tags-any" => vals.iter().all(|v| !split(v).iter().any(|t| tags.contains(t))),
                    "fixed_ips" => {
                        // Neutron: one address must match every key; any value of a key.
                        p["fixed_ips"].as_array().unwrap().iter().any(|ip| {
                            let mut keys: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
                            for v in vals {
                                let (kk, vv) = v.split_once('=').unwrap();
                                keys.entry(kk).or_default().push(vv);
                            }
                            keys.iter().all(|(kk, vv)| match kk.strip_suffix("_substr") {
                                Some(base) => vv.iter().any(|x| ip[base].as_str().unwrap().contains(x)),
                                None => vv.iter().any(|x| ip[*kk].as_str() == Some(x)),
                            })
                        })
                    }
                    "admin_state_up" => vals.iter().any(|v| p[*k].as_bool() == Some(v.eq_ignore_ascii_case("true"))),
                    attr => vals.iter().any(|v| s(&p[attr]) == Some(v)),
                }
            })
        })
        .collect();
    out.sort_by(|a, b| {
        for (k, asc) in &q.sorts {
            let o = cmp_attr(&a[k], &b[k]);
            let o = if *asc { o } else { o.reverse() };
            if o != Ordering::Equal {
                return o;
            }
        }
        a["id"].as_str().cmp(&b["id"].as_str())
    });
    out.iter().map(|p| p["id"].as_str().unwrap().to_string()).collect()
}

fn qs(params: &[(String, String)]) -> String {
    form_urlencoded_lite(params)
}

fn form_urlencoded_lite(params: &[(String, String)]) -> String {
    let enc = |x: &str| {
        x.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    params.iter().map(|(k, v)| format!("{}={}", enc(k), enc(v))).collect::<Vec<_>>().join("&")
}

fn random_query(rng: &mut Rng, all: &[Value], nets: &[String], subnets: &[String]) -> Query {
    let mut params: Vec<(String, String)> = vec![];
    for _ in 0..rng.below(3) {
        match rng.below(9) {
            0 => {
                for _ in 0..1 + rng.below(2) {
                    params.push(("name".into(), rng.pick(NAMES).to_string()));
                }
            }
            1 => params.push(("admin_state_up".into(), rng.pick(&["true", "False"]).to_string())),
            2 => params.push(("device_owner".into(), rng.pick(OWNERS).to_string())),
            3 => params.push(("network_id".into(), rng.pick(nets).clone())),
            4 => {
                let k = *rng.pick(&["tags", "tags-any", "not-tags", "not-tags-any"]);
                let n = 1 + rng.below(2);
                let t: Vec<&str> = (0..n).map(|_| *rng.pick(TAGS)).collect();
                params.push((k.into(), t.join(",")));
            }
            5 => {
                let p = rng.pick(all);
                let ip = p["fixed_ips"][0]["ip_address"].as_str().unwrap().to_string();
                params.push(("fixed_ips".into(), format!("ip_address={ip}")));
            }
            6 => {
                let p = rng.pick(all);
                let ip = p["fixed_ips"][0]["ip_address"].as_str().unwrap().to_string();
                let tail = ip.rsplit('.').next().unwrap().to_string();
                params.push(("fixed_ips".into(), format!("ip_address_substr=.{}", &tail[..1])));
            }
            7 => params.push(("fixed_ips".into(), format!("subnet_id={}", rng.pick(subnets)))),
            _ => {
                params.push(("fixed_ips".into(), format!("subnet_id={}", rng.pick(subnets))));
                let p = rng.pick(all);
                let ip = p["fixed_ips"][0]["ip_address"].as_str().unwrap().to_string();
                params.push(("fixed_ips".into(), format!("ip_address={ip}")));
            }
        }
    }
    let mut sorts = vec![];
    for _ in 0..rng.below(3) {
        let k = *rng.pick(&["name", "admin_state_up", "device_owner", "mac_address", "description", "network_id"]);
        if sorts.iter().any(|(x, _): &(String, bool)| x == k) {
            continue;
        }
        let asc = rng.chance(50);
        sorts.push((k.to_string(), asc));
        params.push(("sort_key".into(), k.into()));
        params.push(("sort_dir".into(), if asc { "asc" } else { "desc" }.into()));
    }
    Query { params, sorts }
}

async fn page(c: &Client, base: &[(String, String)], extra: &[(&str, String)]) -> (Vec<String>, Value) {
    let mut p = base.to_vec();
    p.extend(extra.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let r = c.get(&format!("ports?{}", qs(&p))).await;
    let body = r.expect(200);
    let ids = body["ports"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_string()).collect();
    (ids, body)
}

on_both_stores!(ports_filters_sorts_and_pages_match_an_independent_computation, |srv: Server| async move {
    let mut rng = Rng::new();
    let a = srv.member(&project());
    let b = srv.member(&project());
    let mut nets = vec![];
    let mut subnets = vec![];
    for i in 0..2 {
        let n = a.network(&format!("ln{i}")).await;
        let sub = a.subnet(&n, &format!("10.{}.0.0/24", 60 + i)).await;
        nets.push(n["id"].as_str().unwrap().to_string());
        subnets.push(sub["id"].as_str().unwrap().to_string());
    }
    // The other project's ports must never show.
    let bn = b.network("other").await;
    b.subnet(&bn, "10.70.0.0/24").await;
    let mut hidden = vec![];
    for _ in 0..3 {
        hidden.push(b.port(&bn).await["id"].as_str().unwrap().to_string());
    }
    let count = 30 + rng.below(15);
    for i in 0..count {
        let net = rng.pick(&nets).clone();
        let mut port = json!({"network_id": net, "name": rng.pick(NAMES), "admin_state_up": rng.chance(70),
            "device_owner": rng.pick(OWNERS), "description": format!("d{}", rng.below(4))});
        if rng.chance(20) {
            port["description"] = json!("");
        }
        let p = a.post("ports", json!({"port": port})).await.expect(201)["port"].clone();
        let tags: Vec<&str> = TAGS.iter().copied().filter(|_| rng.chance(40)).collect();
        if !tags.is_empty() {
            a.put(&format!("ports/{}/tags", p["id"].as_str().unwrap()), json!({"tags": tags})).await.expect(200);
        }
        let _ = i;
    }
    // The ground truth: every port of the project, read one by one.
    let listed = a.get("ports").await.expect(200);
    let mut all = vec![];
    for p in listed["ports"].as_array().unwrap() {
        all.push(a.get(&format!("ports/{}", p["id"].as_str().unwrap())).await.expect(200)["port"].clone());
    }
    assert_eq!(all.len(), count, "the member sees exactly the project's ports");
    for h in &hidden {
        assert!(!all.iter().any(|p| p["id"] == h.as_str()), "another project's port is listed");
    }

    let mut checked = 0;
    for _ in 0..40 {
        let q = random_query(&mut rng, &all, &nets, &subnets);
        let want = expected(&all, &q);
        // Unpaged, with sort keys: the whole ordered listing.
        if !q.sorts.is_empty() {
            let (got, _) = page(&a, &q.params, &[]).await;
            assert_eq!(got, want, "listing {:?}", q.params);
        } else {
            let (mut got, _) = page(&a, &q.params, &[]).await;
            got.sort();
            let mut w = want.clone();
            w.sort();
            assert_eq!(got, w, "unsorted listing {:?}", q.params);
        }
        // Forward pages, marker = last id of each page.
        let limit = 1 + rng.below(7);
        let mut walked: Vec<String> = vec![];
        let mut marker: Option<String> = None;
        for _ in 0..100 {
            let mut extra = vec![("limit", limit.to_string())];
            if let Some(m) = &marker {
                extra.push(("marker", m.clone()));
            }
            let (ids, body) = page(&a, &q.params, &extra).await;
            let links = body["ports_links"].as_array().cloned().unwrap_or_default();
            let has_next = links.iter().any(|l| l["rel"] == "next");
            assert_eq!(has_next, ids.len() >= limit, "next link iff the page is full: {body}");
            walked.extend(ids.iter().cloned());
            if ids.len() < limit {
                break;
            }
            marker = ids.last().cloned();
        }
        assert_eq!(walked, want, "forward pages of {limit} {:?}", q.params);
        // A backward page from a marker inside the listing.
        if !want.is_empty() {
            let k = rng.below(want.len());
            let (ids, _) = page(
                &a,
                &q.params,
                &[("limit", limit.to_string()), ("marker", want[k].clone()), ("page_reverse", "True".into())],
            )
            .await;
            assert_eq!(ids, want[k.saturating_sub(limit)..k].to_vec(), "reverse page before {k} {:?}", q.params);
        }
        checked += 1;
    }
    assert_eq!(checked, 40);

    // fields, a missing marker and another project's marker.
    let (_, body) = page(&a, &[("fields".into(), "id".into()), ("fields".into(), "name".into())], &[]).await;
    let first = body["ports"][0].as_object().unwrap();
    let mut keys: Vec<&String> = first.keys().collect();
    keys.sort();
    assert_eq!(keys, vec!["id", "name"]);
    let missing = uuid::Uuid::new_v4().to_string();
    a.get(&format!("ports?limit=2&marker={missing}")).await.fault(404, "PortNotFound");
    a.get(&format!("ports?limit=2&marker={}", hidden[0])).await.fault(404, "PortNotFound");
    srv.admin().get(&format!("ports?limit=2&marker={}", hidden[0])).await.expect(200);
});

on_both_stores!(networks_and_subnets_visibility_shared_filter_and_pages, |srv: Server| async move {
    let a = srv.member(&project());
    let other = project();
    let admin = srv.admin();
    let mut own = vec![];
    for name in ["n-b", "n-a", "n-c"] {
        own.push(a.network(name).await);
    }
    let shared = admin
        .post("networks", json!({"network": {"name": "n-shared", "shared": true, "project_id": other}}))
        .await
        .expect(201)["network"]
        .clone();
    let private =
        admin.post("networks", json!({"network": {"name": "n-private", "project_id": other}})).await.expect(201)
            ["network"]
            .clone();
    let ssub = admin
        .post(
            "subnets",
            json!({"subnet": {"network_id": shared["id"], "cidr": "10.80.0.0/24", "ip_version": 4, "project_id": other}}),
        )
        .await
        .expect(201)["subnet"]
        .clone();
    admin
        .post(
            "subnets",
            json!({"subnet": {"network_id": private["id"], "cidr": "10.81.0.0/24", "ip_version": 4, "project_id": other}}),
        )
        .await
        .expect(201);
    let osub = a.subnet(&own[0], "10.82.0.0/24").await;
    // The member sees its own networks and the shared one, by name desc, in pages of 2.
    let names = |v: &Value| -> Vec<String> {
        v["networks"].as_array().unwrap().iter().map(|n| n["name"].as_str().unwrap().to_string()).collect()
    };
    let p1 = a.get("networks?sort_key=name&sort_dir=desc&limit=2").await.expect(200);
    assert_eq!(names(&p1), vec!["n-shared", "n-c"]);
    let m = p1["networks"][1]["id"].as_str().unwrap().to_string();
    let p2 = a.get(&format!("networks?sort_key=name&sort_dir=desc&limit=2&marker={m}")).await.expect(200);
    assert_eq!(names(&p2), vec!["n-b", "n-a"]);
    let p3 = a.get(&format!("networks?shared=true&fields=name")).await.expect(200);
    assert_eq!(names(&p3), vec!["n-shared"]);
    a.get(&format!("networks?limit=1&marker={}", private["id"].as_str().unwrap())).await.fault(404, "NetworkNotFound");
    // Subnets: by shared, which is the network's.
    let sids = |v: &Value| -> Vec<String> {
        v["subnets"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(sids(&a.get("subnets?shared=true").await.expect(200)), vec![ssub["id"].as_str().unwrap()]);
    assert_eq!(sids(&a.get("subnets?shared=false").await.expect(200)), vec![osub["id"].as_str().unwrap()]);
    let mut both = sids(&a.get("subnets").await.expect(200));
    both.sort();
    let mut want = vec![ssub["id"].as_str().unwrap().to_string(), osub["id"].as_str().unwrap().to_string()];
    want.sort();
    assert_eq!(both, want, "a member sees its subnets and the shared network's");
    let all = admin.get("subnets?shared=False").await.expect(200);
    assert_eq!(all["subnets"].as_array().unwrap().len(), 2, "admin: the two subnets of unshared networks");
    assert!(a.get("subnets").await.expect(200)["subnets"][0].get("shared").is_none(), "shared is not shown");
});
