//! SSL: an ovsdb-server with `--remote=pssl:` accepts the client's certificate, and the client
//! rejects a server whose certificate does not chain to its CA.

mod common;

use std::time::Duration;

use common::*;
use ovn_testlab::{Db, Lab, ServerOptions};
use ovsdb::{Client, Error, TlsFiles};

fn tls(files: &ovn_testlab::SslFiles) -> TlsFiles {
    TlsFiles {
        private_key: files.private_key.clone(),
        certificate: files.certificate.clone(),
        ca_cert: files.ca_cert.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssl_remote_with_client_certificate() {
    let mut lab = Lab::new().unwrap();
    let pki = lab.make_pki().unwrap();
    let nb = lab
        .start_server(ServerOptions {
            ssl: Some(pki.server.clone()),
            tcp: true,
            ..ServerOptions::new(Db::Northbound)
        })
        .unwrap();
    let unix = lab.server(nb).unix_remote();
    lab.nbctl(&unix, &["ls-add", "sw0"]).unwrap();

    let mut config = nb_config(vec![lab.server(nb).ssl_remote().unwrap()]);
    config.tls = Some(tls(&pki.client));
    let client = Client::connect(config).await.unwrap();
    wait_until(&client, "sw0 over ssl", |r| {
        r.table("Logical_Switch")
            .is_some_and(|t| t.by_name("sw0").count() == 1)
    })
    .await;
    lab.nbctl(&unix, &["ls-add", "sw1"]).unwrap();
    wait_until(&client, "sw1 over ssl", |r| {
        r.table("Logical_Switch")
            .is_some_and(|t| t.by_name("sw1").count() == 1)
    })
    .await;
    client
        .transact(guarded_lb_insert("lb-over-ssl"))
        .await
        .unwrap();

    // Plain TCP on the same server works too.
    let tcp = Client::connect(nb_config(vec![lab.server(nb).tcp_remote().unwrap()]))
        .await
        .unwrap();
    wait_until(&tcp, "lb over tcp", |r| {
        r.table("Load_Balancer")
            .is_some_and(|t| t.by_name("lb-over-ssl").count() == 1)
    })
    .await;

    // A CA that did not sign the server's certificate: no connection.
    let other_lab = Lab::new().unwrap();
    let other = other_lab.make_pki().unwrap();
    let mut config = nb_config(vec![lab.server(nb).ssl_remote().unwrap()]);
    config.tls = Some(tls(&other.client));
    config.request_wait = Duration::from_millis(500);
    let err = Client::connect(config)
        .await
        .err()
        .expect("untrusted server");
    assert!(
        matches!(&err, Error::NotConnected { last_failure, .. } if last_failure.contains("TLS")),
        "{err}"
    );

    // An ssl remote without TLS files is a configuration error.
    let err = Client::connect(nb_config(vec![lab.server(nb).ssl_remote().unwrap()]))
        .await
        .err()
        .expect("no TLS files");
    assert!(matches!(err, Error::Tls(_)), "{err}");
}
