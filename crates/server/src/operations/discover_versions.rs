//! DiscoverVersions: the protocol versions both sides speak, in the client's order.

use kmip::model::{DiscoverVersions, ProtocolVersion};

use crate::error::KResult;
use crate::kms::{Kms, RequestContext};

/// Versions this server speaks, most preferred first.
pub const SUPPORTED: &[(i32, i32)] = &[(2, 1), (2, 0), (1, 4), (1, 3), (1, 2), (1, 1), (1, 0)];

pub async fn discover_versions(
    _kms: &Kms,
    _ctx: &mut RequestContext,
    request: DiscoverVersions,
) -> KResult<DiscoverVersions> {
    let pv = |(major, minor): (i32, i32)| ProtocolVersion {
        protocol_version_major: major,
        protocol_version_minor: minor,
    };
    let versions = if request.protocol_version.is_empty() {
        SUPPORTED.iter().copied().map(pv).collect()
    } else {
        request
            .protocol_version
            .into_iter()
            .filter(|v| SUPPORTED.contains(&(v.protocol_version_major, v.protocol_version_minor)))
            .collect()
    };
    Ok(DiscoverVersions {
        protocol_version: versions,
    })
}
