//! `RequestMessage` and `ResponseMessage`: headers, batch items and the payload of each
//! operation, chosen by the item's `Operation`.

use super::*;
use crate::generated::{
    AttestationType, BatchErrorContinuationOption, Operation, ResultReason, ResultStatus,
};

macro_rules! payloads {
    ($( $op:ident => $req:ident / $resp:ident ),* $(,)?) => {
        /// The request payload of each operation this model types.
        #[derive(Clone, Debug, PartialEq)]
        pub enum RequestPayload {
            $( $op($req), )*
            /// An operation this model does not type, kept as items.
            Other(Operation, Ttlv),
        }

        /// The response payload of each operation this model types.
        #[derive(Clone, Debug, PartialEq)]
        pub enum ResponsePayload {
            $( $op($resp), )*
            Other(Operation, Ttlv),
        }

        impl RequestPayload {
            pub fn operation(&self) -> Operation {
                match self {
                    $( RequestPayload::$op(_) => Operation::$op, )*
                    RequestPayload::Other(op, _) => *op,
                }
            }

            pub fn decode(operation: Operation, item: &Ttlv) -> Result<Self, Error> {
                Ok(match operation {
                    $( Operation::$op => RequestPayload::$op($req::from_ttlv(item)?), )*
                    other => RequestPayload::Other(other, item.clone()),
                })
            }

            pub fn encode(&self) -> Ttlv {
                match self {
                    $( RequestPayload::$op(p) => p.to_ttlv(Tag::REQUEST_PAYLOAD), )*
                    RequestPayload::Other(_, t) => t.to_ttlv(Tag::REQUEST_PAYLOAD),
                }
            }
        }

        impl ResponsePayload {
            pub fn operation(&self) -> Operation {
                match self {
                    $( ResponsePayload::$op(_) => Operation::$op, )*
                    ResponsePayload::Other(op, _) => *op,
                }
            }

            pub fn decode(operation: Operation, item: &Ttlv) -> Result<Self, Error> {
                Ok(match operation {
                    $( Operation::$op => ResponsePayload::$op($resp::from_ttlv(item)?), )*
                    other => ResponsePayload::Other(other, item.clone()),
                })
            }

            pub fn encode(&self) -> Ttlv {
                match self {
                    $( ResponsePayload::$op(p) => p.to_ttlv(Tag::RESPONSE_PAYLOAD), )*
                    ResponsePayload::Other(_, t) => t.to_ttlv(Tag::RESPONSE_PAYLOAD),
                }
            }

            /// [`ResponsePayload::encode`], moving an already encoded payload (`Other`)
            /// rather than copying it.
            pub fn into_encoded(self) -> Ttlv {
                match self {
                    ResponsePayload::Other(_, mut t) => {
                        t.tag = Tag::RESPONSE_PAYLOAD;
                        t
                    }
                    typed => typed.encode(),
                }
            }

            /// The typed payload of an operation this model types, decoded from `Other`
            /// when it was kept encoded.
            pub fn into_typed(self) -> Result<Self, Error> {
                match self {
                    ResponsePayload::Other(op, t) => Self::decode(op, &t),
                    typed => Ok(typed),
                }
            }
        }
    };
}

payloads! {
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
    GetAttributeList => UidRequest / GetAttributeListResponse,
    AddAttribute => NewAttributeRequest / AttributeResponse,
    SetAttribute => NewAttributeRequest / AttributeResponse,
    ModifyAttribute => ModifyAttribute / AttributeResponse,
    DeleteAttribute => DeleteAttribute / AttributeResponse,
    Activate => UidRequest / UidResponse,
    Revoke => Revoke / UidResponse,
    Destroy => Destroy / UidResponse,
    Archive => UidRequest / UidResponse,
    Recover => UidRequest / UidResponse,
    Query => Query / QueryResponse,
    DiscoverVersions => DiscoverVersions / DiscoverVersions,
    Encrypt => Encrypt / EncryptResponse,
    Decrypt => Decrypt / DecryptResponse,
    Sign => Sign / SignResponse,
    SignatureVerify => SignatureVerify / SignatureVerifyResponse,
    MAC => Mac / MacResponse,
    MACVerify => MacVerify / MacVerifyResponse,
    RNGRetrieve => RngRetrieve / DataResponse,
    RNGSeed => RngSeed / RngSeedResponse,
    Hash => Hash / HashResponse,
    Import => Import / UidResponse,
    Export => Get / ExportResponse,
    Validate => Validate / ValidateResponse,
}

