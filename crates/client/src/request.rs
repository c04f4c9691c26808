//! Typed requests: each request payload knows its operation and the type of its answer, so
//! [`KmsClient::call`](crate::KmsClient::call) returns that type and a caller never matches on
//! [`ResponsePayload`].
//!
//! Most operations have a payload structure of their own, which is the request. The operations
//! that share one ([`UidRequest`] for Activate, Destroy..., [`NewAttributeRequest`] for
//! AddAttribute and SetAttribute, [`Get`] for Get and Export) are told apart by the wrappers of
//! [`op`]; `Get` alone means Get.

use kmip::Operation;
use kmip::model::*;

use crate::ClientError;

/// A request payload of one operation, whose answer is a `Self::Response`.
pub trait Request: Sized {
    /// The payload the KMS answers with.
    type Response;
    /// The operation this request performs.
    const OPERATION: Operation;

    /// The payload to send.
    fn into_payload(self) -> RequestPayload;

    /// The typed answer in `payload`; an answer to another operation is
    /// [`ClientError::UnexpectedResponse`].
    fn from_response(payload: ResponsePayload) -> Result<Self::Response, ClientError>;
}

/// Wrappers naming the operation of the payload structures that several operations share.
pub mod op {
    use kmip::model::{Attribute, Get, NewAttributeRequest, UidRequest, UniqueIdentifier};

