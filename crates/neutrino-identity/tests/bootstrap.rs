//! Bootstrap is idempotent, keeps its generated password, and writes client
//! configuration files.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use neutrino_identity::{bootstrap, BootstrapOptions, IdentityOptions, IdentityService};
use neutrino_store::Store;

async fn counts(svc: &IdentityService) -> Vec<usize> {
    vec![
        svc.list_domains(None, None).await.unwrap().len(),
        svc.list_projects(None, None, None).await.unwrap().len(),
        svc.list_users(None, None, None).await.unwrap().len(),
        svc.list_roles(None, None).await.unwrap().len(),
        svc.list_services(None, None).await.unwrap().len(),
        svc.list_endpoints(None, None, None).await.unwrap().len(),
        svc.list_regions().await.unwrap().len(),
        svc.implication_rules().await.unwrap().values().map(|s| s.len()).sum(),
    ]
}

async fn open(dir: &std::path::Path) -> Arc<IdentityService> {
    let store = Store::connect(&format!("sqlite://{}", dir.join("id.sqlite").display())).await.unwrap();
    let mut opts = IdentityOptions::new("http://127.0.0.1:5000", dir.join("keys"));
    opts.password_hash_cost = 4;
    Arc::new(IdentityService::new(store, opts).await.unwrap())
}

#[tokio::test]
async fn bootstrap_is_idempotent_and_keeps_the_generated_password() {
    let dir = tempfile::tempdir().unwrap();
    let svc = open(dir.path()).await;
    let opts = BootstrapOptions::new("http://127.0.0.1:9696/");
    let first = bootstrap::bootstrap(&svc, &opts).await.unwrap();
    assert!(first.password_generated);
    assert_eq!(first.admin_password.len(), 24);
    assert_eq!(first.auth_url, "http://127.0.0.1:5000/v3");
    let c1 = counts(&svc).await;
    assert_eq!(c1, vec![1, 2, 1, 5, 2, 6, 1, 3]);
    // Endpoint URLs: network without a trailing slash, identity with /v3/.
    let eps = svc.list_endpoints(None, Some("public"), None).await.unwrap();
    let urls: Vec<&str> = eps.iter().map(|e| e.url.as_str()).collect();
    assert!(urls.contains(&"http://127.0.0.1:9696"), "{urls:?}");
    assert!(urls.contains(&"http://127.0.0.1:5000/v3/"), "{urls:?}");
    svc.store().close().await;

    // A restart: same store, same password, nothing duplicated.
    let svc = open(dir.path()).await;
    let second = bootstrap::bootstrap(&svc, &opts).await.unwrap();
    assert!(!second.password_generated);
    assert_eq!(second.admin_password, first.admin_password);
    assert_eq!(second.admin_user_id, first.admin_user_id);
    assert_eq!(second.admin_project_id, first.admin_project_id);
    assert_eq!(counts(&svc).await, c1);
    let admin = svc.user(&first.admin_user_id).await.unwrap();
    assert!(svc.check_password(&admin, &first.admin_password).await);

    // A given password resets it; a moved network API updates the catalog.
    let mut opts2 = BootstrapOptions::new("http://10.0.0.5:9696");
    opts2.admin_password = Some("operator-chosen".into());
    let third = bootstrap::bootstrap(&svc, &opts2).await.unwrap();
    assert_eq!(third.admin_password, "operator-chosen");
    let admin = svc.user(&first.admin_user_id).await.unwrap();
    assert!(svc.check_password(&admin, "operator-chosen").await);
    assert!(!svc.check_password(&admin, &first.admin_password).await);
    assert_eq!(counts(&svc).await, c1);
    let net = svc.list_services(Some("network"), None).await.unwrap();
    let eps = svc.list_endpoints(Some(&net[0].id), None, None).await.unwrap();
    assert!(eps.iter().all(|e| e.url == "http://10.0.0.5:9696"));
    // ...and later starts without a password keep the operator's.
    let fourth = bootstrap::bootstrap(&svc, &BootstrapOptions::new("http://10.0.0.5:9696")).await.unwrap();
    assert_eq!(fourth.admin_password, "operator-chosen");

    // Client files.
    let rc = bootstrap::write_openrc(dir.path(), &fourth).unwrap();
    let cy = bootstrap::write_clouds_yaml(dir.path(), &fourth).unwrap();
    for p in [&rc, &cy] {
        let mode = std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", p.display());
    }
    let rc = std::fs::read_to_string(rc).unwrap();
    for line in [
        "export OS_AUTH_URL=http://127.0.0.1:5000/v3\n",
        "export OS_USERNAME='admin'\n",
        "export OS_PASSWORD='operator-chosen'\n",
        "export OS_PROJECT_NAME='admin'\n",
        "export OS_USER_DOMAIN_NAME=Default\n",
        "export OS_PROJECT_DOMAIN_NAME=Default\n",
        "export OS_IDENTITY_API_VERSION=3\n",
        "export OS_REGION_NAME='RegionOne'\n",
    ] {
        assert!(rc.contains(line), "{line} in {rc}");
    }
    let cy = std::fs::read_to_string(cy).unwrap();
    assert!(cy.starts_with("clouds:\n  neutrino:\n"), "{cy}");
    assert!(cy.contains("      password: \"operator-chosen\"\n"), "{cy}");
    assert!(cy.contains("    region_name: \"RegionOne\"\n"), "{cy}");
    svc.store().close().await;
}

#[test]
fn openrc_quotes_awkward_passwords() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcome = rt.block_on(async {
        let svc = open(dir.path()).await;
        let mut o = BootstrapOptions::new("http://127.0.0.1:9696");
        o.admin_password = Some("it's $HOME \"x\"".into());
        bootstrap::bootstrap(&svc, &o).await.unwrap()
    });
    let rc = bootstrap::openrc_text(&outcome);
    // Let a real shell read it back.
    let out =
        std::process::Command::new("sh").arg("-c").arg(format!("{rc}\nprintf %s \"$OS_PASSWORD\"")).output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "it's $HOME \"x\"");
    let yaml = bootstrap::clouds_yaml_text(&outcome);
    assert!(yaml.contains(r#"password: "it's $HOME \"x\"""#), "{yaml}");
}
