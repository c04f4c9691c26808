//! The conformance suite every backend must pass: the same assertions against any
//! [`ObjectStore`]. Backends call [`run_all`] from their own tests with a fresh, empty store.

use kmip::model::{
    Attribute, Attributes, KeyBlock, KeyMaterial, KeyValue, Name, Object, PlainKeyValue,
    SymmetricKey,
};
use kmip::{CryptographicAlgorithm, KeyFormatType, NameType, ObjectType, State};

use crate::{LocateQuery, ObjectStore, StoreError, StoredObject};

/// A symmetric key object with a name equal to its uid, for tests.
pub fn sample(uid: &str, owner: &str, tags: &[&str]) -> StoredObject {
    let mut attributes = Attributes(vec![
        Attribute::CryptographicAlgorithm(CryptographicAlgorithm::AES),
        Attribute::CryptographicLength(256),
        Attribute::Name(Name {
            name_value: uid.to_owned(),
            name_type: NameType::UninterpretedTextString,
        }),
        Attribute::ObjectGroup("group-a".into()),
    ]);
    let mut tags: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
    tags.sort();
    attributes.set_user_tags(&tags);
    StoredObject {
        uid: uid.to_owned(),
        object_type: ObjectType::SymmetricKey,
        object: Some(Object::SymmetricKey(SymmetricKey {
            key_block: KeyBlock {
                key_format_type: KeyFormatType::Raw,
                key_compression_type: None,
                key_value: Some(KeyValue::Plain(PlainKeyValue {
                    key_material: KeyMaterial::Bytes(vec![7; 32]),
                    attributes: None,
                    attribute: vec![],
                })),
                cryptographic_algorithm: Some(CryptographicAlgorithm::AES),
                cryptographic_length: Some(256),
                key_wrapping_data: None,
            },
        })),
        attributes,
        state: State::PreActive,
        owner: owner.to_owned(),
        tags,
        revision: 0,
        schedules: Default::default(),
    }
}

/// Creates `object` and returns it as stored (with its revision).
async fn created(store: &dyn ObjectStore, object: StoredObject) -> StoredObject {
    let uid = object.uid.clone();
    store.create(object).await.expect("create");
    store
        .get(&uid)
        .await
        .expect("get")
        .expect("created object is there")
}

/// Runs every check; panics with a message naming the failed one.
pub async fn run_all(store: &dyn ObjectStore) {
    store.clear().await.expect("clear");
    create_and_get(store).await;
    duplicate_create(store).await;
    update_replaces_everything(store).await;
    update_missing(store).await;
    concurrent_update_conflicts(store).await;
    destroyed_keeps_metadata(store).await;
    locate_filters(store).await;
    locate_paging(store).await;
    delete_removes(store).await;
    grants(store).await;
    concurrent_writes(store).await;
    clear_empties(store).await;
    store.health().await.expect("health");
}

async fn create_and_get(store: &dyn ObjectStore) {
    let mut o = sample("c1", "alice", &["blue", "red"]);
    store.create(o.clone()).await.expect("create");
    o.revision = 1;
    assert_eq!(
        store.get("c1").await.expect("get"),
        Some(o),
        "get returns what create stored, at revision 1"
    );
    assert_eq!(store.get("absent").await.expect("get absent"), None);
}

async fn duplicate_create(store: &dyn ObjectStore) {
    let o = sample("dup", "alice", &[]);
    store.create(o.clone()).await.expect("first create");
    let err = store.create(o).await.expect_err("second create must fail");
    assert!(
        matches!(err, StoreError::AlreadyExists { .. }),
        "duplicate create: {err:?}"
    );
}

async fn update_replaces_everything(store: &dyn ObjectStore) {
    let mut o = created(store, sample("u1", "alice", &["old"])).await;
    o.state = State::Active;
    o.tags = vec!["new".into()];
    o.attributes.set(Attribute::State(State::Active));
    store.update(o.clone()).await.expect("update");
    o.revision += 1;
    assert_eq!(
        store.get("u1").await.expect("get"),
        Some(o),
        "update replaces and bumps the revision"
    );
    let q = LocateQuery {
        tags: vec!["old".into()],
        ..LocateQuery::default()
    };
    assert!(
        !store
            .locate(&q)
            .await
            .expect("locate")
            .contains(&"u1".to_owned()),
        "old tag gone"
    );
}