kmip_struct! {
    pub struct RequestHeader {
        pub protocol_version: ProtocolVersion = Tag::PROTOCOL_VERSION,
        pub maximum_response_size: Option<i32> = Tag::MAXIMUM_RESPONSE_SIZE,
        pub client_correlation_value: Option<String> = Tag::CLIENT_CORRELATION_VALUE,
        pub server_correlation_value: Option<String> = Tag::SERVER_CORRELATION_VALUE,
        pub asynchronous_indicator: Option<bool> = Tag::ASYNCHRONOUS_INDICATOR,
        pub attestation_capable_indicator: Option<bool> = Tag::ATTESTATION_CAPABLE_INDICATOR,
        pub attestation_type: Vec<AttestationType> = Tag::ATTESTATION_TYPE,
        pub authentication: Option<Ttlv> = Tag::AUTHENTICATION,
        pub batch_error_continuation_option: Option<BatchErrorContinuationOption> = Tag::BATCH_ERROR_CONTINUATION_OPTION,
        pub batch_order_option: Option<bool> = Tag::BATCH_ORDER_OPTION,
        pub time_stamp: Option<DateTime> = Tag::TIME_STAMP,
        pub batch_count: i32 = Tag::BATCH_COUNT,
    }
}

kmip_struct! {
    pub struct ResponseHeader {
        pub protocol_version: ProtocolVersion = Tag::PROTOCOL_VERSION,
        pub time_stamp: DateTime = Tag::TIME_STAMP,
        pub nonce: Option<Ttlv> = Tag::NONCE,
        pub server_hashed_password: Option<Vec<u8>> = Tag::SERVER_HASHED_PASSWORD,
        pub attestation_type: Vec<AttestationType> = Tag::ATTESTATION_TYPE,
        pub client_correlation_value: Option<String> = Tag::CLIENT_CORRELATION_VALUE,
        pub server_correlation_value: Option<String> = Tag::SERVER_CORRELATION_VALUE,
        pub batch_count: i32 = Tag::BATCH_COUNT,
    }
}

impl RequestHeader {
    /// A header for protocol `major.minor` and `batch_count` items, every optional field absent.
    pub fn new(major: i32, minor: i32, batch_count: i32) -> RequestHeader {
        RequestHeader {
            protocol_version: ProtocolVersion {
                protocol_version_major: major,
                protocol_version_minor: minor,
            },
            maximum_response_size: None,
            client_correlation_value: None,
            server_correlation_value: None,
            asynchronous_indicator: None,
            attestation_capable_indicator: None,
            attestation_type: vec![],
            authentication: None,
            batch_error_continuation_option: None,
            batch_order_option: None,
            time_stamp: None,
            batch_count,
        }
    }
}

impl ResponseHeader {
    /// A header for protocol `major.minor`, stamped `time_stamp`, every optional field absent.
    pub fn new(major: i32, minor: i32, time_stamp: DateTime, batch_count: i32) -> ResponseHeader {
        ResponseHeader {
            protocol_version: ProtocolVersion {
                protocol_version_major: major,
                protocol_version_minor: minor,
            },
            time_stamp,
            nonce: None,
            server_hashed_password: None,
            attestation_type: vec![],
            client_correlation_value: None,
            server_correlation_value: None,
            batch_count,
        }
    }
}

/// One operation of a request.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestBatchItem {
    pub operation: Operation,
    pub ephemeral: Option<bool>,
    pub unique_batch_item_id: Option<Vec<u8>>,
    pub request_payload: RequestPayload,
    pub message_extension: Option<Ttlv>,
}

