//! Domain enums as the proto numbers the events (and the API) carry: here, so that the service
//! writes its events without the gRPC layer and the gRPC layer answers with the same numbers.

use essentials_proto::common::v1 as common;
use essentials_proto::inventory::v1 as pb;

use crate::domain::{DeliveryMethod, DistributionState, DonationSource};

pub fn donation_source_proto(source: DonationSource) -> i32 {
    use pb::DonationSource as P;
    (match source {
        DonationSource::ProductDrive => P::ProductDrive,
        DonationSource::Manufacturer => P::Manufacturer,
        DonationSource::DonationSite => P::DonationSite,
        DonationSource::Misc => P::Misc,
    }) as i32
}

pub fn delivery_method_proto(method: DeliveryMethod) -> i32 {
    use common::DeliveryMethod as P;
    (match method {
        DeliveryMethod::PickUp => P::PickUp,
        DeliveryMethod::Delivery => P::Delivery,
        DeliveryMethod::Shipped => P::Shipped,
    }) as i32
}

pub fn distribution_state_proto(state: DistributionState) -> i32 {
    use pb::DistributionState as P;
    (match state {
        DistributionState::Scheduled => P::Scheduled,
        DistributionState::Complete => P::Complete,
    }) as i32
}
