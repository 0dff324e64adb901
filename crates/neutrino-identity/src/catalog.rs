//! The service catalog: regions, services and their endpoints, rendered into
//! every scoped token.

use serde_json::{json, Map, Value};
use sqlx::any::AnyRow;

use crate::db::{self, flag, object, text};
use crate::input::{check_name, opt_bool, opt_str};
use crate::{IdentityError, IdentityService, Result};

/// A region.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    /// Id (e.g. `RegionOne`).
    pub id: String,
    /// Free text.
    pub description: String,
    /// Parent region ('' for none).
    pub parent_region_id: String,
    /// Other attributes.
    pub extra: Map<String, Value>,
}

/// A service (`network`, `identity`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Service {
    /// Id (32 hex digits).
    pub id: String,
    /// Service type (`network`).
    pub service_type: String,
    /// Name (`neutron`).
    pub name: String,
    /// Free text.
    pub description: String,
    /// Disabled services are left out of the catalog.
    pub enabled: bool,
    /// Other attributes.
    pub extra: Map<String, Value>,
}

/// An endpoint of a service.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Id (32 hex digits).
    pub id: String,
    /// The service.
    pub service_id: String,
    /// `public`, `internal` or `admin`.
    pub interface: String,
    /// Region ('' for none).
    pub region_id: String,
    /// The URL.
    pub url: String,
    /// Disabled endpoints are left out of the catalog.
    pub enabled: bool,
    /// Other attributes.
    pub extra: Map<String, Value>,
}

const INTERFACES: &[&str] = &["public", "internal", "admin"];

fn opt_null(s: &str) -> Value {
    if s.is_empty() {
        Value::Null
    } else {
        json!(s)
    }
}

impl Region {
    fn from_row(r: &AnyRow) -> Result<Region> {
        Ok(Region {
            id: text(r, "id")?,
            description: text(r, "description")?,
            parent_region_id: text(r, "parent_region_id")?,
            extra: object(r, "extra")?,
        })
    }

    /// Keystone's JSON.
    pub fn to_json(&self, svc: &IdentityService) -> Value {
        let mut m = self.extra.clone();
        m.insert("id".into(), json!(self.id));
        m.insert("description".into(), json!(self.description));
        m.insert("parent_region_id".into(), opt_null(&self.parent_region_id));
        m.insert("links".into(), json!({"self": svc.link(&format!("regions/{}", self.id))}));
        Value::Object(m)
    }
}

impl Service {
    fn from_row(r: &AnyRow) -> Result<Service> {
        Ok(Service {
            id: text(r, "id")?,
            service_type: text(r, "service_type")?,
            name: text(r, "name")?,
            description: text(r, "description")?,
            enabled: flag(r, "enabled")?,
            extra: object(r, "extra")?,
        })
    }

    /// Keystone's JSON.
    pub fn to_json(&self, svc: &IdentityService) -> Value {
        let mut m = self.extra.clone();
        m.insert("id".into(), json!(self.id));
        m.insert("type".into(), json!(self.service_type));
        m.insert("name".into(), json!(self.name));
        m.insert("description".into(), json!(self.description));
        m.insert("enabled".into(), json!(self.enabled));
        m.insert("links".into(), json!({"self": svc.link(&format!("services/{}", self.id))}));
        Value::Object(m)
    }
}

impl Endpoint {
    fn from_row(r: &AnyRow) -> Result<Endpoint> {
        Ok(Endpoint {
            id: text(r, "id")?,
            service_id: text(r, "service_id")?,
            interface: text(r, "interface")?,
            region_id: text(r, "region_id")?,
            url: text(r, "url")?,
            enabled: flag(r, "enabled")?,
            extra: object(r, "extra")?,
        })
    }

    /// Keystone's JSON.
    pub fn to_json(&self, svc: &IdentityService) -> Value {
        let mut m = self.extra.clone();
        m.insert("id".into(), json!(self.id));
        m.insert("service_id".into(), json!(self.service_id));
        m.insert("interface".into(), json!(self.interface));
        m.insert("region_id".into(), opt_null(&self.region_id));
        m.insert("region".into(), opt_null(&self.region_id));
        m.insert("url".into(), json!(self.url));
        m.insert("enabled".into(), json!(self.enabled));
        m.insert("links".into(), json!({"self": svc.link(&format!("endpoints/{}", self.id))}));
        Value::Object(m)
    }
}

/// A unique violation on insert becomes 409 (another request, or another
/// server, stored the same id first).
fn duplicate(e: sqlx::Error, kind: &'static str, id: &str) -> IdentityError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => {
            IdentityError::conflict(kind, format!("Duplicate ID, {id}"))
        }
        _ => IdentityError::Db(e),
    }
}