impl Item for RequestBatchItem {
    fn from_ttlv(item: &Ttlv) -> Result<Self, Error> {
        let mut operation = None;
        let mut ephemeral = None;
        let mut id = None;
        let mut payload = None;
        let mut ext = None;
        for c in item.children()? {
            match c.tag {
                Tag::OPERATION => operation = Some(Operation::from_ttlv(c)?),
                Tag::EPHEMERAL => ephemeral = Some(c.as_bool()?),
                Tag::UNIQUE_BATCH_ITEM_ID => id = Some(c.as_bytes()?.to_vec()),
                Tag::REQUEST_PAYLOAD => payload = Some(c),
                Tag::MESSAGE_EXTENSION => ext = Some(c.clone()),
                other => {
                    return Err(Error::BadValue {
                        tag: item.tag,
                        reason: format!("unexpected {other} in a batch item"),
                    });
                }
            }
        }
        let operation = operation.ok_or(Error::Missing {
            structure: item.tag,
            field: Tag::OPERATION,
        })?;
        let payload = payload.ok_or(Error::Missing {
            structure: item.tag,
            field: Tag::REQUEST_PAYLOAD,
        })?;
        Ok(RequestBatchItem {
            operation,
            ephemeral,
            unique_batch_item_id: id,
            request_payload: RequestPayload::decode(operation, payload)?,
            message_extension: ext,
        })
    }

    fn to_ttlv(&self, tag: Tag) -> Ttlv {
        let mut c = vec![self.operation.to_ttlv(Tag::OPERATION)];
        self.ephemeral.emit(Tag::EPHEMERAL, &mut c);
        self.unique_batch_item_id
            .emit(Tag::UNIQUE_BATCH_ITEM_ID, &mut c);
        c.push(self.request_payload.encode());
        self.message_extension.emit(Tag::MESSAGE_EXTENSION, &mut c);
        Ttlv::structure(tag, c)
    }
}

/// The result of one operation.
#[derive(Clone, Debug, PartialEq)]
pub struct ResponseBatchItem {
    pub operation: Option<Operation>,
    pub unique_batch_item_id: Option<Vec<u8>>,
    pub result_status: ResultStatus,
    pub result_reason: Option<ResultReason>,
    pub result_message: Option<String>,
    pub asynchronous_correlation_value: Option<Vec<u8>>,
    pub response_payload: Option<ResponsePayload>,
    pub message_extension: Option<Ttlv>,
}

impl ResponseBatchItem {
    /// A successful result.
    pub fn success(payload: ResponsePayload, unique_batch_item_id: Option<Vec<u8>>) -> Self {
        ResponseBatchItem {
            operation: Some(payload.operation()),
            unique_batch_item_id,
            result_status: ResultStatus::Success,
            result_reason: None,
            result_message: None,
            asynchronous_correlation_value: None,
            response_payload: Some(payload),
            message_extension: None,
        }
    }

    /// A failed result.
    pub fn failure(
        operation: Option<Operation>,
        unique_batch_item_id: Option<Vec<u8>>,
        reason: ResultReason,
        message: String,
    ) -> Self {
        ResponseBatchItem {
            operation,
            unique_batch_item_id,
            result_status: ResultStatus::OperationFailed,
            result_reason: Some(reason),
            result_message: Some(message),
            asynchronous_correlation_value: None,
            response_payload: None,
            message_extension: None,
        }
    }
}

impl Item for ResponseBatchItem {
    fn from_ttlv(item: &Ttlv) -> Result<Self, Error> {
        let mut operation = None;
        let mut id = None;
        let mut status = None;
        let mut reason = None;
        let mut message = None;
        let mut acv = None;
        let mut payload = None;
        let mut ext = None;
        for c in item.children()? {
            match c.tag {
                Tag::OPERATION => operation = Some(Operation::from_ttlv(c)?),
                Tag::UNIQUE_BATCH_ITEM_ID => id = Some(c.as_bytes()?.to_vec()),
                Tag::RESULT_STATUS => status = Some(ResultStatus::from_ttlv(c)?),
                Tag::RESULT_REASON => reason = Some(ResultReason::from_ttlv(c)?),
                Tag::RESULT_MESSAGE => message = Some(c.as_str()?.to_owned()),
                Tag::ASYNCHRONOUS_CORRELATION_VALUE => acv = Some(c.as_bytes()?.to_vec()),
                Tag::RESPONSE_PAYLOAD => payload = Some(c),
                Tag::MESSAGE_EXTENSION => ext = Some(c.clone()),
                other => {
                    return Err(Error::BadValue {
                        tag: item.tag,
                        reason: format!("unexpected {other} in a batch item"),
                    });
                }
            }
        }
        let result_status = status.ok_or(Error::Missing {
            structure: item.tag,
            field: Tag::RESULT_STATUS,
        })?;
        let response_payload = match (payload, operation) {
            (Some(p), Some(op)) => Some(ResponsePayload::decode(op, p)?),
            (Some(_), None) => {
                return Err(Error::Missing {
                    structure: item.tag,
                    field: Tag::OPERATION,
                });
            }
            (None, _) => None,
        };
        Ok(ResponseBatchItem {
            operation,
            unique_batch_item_id: id,
            result_status,
            result_reason: reason,
            result_message: message,
            asynchronous_correlation_value: acv,
            response_payload,
            message_extension: ext,
        })
    }

