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
