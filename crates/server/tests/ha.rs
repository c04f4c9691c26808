//! High availability: two servers on one PostgreSQL database and on one MariaDB database give
//! the same answers as one. Concurrent creates, reads, attribute changes, revokes and destroys go
//! through both servers, and every answer is checked against one model of the expected state.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail loudly on purpose"
)]

mod common;

use std::collections::BTreeSet;

use common::TestServer;
use kmip::model::*;
use kmip::{CryptographicAlgorithm, ObjectType, RevocationReasonCode, State};
use kms_client::KmsClient;
use kms_server::config::{Database, Secret};
use kms_store::sql::testing::TestDatabase;

const WORKERS: usize = 6;
const ROUNDS: usize = 5;

fn uid(s: &str) -> Option<UniqueIdentifier> {
    Some(s.into())
}

async fn state_of(client: &KmsClient, id: &str) -> (Option<State>, BTreeSet<String>) {
    let ResponsePayload::GetAttributes(r) = client
        .send(RequestPayload::GetAttributes(GetAttributes {
            unique_identifier: uid(id),
            attribute_reference: vec![],
        }))
        .await
        .unwrap()
    else {
        panic!("GetAttributes")
    };
    (
        r.attributes.state(),
        r.attributes.object_groups().map(str::to_owned).collect(),
    )
}

/// One worker: its own keys, alternating servers at every step; returns the model of its keys
/// and the groups it added to the shared object.
async fn worker(
    w: usize,
    clients: [KmsClient; 2],
    shared: String,
) -> (Vec<(String, State)>, Vec<String>) {
    let mut model = Vec::new();
    let mut groups = Vec::new();
    for i in 0..ROUNDS {
        let (c, other) = (&clients[(w + i) % 2], &clients[(w + i + 1) % 2]);
        let id = format!("ha-{w}-{i}");
        let attributes = Attributes(vec![
            Attribute::CryptographicAlgorithm(CryptographicAlgorithm::AES),
            Attribute::CryptographicLength(256),
            Attribute::UniqueIdentifier(id.clone().into()),
        ]);
        c.send(RequestPayload::Create(Create {
            object_type: ObjectType::SymmetricKey,
            attributes,
            protection_storage_masks: None,
        }))
        .await
        .unwrap();
        // Read-your-writes across servers.
        assert_eq!(state_of(other, &id).await.0, Some(State::PreActive));
        other
            .send(RequestPayload::Activate(UidRequest {
                unique_identifier: uid(&id),
            }))
            .await
            .unwrap();
        let ResponsePayload::Encrypt(e) = c
            .send(RequestPayload::Encrypt(Encrypt::new(
                uid(&id),
                id.as_bytes().to_vec(),
            )))
            .await
            .unwrap()
        else {
            panic!()
        };
        let ResponsePayload::Decrypt(d) = other
            .send(RequestPayload::Decrypt(Decrypt::of(uid(&id), &e)))
            .await
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(d.data.as_deref(), Some(id.as_bytes()));
        // Every worker adds a group to the same object through alternating servers: none may be
        // lost to a concurrent update.
        let group = format!("g-{w}-{i}");
        c.send(RequestPayload::AddAttribute(NewAttributeRequest {
            unique_identifier: uid(&shared),
            new_attribute: AttributeHolder(Attribute::ObjectGroup(group.clone())),
        }))
        .await
        .unwrap();
        groups.push(group);
        let mut state = State::Active;
        if i % 2 == 0 {
            other
                .send(RequestPayload::Revoke(Revoke {
                    unique_identifier: uid(&id),
                    revocation_reason: RevocationReason {
                        revocation_reason_code: RevocationReasonCode::Superseded,
                        revocation_message: None,
                    },
                    compromise_occurrence_date: None,
                }))
                .await
                .unwrap();
            c.send(RequestPayload::Destroy(UidRequest {
                unique_identifier: uid(&id),
            }))
            .await
            .unwrap();
            state = State::Destroyed;
        }
        model.push((id, state));
    }
    (model, groups)
}

async fn two_servers_one_database(db: TestDatabase) {
    let database = match db.backend {
        "postgresql" => Database::Postgresql {
            url: Secret(db.url.clone()),
            pool_size: 8,
        },
        _ => Database::Mysql {
            url: Secret(db.url.clone()),
            pool_size: 8,
        },
    };
    let a = TestServer::builder()
        .database(database.clone())
        .start()
        .await;
    let b = TestServer::builder().database(database).start().await;
    let clients = [
        KmsClient::with_url(&a.url).unwrap(),
        KmsClient::with_url(&b.url).unwrap(),
    ];
    let shared = "ha-shared".to_owned();
    let attributes = Attributes(vec![
        Attribute::CryptographicAlgorithm(CryptographicAlgorithm::AES),
        Attribute::CryptographicLength(128),
        Attribute::UniqueIdentifier(shared.clone().into()),
    ]);
    clients[0]
        .send(RequestPayload::Create(Create {
            object_type: ObjectType::SymmetricKey,
            attributes,
            protection_storage_masks: None,
        }))
        .await
        .unwrap();

    let tasks: Vec<_> = (0..WORKERS)
        .map(|w| tokio::spawn(worker(w, clients.clone(), shared.clone())))
        .collect();
    let mut model = Vec::new();
    let mut expected_groups = BTreeSet::new();
    for t in tasks {
        let (m, g) = t.await.unwrap();
        model.extend(m);
        expected_groups.extend(g);
    }
    // Both servers agree with the model on every object.
    for client in &clients {
        for (id, state) in &model {
            assert_eq!(state_of(client, id).await.0, Some(*state), "{id}");
        }
        let (_, groups) = state_of(client, &shared).await;
        assert_eq!(
            groups, expected_groups,
            "no concurrent attribute change is lost"
        );
        let ResponsePayload::Locate(l) = client
            .send(RequestPayload::Locate(Locate {
                maximum_items: None,
                offset_items: None,
                storage_status_mask: None,
                object_group_member: None,
                attributes: Some(Attributes(vec![Attribute::State(State::Active)])),
            }))
            .await
            .unwrap()
        else {
            panic!()
        };
        let active = model.iter().filter(|(_, s)| *s == State::Active).count();
        assert_eq!(
            l.unique_identifier.len(),
            active,
            "Locate sees the same active keys"
        );
    }
    a.server.stop().await;
    b.server.stop().await;
    db.drop_now().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_postgresql() {
    two_servers_one_database(TestDatabase::postgres().await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_mariadb() {
    two_servers_one_database(TestDatabase::mysql().await.unwrap()).await;
}