    fn to_ttlv(&self, tag: Tag) -> Ttlv {
        let payload = self.response_payload.as_ref().map(ResponsePayload::encode);
        self.with_payload(tag, payload)
    }
}

impl ResponseBatchItem {
    /// The item as TTLV with `payload` as its (encoded) response payload.
    fn with_payload(&self, tag: Tag, payload: Option<Ttlv>) -> Ttlv {
        let mut c = Vec::with_capacity(4);
        self.operation.emit(Tag::OPERATION, &mut c);
        self.unique_batch_item_id
            .emit(Tag::UNIQUE_BATCH_ITEM_ID, &mut c);
        self.result_status.emit(Tag::RESULT_STATUS, &mut c);
        self.result_reason.emit(Tag::RESULT_REASON, &mut c);
        self.result_message.emit(Tag::RESULT_MESSAGE, &mut c);
        self.asynchronous_correlation_value
            .emit(Tag::ASYNCHRONOUS_CORRELATION_VALUE, &mut c);
        c.extend(payload);
        self.message_extension.emit(Tag::MESSAGE_EXTENSION, &mut c);
        Ttlv::structure(tag, c)
    }

    /// The item as TTLV, its payload moved when it is already encoded.
    fn into_ttlv(mut self, tag: Tag) -> Ttlv {
        let payload = self
            .response_payload
            .take()
            .map(ResponsePayload::into_encoded);
        self.with_payload(tag, payload)
    }
}

kmip_struct! {
    pub struct RequestMessage {
        pub request_header: RequestHeader = Tag::REQUEST_HEADER,
        pub batch_item: Vec<RequestBatchItem> = Tag::BATCH_ITEM,
    }
}

kmip_struct! {
    pub struct ResponseMessage {
        pub response_header: ResponseHeader = Tag::RESPONSE_HEADER,
        pub batch_item: Vec<ResponseBatchItem> = Tag::BATCH_ITEM,
    }
}

impl RequestMessage {
    pub fn decode(item: &Ttlv) -> Result<Self, Error> {
        if item.tag != Tag::REQUEST_MESSAGE {
            return Err(Error::UnexpectedTag {
                expected: Tag::REQUEST_MESSAGE,
                found: item.tag,
            });
        }
        Self::from_ttlv(item)
    }

    pub fn encode(&self) -> Ttlv {
        self.to_ttlv(Tag::REQUEST_MESSAGE)
    }
}

impl ResponseMessage {
    pub fn decode(item: &Ttlv) -> Result<Self, Error> {
        if item.tag != Tag::RESPONSE_MESSAGE {
            return Err(Error::UnexpectedTag {
                expected: Tag::RESPONSE_MESSAGE,
                found: item.tag,
            });
        }
        Self::from_ttlv(item)
    }

    pub fn encode(&self) -> Ttlv {
        self.to_ttlv(Tag::RESPONSE_MESSAGE)
    }

    /// [`ResponseMessage::encode`], consuming the message: payloads already encoded (kept as
    /// `ResponsePayload::Other`) are moved into the tree, not copied.
    pub fn into_encoded(self) -> Ttlv {
        let mut c = Vec::with_capacity(1 + self.batch_item.len());
        c.push(self.response_header.to_ttlv(Tag::RESPONSE_HEADER));
        c.extend(
            self.batch_item
                .into_iter()
                .map(|item| item.into_ttlv(Tag::BATCH_ITEM)),
        );
        Ttlv::structure(Tag::RESPONSE_MESSAGE, c)
    }
}