async fn update_missing(store: &dyn ObjectStore) {
    let err = store
        .update(sample("never", "alice", &[]))
        .await
        .expect_err("update of a missing object");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

async fn concurrent_update_conflicts(store: &dyn ObjectStore) {
    let first = created(store, sample("cf", "alice", &[])).await;
    let mut second = first.clone();
    let mut winner = first;
    winner
        .attributes
        .set(Attribute::ObjectGroup("winner".into()));
    store.update(winner).await.expect("first update");
    second
        .attributes
        .set(Attribute::ObjectGroup("loser".into()));
    let err = store
        .update(second)
        .await
        .expect_err("an update from a stale read must be refused");
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let now = store.get("cf").await.expect("get").expect("present");
    assert!(
        now.attributes.object_groups().any(|g| g == "winner"),
        "the first update is kept"
    );
}

async fn destroyed_keeps_metadata(store: &dyn ObjectStore) {
    let mut o = created(store, sample("d1", "alice", &[])).await;
    o.object = None;
    o.state = State::Destroyed;
    store.update(o.clone()).await.expect("update");
    let back = store.get("d1").await.expect("get").expect("present");
    assert!(back.object.is_none(), "material gone");
    assert_eq!(back.attributes, o.attributes, "metadata kept");
    let q = LocateQuery {
        uid: Some("d1".into()),
        ..LocateQuery::default()
    };
    assert!(
        store.locate(&q).await.expect("locate").is_empty(),
        "destroyed objects are not located by default"
    );
    let q = LocateQuery {
        uid: Some("d1".into()),
        include_destroyed: true,
        ..LocateQuery::default()
    };
    assert_eq!(
        store.locate(&q).await.expect("locate"),
        ["d1"],
        "unless asked for"
    );
}

async fn locate_filters(store: &dyn ObjectStore) {
    store.clear().await.expect("clear");
    let mut a = sample("la", "alice", &["x", "y"]);
    a.state = State::Active;
    store.create(a).await.expect("create");
    store
        .create(sample("lb", "alice", &["x"]))
        .await
        .expect("create");
    store
        .create(sample("lc", "bob", &["x", "y"]))
        .await
        .expect("create");
    let run = |q: LocateQuery| async move {
        let mut v = store.locate(&q).await.expect("locate");
        v.sort();
        v
    };
    assert_eq!(run(LocateQuery::default()).await, ["la", "lb", "lc"]);
    assert_eq!(
        run(LocateQuery {
            owner: Some("alice".into()),
            ..Default::default()
        })
        .await,
        ["la", "lb"]
    );
    assert_eq!(
        run(LocateQuery {
            tags: vec!["x".into(), "y".into()],
            ..Default::default()
        })
        .await,
        ["la", "lc"]
    );
    assert_eq!(
        run(LocateQuery {
            state: Some(State::Active),
            ..Default::default()
        })
        .await,
        ["la"]
    );
    assert_eq!(
        run(LocateQuery {
            names: vec!["lb".into()],
            ..Default::default()
        })
        .await,
        ["lb"]
    );
    assert_eq!(
        run(LocateQuery {
            object_groups: vec!["group-a".into()],
            ..Default::default()
        })
        .await
        .len(),
        3
    );
    assert!(
        run(LocateQuery {
            object_groups: vec!["nope".into()],
            ..Default::default()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        run(LocateQuery {
            length: Some(256),
            ..Default::default()
        })
        .await
        .len(),
        3
    );
    assert!(
        run(LocateQuery {
            length: Some(128),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    assert_eq!(
        run(LocateQuery {
            object_type: Some(ObjectType::SymmetricKey),
            algorithm: Some(CryptographicAlgorithm::AES),
            ..Default::default()
        })
        .await
        .len(),
        3
    );
    assert!(
        run(LocateQuery {
            object_type: Some(ObjectType::SecretData),
            ..Default::default()
        })
        .await
        .is_empty()
    );
    let equal = |a: Attribute| LocateQuery {
        equal: vec![a],
        ..Default::default()
    };
    assert_eq!(
        run(equal(Attribute::CryptographicLength(256))).await.len(),
        3,
        "equal attribute"
    );
    assert!(
        run(equal(Attribute::Description("absent".into())))
            .await
            .is_empty()
    );
    assert!(
        run(LocateQuery {
            usage_mask: Some(0x4),
            ..Default::default()
        })
        .await
        .is_empty(),
        "no object has a usage mask with Encrypt"
    );
}

async fn locate_paging(store: &dyn ObjectStore) {
    store.clear().await.expect("clear");
    for i in 0..5 {
        store
            .create(sample(&format!("p{i}"), "alice", &["page"]))
            .await
            .expect("create");
    }
    let q = LocateQuery {
        tags: vec!["page".into()],
        offset: 1,
        limit: Some(2),
        ..Default::default()
    };
    assert_eq!(
        store.locate(&q).await.expect("locate"),
        ["p1", "p2"],
        "creation order, offset, limit"
    );
}

async fn delete_removes(store: &dyn ObjectStore) {
    store
        .create(sample("del", "alice", &["gone"]))
        .await
        .expect("create");
    store.delete("del").await.expect("delete");
    assert_eq!(store.get("del").await.expect("get"), None);
    let q = LocateQuery {
        tags: vec!["gone".into()],
        ..Default::default()
    };
    assert!(store.locate(&q).await.expect("locate").is_empty());
    assert!(matches!(
        store.delete("del").await,
        Err(StoreError::NotFound { .. })
    ));
}

fn ops(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// Rights granted per user and per operation, to `*` too; what Locate shows each user; and
/// that deleting an object or clearing the store takes its grants with it.
async fn grants(store: &dyn ObjectStore) {
    store.clear().await.expect("clear");
    let mut shared = sample("g1", "alice", &["gt"]);
    shared.state = State::Active;
    store.create(shared).await.expect("create");
    store
        .create(sample("g2", "alice", &["gt"]))
        .await
        .expect("create");
    store
        .create(sample("g3", "bob", &["gt"]))
        .await
        .expect("create");
    assert!(store.grants("g1").await.expect("grants").is_empty());
    assert!(store.rights("g1", "bob").await.expect("rights").is_empty());

    store
        .grant("g1", "bob", &ops(&["encrypt", "decrypt"]))
        .await
        .expect("grant");
    // Granting again changes nothing.
    store
        .grant("g1", "bob", &ops(&["encrypt"]))
        .await
        .expect("grant again");
    store
        .grant("g2", crate::EVERY_USER, &ops(&["get"]))
        .await
        .expect("grant to *");
    store
        .grant("g1", "carol", &ops(&["get"]))
        .await
        .expect("grant");
    assert_eq!(
        store.grants("g1").await.expect("grants"),
        [
            crate::Grant {
                user: "bob".into(),
                operations: ops(&["decrypt", "encrypt"])
            },
            crate::Grant {
                user: "carol".into(),
                operations: ops(&["get"])
            },
        ]
    );
    assert_eq!(
        store.rights("g1", "bob").await.expect("rights"),
        ops(&["decrypt", "encrypt"])
    );
    assert!(store.rights("g1", "dave").await.expect("rights").is_empty());
    // A grant to `*` is everyone's, owners of other objects included.
    assert_eq!(
        store.rights("g2", "dave").await.expect("rights"),
        ops(&["get"])
    );
    store
        .grant("g2", "bob", &ops(&["get", "export"]))
        .await
        .expect("grant");
    assert_eq!(
        store.rights("g2", "bob").await.expect("rights"),
        ops(&["export", "get"])
    );

    let obtained = store.obtained("bob").await.expect("obtained");
    assert_eq!(
        obtained,
        [
            crate::Obtained {
                uid: "g1".into(),
                owner: "alice".into(),
                state: State::Active,
                operations: ops(&["decrypt", "encrypt"]),
            },
            crate::Obtained {
                uid: "g2".into(),
                owner: "alice".into(),
                state: State::PreActive,
                operations: ops(&["export", "get"]),
            },
        ],
        "bob's own object is not among those obtained"
    );

    let visible = |user: &str| LocateQuery {
        visible_to: Some(user.into()),
        tags: vec!["gt".into()],
        ..Default::default()
    };
    let mut seen = store.locate(&visible("bob")).await.expect("locate");
    seen.sort();
    assert_eq!(seen, ["g1", "g2", "g3"]);
    assert_eq!(
        store.locate(&visible("dave")).await.expect("locate"),
        ["g2"]
    );
    let mut owner = store.locate(&visible("alice")).await.expect("locate");
    owner.sort();
    assert_eq!(owner, ["g1", "g2"]);

    store
        .revoke_grant("g1", "bob", &ops(&["encrypt", "never-granted"]))
        .await
        .expect("revoke");
    assert_eq!(
        store.rights("g1", "bob").await.expect("rights"),
        ops(&["decrypt"])
    );
    store
        .revoke_grant("g1", "bob", &ops(&["decrypt"]))
        .await
        .expect("revoke");
    assert!(store.rights("g1", "bob").await.expect("rights").is_empty());
    assert_eq!(
        store.locate(&visible("carol")).await.expect("locate").len(),
        2
    );

    store.delete("g2").await.expect("delete");
    assert!(
        store.grants("g2").await.expect("grants").is_empty(),
        "deleted with its object"
    );
    // A new object under the same identifier starts without rights.
    store
        .create(sample("g2", "alice", &[]))
        .await
        .expect("create");
    assert!(store.rights("g2", "dave").await.expect("rights").is_empty());
    store.clear().await.expect("clear");
    assert!(
        store.grants("g1").await.expect("grants").is_empty(),
        "cleared"
    );
}

async fn concurrent_writes(store: &dyn ObjectStore) {
    let writes = (0..64).map(|i| store.create(sample(&format!("cc{i}"), "carol", &[])));
    for r in futures_join_all(writes).await {
        r.expect("concurrent create");
    }
    let q = LocateQuery {
        owner: Some("carol".into()),
        ..Default::default()
    };
    assert_eq!(
        store.locate(&q).await.expect("locate").len(),
        64,
        "every concurrent create is stored"
    );
}

async fn clear_empties(store: &dyn ObjectStore) {
    store.clear().await.expect("clear");
    assert!(
        store
            .locate(&LocateQuery::default())
            .await
            .expect("locate")
            .is_empty()
    );
}

/// Polls futures concurrently, without a dependency on the `futures` crate.
async fn futures_join_all<F: std::future::Future>(
    futures: impl IntoIterator<Item = F>,
) -> Vec<F::Output> {
    let mut set = Vec::new();
    for f in futures {
        set.push(Box::pin(f));
    }
    let mut out: Vec<Option<F::Output>> = set.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (i, f) in set.iter_mut().enumerate() {
            if out[i].is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => out[i] = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().flatten().collect()
}
