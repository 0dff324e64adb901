//! neutrino-ml2: the core plugin.
//!
//! Neutron's core resources — networks, subnets, ports — with ML2's type
//! drivers for segmentation, IPAM for addresses, and the core plugin's
//! companions: security groups, subnet pools, address scopes, quotas,
//! network IP availability and availability zones. Each resource is a
//! [`ResourcePlugin`] served by the API edge.

pub mod address_scope;
pub mod agents;
pub mod availability;
pub mod binding;
pub mod config;
mod dhcp;
pub mod error;
pub mod network;
pub mod notify;
pub mod port;
pub mod providers;
pub mod quota;
pub mod secgroup;
pub mod segment;
mod segments;
pub mod southbound;
pub mod subnet;
pub mod subnetpool;
pub mod types;

use std::sync::Arc;

use neutrino_lib::plugin::ResourcePlugin;
use neutrino_lib::resource::stamp;
use neutrino_lib::Map;
use neutrino_store::{Store, Table, Tx};
use serde_json::Value;

pub use config::Ml2Config;
pub use error::Ml2Error;
use error::Result;
use notify::{Notifier, Outbox};
use types::TypeManager;

/// Something that must take part in port changes inside their transaction
/// (Neutron's callbacks): the L3 plugin guards router ports and clears
/// floating IP associations.
#[async_trait::async_trait]
pub trait PortObserver: Send + Sync {
    /// A port is about to be deleted; `via_api` when a user asked through the
    /// port API (rather than a network or router delete). An error aborts.
    async fn before_port_delete(&self, tx: &mut Tx, out: &mut Outbox, port: &Map, via_api: bool) -> Result<()>;

    /// A port is about to be updated through the port API with `changes`.
    async fn before_port_update(&self, _tx: &mut Tx, _port: &Map, _changes: &Map) -> Result<()> {
        Ok(())
    }

    /// A network is about to be deleted (before its remaining ports are
    /// checked): the L3 plugin removes unassociated floating IPs on it.
    async fn before_network_delete(&self, _core: &Core, _tx: &mut Tx, _out: &mut Outbox, _network: &Map) -> Result<()> {
        Ok(())
    }
}

/// Something that wants to know when an agent comes up (first report, or
/// back from the dead): the L3 plugin schedules routers to L3 agents.
#[async_trait::async_trait]
pub trait AgentObserver: Send + Sync {
    /// Called after the agent's report committed.
    async fn agent_up(&self, core: &Core, agent: &Map) -> Result<()>;
}

/// A sub-resource of agents served by another plugin (e.g. `l3-routers`).
#[async_trait::async_trait]
pub trait AgentSubresource: Send + Sync {
    /// The path segment, e.g. `l3-routers`.
    fn name(&self) -> &'static str;
    /// Serves `/v2.0/agents/{id}/<name>[/…]`.
    async fn request(
        &self,
        ctx: &neutrino_lib::Context,
        method: &str,
        agent: &Map,
        rest: &[&str],
        body: Option<Value>,
    ) -> std::result::Result<neutrino_lib::plugin::SubResponse, neutrino_lib::Fault>;
}

/// State shared by the core plugin's resources.
pub struct Core {
    /// The store.
    pub store: Store,
    /// Configuration.
    pub cfg: Ml2Config,
    /// Type drivers.
    pub types: TypeManager,
    /// Where committed changes go.
    pub notifier: Arc<dyn Notifier>,
    /// Participants in port changes.
    observers: std::sync::RwLock<Vec<Arc<dyn PortObserver>>>,
    /// Interested in agents coming up.
    agent_observers: std::sync::RwLock<Vec<Arc<dyn AgentObserver>>>,
    /// Agent sub-resources of other plugins.
    agent_subresources: std::sync::RwLock<Vec<Arc<dyn AgentSubresource>>>,
}

impl Core {
    /// Builds the core plugin and brings the segment pools in line with the
    /// configuration.
    pub async fn new(store: Store, cfg: Ml2Config, notifier: Arc<dyn Notifier>) -> Result<Arc<Core>> {
        let types = TypeManager::new(&cfg);
        types.sync(&store).await?;
        Ok(Arc::new(Core {
            store,
            cfg,
            types,
            notifier,
            observers: Default::default(),
            agent_observers: Default::default(),
            agent_subresources: Default::default(),
        }))
    }

    /// Registers a participant in port changes.
    pub fn add_port_observer(&self, o: Arc<dyn PortObserver>) {
        self.observers.write().unwrap_or_else(|e| e.into_inner()).push(o);
    }

    /// Registers interest in agents coming up.
    pub fn add_agent_observer(&self, o: Arc<dyn AgentObserver>) {
        self.agent_observers.write().unwrap_or_else(|e| e.into_inner()).push(o);
    }