    macro_rules! uid_ops {
        ($( $(#[$m:meta])* $name:ident ),* $(,)?) => { $(
            $(#[$m])*
            #[derive(Clone, Debug, PartialEq)]
            pub struct $name(pub UidRequest);

            impl $name {
                /// This operation on the object `unique_identifier`.
                pub fn new(unique_identifier: impl Into<UniqueIdentifier>) -> $name {
                    $name(UidRequest::new(unique_identifier))
                }
            }

            impl From<UidRequest> for $name {
                fn from(r: UidRequest) -> $name {
                    $name(r)
                }
            }

            impl From<$name> for UidRequest {
                fn from(r: $name) -> UidRequest {
                    r.0
                }
            }
        )* };
    }

    uid_ops! {
        /// Activate: the object becomes Active.
        Activate,
        /// Archive.
        Archive,
        /// Recover an archived object.
        Recover,
        /// GetAttributeList: the names of the object's attributes.
        GetAttributeList,
    }

    macro_rules! attribute_ops {
        ($( $(#[$m:meta])* $name:ident ),* $(,)?) => { $(
            $(#[$m])*
            #[derive(Clone, Debug, PartialEq)]
            pub struct $name(pub NewAttributeRequest);

            impl $name {
                /// This operation with `attribute` on the object `unique_identifier`.
                pub fn new(unique_identifier: impl Into<UniqueIdentifier>, attribute: Attribute) -> $name {
                    $name(NewAttributeRequest::new(unique_identifier, attribute))
                }
            }

            impl From<NewAttributeRequest> for $name {
                fn from(r: NewAttributeRequest) -> $name {
                    $name(r)
                }
            }

            impl From<$name> for NewAttributeRequest {
                fn from(r: $name) -> NewAttributeRequest {
                    r.0
                }
            }
        )* };
    }

    attribute_ops! {
        /// AddAttribute: one more instance of the attribute.
        AddAttribute,
        /// SetAttribute: the attribute's only value.
        SetAttribute,
    }

    /// Export: the object with its attributes.
    #[derive(Clone, Debug, PartialEq)]
    pub struct Export(pub Get);

    impl Export {
        /// An Export of `unique_identifier` in its stored format, unwrapped.
        pub fn new(unique_identifier: impl Into<UniqueIdentifier>) -> Export {
            Export(Get::new(unique_identifier))
        }
    }

    impl From<Get> for Export {
        fn from(r: Get) -> Export {
            Export(r)
        }
    }

    impl From<Export> for Get {
        fn from(r: Export) -> Get {
            r.0
        }
    }
}

/// Implements [`Request`] for each `request type => Operation / response type`, and checks
/// that the list covers every typed variant of [`RequestPayload`].
macro_rules! requests {
    ($( $req:ty => $op:ident / $resp:ty ),* $(,)?) => {
        $(
            impl Request for $req {
                type Response = $resp;
                const OPERATION: Operation = Operation::$op;

                fn into_payload(self) -> RequestPayload {
                    RequestPayload::$op(self.into())
                }

                fn from_response(payload: ResponsePayload) -> Result<$resp, ClientError> {
                    match payload {
                        ResponsePayload::$op(r) => Ok(r),
                        other => Err(ClientError::UnexpectedResponse {
                            expected: Operation::$op,
                            received: other.operation(),
                        }),
                    }
                }
            }
        )*

        /// The payload rebuilt through its typed request. The match is exhaustive: an
        /// operation added to `RequestPayload` but not to this list fails to compile here.
        #[cfg(test)]
        fn through_typed_request(payload: RequestPayload) -> RequestPayload {
            match payload {
                $( RequestPayload::$op(r) => <$req>::from(r).into_payload(), )*
                RequestPayload::Other(op, tree) => RequestPayload::Other(op, tree),
            }
        }
    };
}

requests! {
    Create => Create / CreateResponse,
    CreateKeyPair => CreateKeyPair / CreateKeyPairResponse,
    Register => Register / UidResponse,
    ReKey => ReKey / UidResponse,
    ReKeyKeyPair => ReKeyKeyPair / CreateKeyPairResponse,
    DeriveKey => DeriveKey / UidResponse,
    Certify => Certify / UidResponse,
    ReCertify => ReCertify / UidResponse,
    Locate => Locate / LocateResponse,
    Check => Check / CheckResponse,
    Get => Get / GetResponse,
    GetAttributes => GetAttributes / GetAttributesResponse,
    op::GetAttributeList => GetAttributeList / GetAttributeListResponse,
    op::AddAttribute => AddAttribute / AttributeResponse,
    op::SetAttribute => SetAttribute / AttributeResponse,
    ModifyAttribute => ModifyAttribute / AttributeResponse,
    DeleteAttribute => DeleteAttribute / AttributeResponse,
    op::Activate => Activate / UidResponse,
    Revoke => Revoke / UidResponse,
    Destroy => Destroy / UidResponse,
    op::Archive => Archive / UidResponse,
    op::Recover => Recover / UidResponse,
    Query => Query / QueryResponse,
    DiscoverVersions => DiscoverVersions / DiscoverVersions,
    Encrypt => Encrypt / EncryptResponse,
    Decrypt => Decrypt / DecryptResponse,
    Sign => Sign / SignResponse,
    SignatureVerify => SignatureVerify / SignatureVerifyResponse,
    Mac => MAC / MacResponse,
    MacVerify => MACVerify / MacVerifyResponse,
    RngRetrieve => RNGRetrieve / DataResponse,
    RngSeed => RNGSeed / RngSeedResponse,
    Hash => Hash / HashResponse,
    Import => Import / UidResponse,
    op::Export => Export / ExportResponse,
    Validate => Validate / ValidateResponse,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail loudly on purpose")]

    use kmip::{CryptographicAlgorithm, Ttlv, Value};

    use super::*;

    #[test]
    fn each_request_carries_its_operation() {
        let create = Create::symmetric_key(CryptographicAlgorithm::AES, 256);
        assert_eq!(
            create.clone().into_payload(),
            RequestPayload::Create(create)
        );
        assert_eq!(<Create as Request>::OPERATION, Operation::Create);
        let activate = op::Activate::new("k").into_payload();
        assert_eq!(activate.operation(), Operation::Activate);
        assert_eq!(activate, RequestPayload::Activate(UidRequest::new("k")));
        assert_eq!(
            op::Export::new("k").into_payload().operation(),
            Operation::Export
        );
        assert_eq!(Get::new("k").into_payload().operation(), Operation::Get);
        assert_eq!(
            op::SetAttribute::new("k", Attribute::ObjectGroup("g".into()))
                .into_payload()
                .operation(),
            Operation::SetAttribute
        );
        for payload in [
            RequestPayload::Destroy(Destroy::new("k")),
            RequestPayload::AddAttribute(NewAttributeRequest::new(
                "k",
                Attribute::Comment("c".into()),
            )),
            RequestPayload::RNGRetrieve(RngRetrieve { data_length: 4 }),
            RequestPayload::Other(
                Operation::Poll,
                Ttlv::new(kmip::Tag::REQUEST_PAYLOAD, Value::Structure(vec![])),
            ),
        ] {
            assert_eq!(through_typed_request(payload.clone()), payload);
        }
    }

    #[test]
    fn the_expected_answer_is_returned() {
        let answer = ResponsePayload::Activate(UidResponse {
            unique_identifier: "k".into(),
        });
        let r = op::Activate::from_response(answer).unwrap();
        assert_eq!(r.unique_identifier, "k".into());
    }

    #[test]
    fn another_answer_is_an_error_naming_both_operations() {
        // Destroy and Activate answer the same structure: the variant still decides.
        let answer = ResponsePayload::Destroy(UidResponse {
            unique_identifier: "k".into(),
        });
        let err = op::Activate::from_response(answer).unwrap_err();
        assert!(
            matches!(
                err,
                ClientError::UnexpectedResponse {
                    expected: Operation::Activate,
                    received: Operation::Destroy
                }
            ),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            "unexpected answer from the KMS: expected a response to Activate, got a response to Destroy"
        );
        let other = ResponsePayload::Other(
            Operation::Poll,
            Ttlv::new(kmip::Tag::RESPONSE_PAYLOAD, Value::Structure(vec![])),
        );
        assert!(matches!(
            Encrypt::from_response(other),
            Err(ClientError::UnexpectedResponse {
                expected: Operation::Encrypt,
                received: Operation::Poll
            })
        ));
    }
}