fn check_interface(i: &str) -> Result<()> {
    if INTERFACES.contains(&i) {
        Ok(())
    } else {
        Err(IdentityError::invalid_field("interface", format!("'{i}' does not match '^(admin|internal|public)$'")))
    }
}

fn check_url(url: &str) -> Result<()> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(IdentityError::invalid_field("url", format!("'{url}' is not a valid URL")))
    }
}

impl IdentityService {
    // ---- regions ----

    /// Creates a region (`id` from the body or the URL, else generated).
    pub async fn create_region(&self, body: &Map<String, Value>, id: Option<&str>) -> Result<Region> {
        let id = match (id, opt_str(body, "id")?) {
            (Some(a), Some(b)) if a != b => {
                return Err(IdentityError::BadRequest(
                    "Conflicting region IDs specified: the URL and the body differ.".into(),
                ))
            }
            (Some(a), _) => a.to_string(),
            (None, Some(b)) => b,
            (None, None) => db::new_id(),
        };
        check_name("id", &id, 255)?;
        let parent = opt_str(body, "parent_region_id")?.unwrap_or_default();
        if !parent.is_empty() && self.get_region(&parent).await?.is_none() {
            return Err(IdentityError::not_found("region", parent));
        }
        if self.get_region(&id).await?.is_some() {
            return Err(IdentityError::conflict("region", format!("Duplicate ID, {id}")));
        }
        let r = Region {
            id,
            description: opt_str(body, "description")?.unwrap_or_default(),
            parent_region_id: parent,
            extra: crate::input::extra(body, &["id", "description", "parent_region_id"]),
        };
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO identity_regions (id, description, parent_region_id, extra) VALUES ($1, $2, $3, $4)")
            .bind(&r.id)
            .bind(&r.description)
            .bind(&r.parent_region_id)
            .bind(Value::Object(r.extra.clone()).to_string())
            .execute(tx.conn())
            .await
            .map_err(|e| duplicate(e, "region", &r.id))?;
        tx.commit().await?;
        Ok(r)
    }

    /// A region by id.
    pub async fn get_region(&self, id: &str) -> Result<Option<Region>> {
        let row = sqlx::query("SELECT id, description, parent_region_id, extra FROM identity_regions WHERE id = $1")
            .bind(id)
            .fetch_optional(self.store.pool())
            .await?;
        row.as_ref().map(Region::from_row).transpose()
    }

    /// A region by id, or 404.
    pub async fn region(&self, id: &str) -> Result<Region> {
        self.get_region(id).await?.ok_or_else(|| IdentityError::not_found("region", id))
    }

    /// All regions.
    pub async fn list_regions(&self) -> Result<Vec<Region>> {
        let rows = sqlx::query("SELECT id, description, parent_region_id, extra FROM identity_regions ORDER BY id")
            .fetch_all(self.store.pool())
            .await?;
        rows.iter().map(Region::from_row).collect()
    }