    /// Registers an agent sub-resource served by another plugin.
    pub fn add_agent_subresource(&self, s: Arc<dyn AgentSubresource>) {
        self.agent_subresources.write().unwrap_or_else(|e| e.into_inner()).push(s);
    }

    pub(crate) fn agent_subresource(&self, name: &str) -> Option<Arc<dyn AgentSubresource>> {
        self.agent_subresources.read().unwrap_or_else(|e| e.into_inner()).iter().find(|s| s.name() == name).cloned()
    }

    pub(crate) fn agent_observers(&self) -> Vec<Arc<dyn AgentObserver>> {
        self.agent_observers.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn port_observers(&self) -> Vec<Arc<dyn PortObserver>> {
        self.observers.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Commits and then delivers the queued notifications.
    pub async fn commit(&self, mut tx: Tx, mut outbox: Outbox) -> Result<()> {
        let durable = !outbox.is_empty() && self.notifier.durable();
        if durable {
            outbox.persist(&mut tx).await?;
        }
        tx.commit().await?;
        if durable {
            crash_hook(&outbox);
        }
        outbox.deliver(self.notifier.as_ref());
        Ok(())
    }

    /// The table whose rows a quota resource counts.
    pub fn quota_table(resource: &str) -> Option<&'static Table> {
        use neutrino_store::schema::*;
        Some(match resource {
            "network" => &NETWORKS,
            "subnet" => &SUBNETS,
            "port" => &PORTS,
            "router" => &ROUTERS,
            "floatingip" => &FLOATINGIPS,
            "security_group" => &SECURITY_GROUPS,
            "security_group_rule" => &SECURITY_GROUP_RULES,
            "subnetpool" => &SUBNETPOOLS,
            _ => return None,
        })
    }

    /// First half of taking quota, early in a transaction: the effective
    /// limit, with the usage counter initialised when the limit is finite.
    pub async fn quota_prepare(&self, tx: &mut Tx, project: &str, resource: &str) -> Result<i64> {
        if project.is_empty() {
            return Ok(-1);
        }
        let limit = self.quota_limit(tx, project, resource).await?;
        if limit >= 0 {
            if let Some(t) = Self::quota_table(resource) {
                tx.usage_init(project, resource, t).await?;
            }
        }
        Ok(limit)
    }

    /// Second half, as late as possible: takes `n` units within `limit`.
    /// Unlimited resources keep no counter, so they contend on nothing.
    pub async fn quota_take_prepared(
        &self,
        tx: &mut Tx,
        project: &str,
        resource: &str,
        n: i64,
        limit: i64,
    ) -> Result<()> {
        if limit < 0 || project.is_empty() {
            return Ok(());
        }
        if !tx.usage_take(project, resource, n, limit).await? {
            return Err(Ml2Error::OverQuota(resource.to_string()));
        }
        Ok(())
    }

    /// Takes quota for `n` new resources of a project, before they are
    /// inserted (resources without a project, such as router gateway ports,
    /// are not counted).
    pub async fn quota_take(&self, tx: &mut Tx, project: &str, resource: &str, n: i64) -> Result<()> {
        let limit = self.quota_prepare(tx, project, resource).await?;
        self.quota_take_prepared(tx, project, resource, n, limit).await
    }

    /// The effective limit of a project for a resource.
    pub async fn quota_limit(&self, tx: &mut Tx, project: &str, resource: &str) -> Result<i64> {
        Ok(match tx.quota_limit(project, resource).await? {
            Some(l) => l,
            None => self.cfg.quota_defaults.get(resource).copied().unwrap_or(-1),
        })
    }

    /// Gives quota back.
    pub async fn quota_release(&self, tx: &mut Tx, project: &str, resource: &str, n: i64) -> Result<()> {
        match Self::quota_table(resource) {
            Some(t) if !project.is_empty() && self.quota_limit(tx, project, resource).await? >= 0 => {
                tx.usage_release_counted(project, resource, t, n).await?
            }
            _ => tx.usage_release(project, resource, n).await?,
        }
        Ok(())
    }

    /// Replaces the tags of a document in `table`.
    pub async fn set_tags(
        &self,
        table: &'static Table,
        resource: &'static str,
        missing: impl FnOnce() -> Ml2Error,
        id: &str,
        tags: Vec<String>,
    ) -> Result<Vec<String>> {
        let mut tx = self.store.begin().await?;
        let Some(mut doc) = tx.get(table, id).await? else {
            return Err(missing());
        };
        let mut tags = tags;
        tags.sort();
        tags.dedup();
        doc.insert("tags".into(), Value::from(tags.clone()));
        stamp::changed(&mut doc);
        tx.update(table, &doc).await?;
        let mut out = Outbox::default();
        out.push(resource, notify::Action::Update, &doc);
        self.commit(tx, out).await?;
        Ok(tags)
    }
}

/// Every resource plugin of the core.
pub fn plugins(core: &Arc<Core>) -> Vec<Arc<dyn ResourcePlugin>> {
    vec![
        Arc::new(network::Networks(core.clone())),
        Arc::new(subnet::Subnets(core.clone())),
        Arc::new(port::Ports(core.clone())),
        Arc::new(secgroup::SecurityGroups(core.clone())),
        Arc::new(secgroup::SecurityGroupRules(core.clone())),
        Arc::new(subnetpool::SubnetPools(core.clone())),
        Arc::new(address_scope::AddressScopes(core.clone())),
        Arc::new(quota::Quotas(core.clone())),
        Arc::new(availability::NetworkIpAvailabilities(core.clone())),
        Arc::new(agents::Agents(core.clone())),
        Arc::new(agents::AvailabilityZones(core.clone())),
        Arc::new(segment::Segments(core.clone())),
        Arc::new(providers::ServiceProviders),
    ]
}

/// The string value of `key`, if it is a non-empty string.
pub(crate) fn opt_str(doc: &Map, key: &str) -> Option<String> {
    doc.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(String::from)
}

/// The fault tests' hook: with `NEUTRINO_TEST_CRASH_AFTER_COMMIT=<resource>`
/// the process dies (as by SIGKILL: no cleanup, no delivery) right after
/// committing a change of that resource, before its notifications go out.
/// The file named by `NEUTRINO_TEST_CRASH_ARMED`, when set, must exist for
/// the hook to fire, so a test can arm it at the moment it chooses.
fn crash_hook(outbox: &Outbox) {
    static TARGET: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    let Some(target) = TARGET.get_or_init(|| std::env::var("NEUTRINO_TEST_CRASH_AFTER_COMMIT").ok()) else {
        return;
    };
    if !outbox.resources().any(|r| r == target) {
        return;
    }
    if let Ok(armed) = std::env::var("NEUTRINO_TEST_CRASH_ARMED") {
        if !std::path::Path::new(&armed).exists() {
            return;
        }
    }
    tracing::warn!(resource = %target, "crash hook: aborting after commit, before delivery");
    std::process::abort();
}

/// The caller's own resources, as a listing condition.
pub fn own(ctx: &neutrino_lib::Context) -> neutrino_store::Cond {
    match &ctx.project_id {
        Some(p) => neutrino_store::Cond::ColIn("project_id", vec![p.clone()]),
        None => neutrino_store::Cond::False,
    }
}

/// Answers a list request from a table: the request's filters, order and
/// page plus the plugin's visibility conditions, all in SQL. A marker the
/// caller cannot see is the resource's 404.
pub async fn select(
    store: &Store,
    def: &'static neutrino_lib::resource::ResourceDef,
    table: &'static Table,
    spec: &neutrino_lib::listing::ListSpec,
    conds: &[neutrino_store::Cond],
) -> std::result::Result<neutrino_lib::plugin::Listing, neutrino_lib::Fault> {
    use neutrino_lib::plugin::Listing;
    use neutrino_store::{Selected, StoreError};
    match store.select(table, spec, conds).await {
        Ok(Selected::Page(docs)) => Ok(Listing::Page(docs)),
        Ok(Selected::Stream(rx)) => {
            let s = futures::stream::unfold(rx, |mut rx| async move {
                let item = rx.recv().await?;
                Some((item.map_err(neutrino_lib::Fault::from), rx))
            });
            Ok(Listing::Stream(Box::pin(s)))
        }
        Err(StoreError::MarkerNotFound(m)) => Err(def.not_found_fault(&m)),
        Err(e) => Err(e.into()),
    }
}

/// Pushes equality filters of a list hint down to indexed columns (for
/// plugins built on the core's tables).
pub fn pushdown(table: &'static Table, hint: &neutrino_lib::plugin::ListHint) -> Vec<(&'static str, Vec<String>)> {
    let mut out = vec![];
    for (attr, vals) in &hint.eq {
        let Some(col) = ["id", "name", "project_id"].iter().chain(table.cols.iter()).find(|c| **c == attr.as_str())
        else {
            continue;
        };
        let strs: Option<Vec<String>> = vals
            .iter()
            .map(|v| match v {
                Value::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        if let Some(s) = strs {
            out.push((*col, s));
        }
    }
    if let Some(p) = &hint.projects {
        if !hint.eq.iter().any(|(a, _)| a == "project_id" || a == "tenant_id") {
            out.push(("project_id", p.clone()));
        }
    }
    out
}
