//! The core lifecycle again, on a fresh scratch PostgreSQL database (created
//! and dropped by the test). Outside CI it is skipped when no server listens
//! on 127.0.0.1:5432.

mod common;

use common::{Cloud, Knobs};

#[tokio::test]
async fn token_lifecycle_on_postgres() {
    let Some(c) = Cloud::start_with(Knobs { postgres: true, ..Knobs::default() }).await else {
        return;
    };
    assert_eq!(c.svc.store().backend(), neutrino_store::Backend::Postgres);
    common::lifecycle::core_lifecycle(&c).await;
    // Key rotation works the same whatever the database.
    c.svc.rotate_keys().unwrap();
    assert_eq!(c.validate(&c.admin_token).await, 200);
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_bootstrapping_together_agree() {
    let Some(db) = common::scratch_pg().await else {
        return;
    };
    let _guard = common::PgGuard(db.clone());
    let url = format!("postgresql://postgres@127.0.0.1:5432/{db}");
    let dir = tempfile::tempdir().unwrap();
    let mut services = vec![];
    for _ in 0..3 {
        let store = neutrino_store::Store::connect(&url).await.unwrap();
        let mut o = neutrino_identity::IdentityOptions::new("http://127.0.0.1:5000", dir.path().join("keys"));
        o.password_hash_cost = 4;
        services.push(std::sync::Arc::new(neutrino_identity::IdentityService::new(store, o).await.unwrap()));
    }
    let opts = neutrino_identity::BootstrapOptions::new("http://127.0.0.1:9696");
    let runs = futures_join(services.iter().map(|s| {
        let s = s.clone();
        let opts = opts.clone();
        tokio::spawn(async move { neutrino_identity::bootstrap::bootstrap(&s, &opts).await })
    }))
    .await;
    let outcomes: Vec<_> = runs.into_iter().map(|r| r.unwrap().expect("bootstrap")).collect();
    assert!(outcomes.iter().all(|o| o.admin_password == outcomes[0].admin_password), "one password for all");
    assert!(outcomes.iter().all(|o| o.admin_user_id == outcomes[0].admin_user_id));
    assert_eq!(outcomes.iter().filter(|o| o.password_generated).count(), 1);
    let svc = &services[0];
    assert_eq!(svc.list_users(None, None, None).await.unwrap().len(), 1);
    assert_eq!(svc.list_projects(None, None, None).await.unwrap().len(), 2);
    assert_eq!(svc.list_roles(None, None).await.unwrap().len(), 5);
    assert_eq!(svc.list_endpoints(None, None, None).await.unwrap().len(), 6);
    let admin = svc.user(&outcomes[0].admin_user_id).await.unwrap();
    assert!(svc.check_password(&admin, &outcomes[0].admin_password).await);
    for s in &services {
        s.store().close().await;
    }
}

async fn futures_join<T>(
    handles: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = vec![];
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await);
    }
    out
}