    /// Updates a region's description and extra attributes.
    pub async fn update_region(&self, id: &str, patch: &Map<String, Value>) -> Result<Region> {
        let mut r = self.region(id).await?;
        if let Some(d) = opt_str(patch, "description")? {
            r.description = d;
        }
        if patch.contains_key("parent_region_id") {
            let parent = opt_str(patch, "parent_region_id")?.unwrap_or_default();
            if !parent.is_empty() && (parent == r.id || self.get_region(&parent).await?.is_none()) {
                return Err(IdentityError::BadRequest(format!("Invalid parent region: {parent}.")));
            }
            r.parent_region_id = parent;
        }
        for (k, v) in crate::input::extra(patch, &["id", "description", "parent_region_id"]) {
            r.extra.insert(k, v);
        }
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE identity_regions SET description = $1, parent_region_id = $2, extra = $3 WHERE id = $4")
            .bind(&r.description)
            .bind(&r.parent_region_id)
            .bind(Value::Object(r.extra.clone()).to_string())
            .bind(&r.id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(r)
    }

    /// Deletes a region (refused while endpoints or child regions use it).
    pub async fn delete_region(&self, id: &str) -> Result<()> {
        self.region(id).await?;
        let used = sqlx::query("SELECT id FROM identity_endpoints WHERE region_id = $1 UNION SELECT id FROM identity_regions WHERE parent_region_id = $1")
            .bind(id)
            .fetch_all(self.store.pool())
            .await?;
        if !used.is_empty() {
            return Err(IdentityError::ForbiddenAction(format!(
                "Cannot delete region {id}: endpoints or child regions refer to it."
            )));
        }
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM identity_regions WHERE id = $1").bind(id).execute(tx.conn()).await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- services ----

    /// Creates a service from the `service` object of a request.
    pub async fn create_service(&self, body: &Map<String, Value>) -> Result<Service> {
        let service_type = match opt_str(body, "type")? {
            Some(t) => {
                check_name("type", &t, 255)?;
                t
            }
            None => return Err(IdentityError::invalid_field("type", "'type' is a required property")),
        };
        let s = Service {
            id: opt_str(body, "id")?.unwrap_or_else(db::new_id),
            service_type,
            name: opt_str(body, "name")?.unwrap_or_default(),
            description: opt_str(body, "description")?.unwrap_or_default(),
            enabled: opt_bool(body, "enabled")?.unwrap_or(true),
            extra: crate::input::extra(body, &["id", "type", "name", "description", "enabled"]),
        };
        if self.get_service(&s.id).await?.is_some() {
            return Err(IdentityError::conflict("service", format!("Duplicate ID, {}", s.id)));
        }
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO identity_services (id, service_type, name, description, enabled, extra) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(&s.id)
            .bind(&s.service_type)
            .bind(&s.name)
            .bind(&s.description)
            .bind(s.enabled as i64)
            .bind(Value::Object(s.extra.clone()).to_string())
            .execute(tx.conn())
            .await
            .map_err(|e| duplicate(e, "service", &s.id))?;
        tx.commit().await?;
        tracing::info!(service_id = %s.id, service_type = %s.service_type, "created service");
        Ok(s)
    }

    /// A service by id.
    pub async fn get_service(&self, id: &str) -> Result<Option<Service>> {
        let row = sqlx::query(
            "SELECT id, service_type, name, description, enabled, extra FROM identity_services WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?;
        row.as_ref().map(Service::from_row).transpose()
    }

    /// A service by id, or 404.
    pub async fn service(&self, id: &str) -> Result<Service> {
        self.get_service(id).await?.ok_or_else(|| IdentityError::not_found("service", id))
    }

    /// Services, optionally filtered by type and name.
    pub async fn list_services(&self, service_type: Option<&str>, name: Option<&str>) -> Result<Vec<Service>> {
        let rows = sqlx::query("SELECT id, service_type, name, description, enabled, extra FROM identity_services ORDER BY service_type, id")
            .fetch_all(self.store.pool())
            .await?;
        let mut out = vec![];
        for r in &rows {
            let s = Service::from_row(r)?;
            if service_type.is_some_and(|t| t != s.service_type) || name.is_some_and(|n| n != s.name) {
                continue;
            }
            out.push(s);
        }
        Ok(out)
    }

    /// Updates a service.
    pub async fn update_service(&self, id: &str, patch: &Map<String, Value>) -> Result<Service> {
        let mut s = self.service(id).await?;
        if let Some(t) = opt_str(patch, "type")? {
            check_name("type", &t, 255)?;
            s.service_type = t;
        }
        if let Some(n) = opt_str(patch, "name")? {
            s.name = n;
        }
        if let Some(d) = opt_str(patch, "description")? {
            s.description = d;
        }
        if let Some(e) = opt_bool(patch, "enabled")? {
            s.enabled = e;
        }
        for (k, v) in crate::input::extra(patch, &["id", "type", "name", "description", "enabled"]) {
            s.extra.insert(k, v);
        }
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE identity_services SET service_type = $1, name = $2, description = $3, enabled = $4, extra = $5 WHERE id = $6")
            .bind(&s.service_type)
            .bind(&s.name)
            .bind(&s.description)
            .bind(s.enabled as i64)
            .bind(Value::Object(s.extra.clone()).to_string())
            .bind(&s.id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(s)
    }

    /// Deletes a service and its endpoints.
    pub async fn delete_service(&self, id: &str) -> Result<()> {
        self.service(id).await?;
        let mut tx = self.begin_write().await?;
        for sql in
            ["DELETE FROM identity_endpoints WHERE service_id = $1", "DELETE FROM identity_services WHERE id = $1"]
        {
            sqlx::query(sql).bind(id).execute(tx.conn()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    // ---- endpoints ----

    /// Creates an endpoint from the `endpoint` object of a request.
    pub async fn create_endpoint(&self, body: &Map<String, Value>) -> Result<Endpoint> {
        let service_id = opt_str(body, "service_id")?
            .ok_or_else(|| IdentityError::invalid_field("service_id", "'service_id' is a required property"))?;
        let interface = opt_str(body, "interface")?
            .ok_or_else(|| IdentityError::invalid_field("interface", "'interface' is a required property"))?;
        let url =
            opt_str(body, "url")?.ok_or_else(|| IdentityError::invalid_field("url", "'url' is a required property"))?;
        check_interface(&interface)?;
        check_url(&url)?;
        if self.get_service(&service_id).await?.is_none() {
            return Err(IdentityError::BadRequest(format!("Could not find service: {service_id}.")));
        }
        let region_id = opt_str(body, "region_id")?.or(opt_str(body, "region")?).unwrap_or_default();
        if !region_id.is_empty() && self.get_region(&region_id).await?.is_none() {
            return Err(IdentityError::BadRequest(format!("Could not find region: {region_id}.")));
        }
        let e = Endpoint {
            id: opt_str(body, "id")?.unwrap_or_else(db::new_id),
            service_id,
            interface,
            region_id,
            url,
            enabled: opt_bool(body, "enabled")?.unwrap_or(true),
            extra: crate::input::extra(
                body,
                &["id", "service_id", "interface", "region_id", "region", "url", "enabled"],
            ),
        };
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO identity_endpoints (id, service_id, interface, region_id, url, enabled, extra) VALUES ($1, $2, $3, $4, $5, $6, $7)")
            .bind(&e.id)
            .bind(&e.service_id)
            .bind(&e.interface)
            .bind(&e.region_id)
            .bind(&e.url)
            .bind(e.enabled as i64)
            .bind(Value::Object(e.extra.clone()).to_string())
            .execute(tx.conn())
            .await
            .map_err(|err| duplicate(err, "endpoint", &e.id))?;
        tx.commit().await?;
        tracing::info!(endpoint_id = %e.id, service_id = %e.service_id, interface = %e.interface, url = %e.url, "created endpoint");
        Ok(e)
    }

    /// An endpoint by id, or 404.
    pub async fn endpoint(&self, id: &str) -> Result<Endpoint> {
        let row = sqlx::query(
            "SELECT id, service_id, interface, region_id, url, enabled, extra FROM identity_endpoints WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.store.pool())
        .await?;
        match row {
            Some(r) => Endpoint::from_row(&r),
            None => Err(IdentityError::not_found("endpoint", id)),
        }
    }

    /// Endpoints, optionally filtered by service, interface and region.
    pub async fn list_endpoints(
        &self,
        service_id: Option<&str>,
        interface: Option<&str>,
        region_id: Option<&str>,
    ) -> Result<Vec<Endpoint>> {
        let rows = sqlx::query("SELECT id, service_id, interface, region_id, url, enabled, extra FROM identity_endpoints ORDER BY service_id, interface, id")
            .fetch_all(self.store.pool())
            .await?;
        let mut out = vec![];
        for r in &rows {
            let e = Endpoint::from_row(r)?;
            if service_id.is_some_and(|s| s != e.service_id)
                || interface.is_some_and(|i| i != e.interface)
                || region_id.is_some_and(|x| x != e.region_id)
            {
                continue;
            }
            out.push(e);
        }
        Ok(out)
    }

    /// Updates an endpoint.
    pub async fn update_endpoint(&self, id: &str, patch: &Map<String, Value>) -> Result<Endpoint> {
        let mut e = self.endpoint(id).await?;
        if let Some(i) = opt_str(patch, "interface")? {
            check_interface(&i)?;
            e.interface = i;
        }
        if let Some(u) = opt_str(patch, "url")? {
            check_url(&u)?;
            e.url = u;
        }
        if let Some(s) = opt_str(patch, "service_id")? {
            self.service(&s).await?;
            e.service_id = s;
        }
        if let Some(r) = opt_str(patch, "region_id")?.or(opt_str(patch, "region")?) {
            self.region(&r).await?;
            e.region_id = r;
        }
        if let Some(en) = opt_bool(patch, "enabled")? {
            e.enabled = en;
        }
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE identity_endpoints SET service_id = $1, interface = $2, region_id = $3, url = $4, enabled = $5 WHERE id = $6")
            .bind(&e.service_id)
            .bind(&e.interface)
            .bind(&e.region_id)
            .bind(&e.url)
            .bind(e.enabled as i64)
            .bind(&e.id)
            .execute(tx.conn())
            .await?;
        tx.commit().await?;
        Ok(e)
    }

    /// Deletes an endpoint.
    pub async fn delete_endpoint(&self, id: &str) -> Result<()> {
        self.endpoint(id).await?;
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM identity_endpoints WHERE id = $1").bind(id).execute(tx.conn()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The catalog as carried in tokens: enabled services with their enabled
    /// endpoints (each with `region` and `region_id`, as keystoneauth and
    /// Tempest match on either).
    pub async fn catalog(&self) -> Result<Vec<Value>> {
        let endpoints = self.list_endpoints(None, None, None).await?;
        let mut out = vec![];
        for s in self.list_services(None, None).await? {
            if !s.enabled {
                continue;
            }
            let eps: Vec<Value> = endpoints
                .iter()
                .filter(|e| e.enabled && e.service_id == s.id)
                .map(|e| {
                    json!({
                        "id": e.id,
                        "interface": e.interface,
                        "region_id": opt_null(&e.region_id),
                        "region": opt_null(&e.region_id),
                        "url": e.url,
                    })
                })
                .collect();
            out.push(json!({"endpoints": eps, "id": s.id, "type": s.service_type, "name": s.name}));
        }
        Ok(out)
    }
}
