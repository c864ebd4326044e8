//! The protobuf contract of Essentials, compiled once for every part: messages, tonic clients and
//! servers for each package under `proto/essentials/`, the event payloads with their routing keys,
//! and the file descriptor set for gRPC reflection.
//!
//! Module paths mirror the protobuf packages without the leading `essentials`:
//! `essentials.partner.v1` is [`partner::v1`], `essentials.events.v1` is [`events::v1`], and so on.

/// The file descriptor set of every Essentials package (imports included), for
/// `tonic_reflection::server::Builder::register_encoded_file_descriptor_set`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/essentials_descriptor.bin"));

/// `essentials.common.v1`: line items, delivery methods and request types shared by several parts.
pub mod common {
    /// Generated from `proto/essentials/common/v1`.
    #[allow(clippy::all, clippy::pedantic, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("essentials.common.v1");
    }
}

/// `essentials.partner.v1`: identity, banks, staff, partners, profiles and partner groups.
pub mod partner {
    /// Generated from `proto/essentials/partner/v1`.
    #[allow(clippy::all, clippy::pedantic, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("essentials.partner.v1");
    }
}

/// `essentials.request.v1`: partner requests.
pub mod request {
    /// Generated from `proto/essentials/request/v1`.
    #[allow(clippy::all, clippy::pedantic, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("essentials.request.v1");
    }
}

/// `essentials.inventory.v1`: catalog, storage locations, stock and distributions.
pub mod inventory {
    /// Generated from `proto/essentials/inventory/v1`.
    #[allow(clippy::all, clippy::pedantic, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("essentials.inventory.v1");
    }
}

/// `essentials.notification.v1`: e-mail log, reminders and the bank dashboard.
pub mod notification {
    /// Generated from `proto/essentials/notification/v1`.
    #[allow(clippy::all, clippy::pedantic, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("essentials.notification.v1");
    }
}

/// `essentials.events.v1`: the event envelope and one payload message per event, plus
/// [`EventPayload`](crate::events::EventPayload), which names each payload's routing key once.
pub mod events {
    /// Generated from `proto/essentials/events/v1`; also re-exports [`EventPayload`] and
    /// [`ALL_EVENT_TYPES`].
    #[allow(clippy::all, clippy::pedantic, missing_docs)]
    pub mod v1 {
        tonic::include_proto!("essentials.events.v1");

        pub use super::{ALL_EVENT_TYPES, EventPayload};
    }

    /// A message that travels as the payload of a [`v1::EventEnvelope`], with its routing key.
    ///
    /// ```
    /// use essentials_proto::events::v1::{EventPayload, PartnerApproved};
    ///
    /// let payload = PartnerApproved::default();
    /// let any = payload.to_any().expect("encodes");
    /// assert_eq!(PartnerApproved::EVENT_TYPE, "partner.approved");
    /// assert_eq!(PartnerApproved::from_any(&any).expect("decodes"), payload);
    /// ```
    pub trait EventPayload: prost::Name + Default {
        /// The event name: routing key, AMQP `type` and `EventEnvelope.event_type`.
        const EVENT_TYPE: &'static str;

        /// Packs the payload for `EventEnvelope.payload`.
        fn to_any(&self) -> Result<prost_types::Any, prost::EncodeError> {
            prost_types::Any::from_msg(self)
        }

        /// Unpacks a payload; fails when the type URL names another message.
        fn from_any(any: &prost_types::Any) -> Result<Self, prost::DecodeError> {
            any.to_msg::<Self>()
        }
    }

    macro_rules! event_payloads {
        ($($payload:ident => $event_type:literal,)*) => {
            $(
                impl EventPayload for v1::$payload {
                    const EVENT_TYPE: &'static str = $event_type;
                }
            )*

            /// Every event name (for queue bindings and tests).
            pub const ALL_EVENT_TYPES: &[&str] = &[$($event_type,)*];
        };
    }

    event_payloads! {
        OrganizationCreated => "organization.created",
        UserInvited => "user.invited",
        UserRoleAdded => "user.role_added",
        UserPasswordResetRequested => "user.password_reset_requested",
        PartnerCreated => "partner.created",
        PartnerInvited => "partner.invited",
        PartnerApprovalRequested => "partner.approval_requested",
        PartnerApproved => "partner.approved",
        PartnerRecertificationRequested => "partner.recertification_requested",
        PartnerDeactivated => "partner.deactivated",
        PartnerReactivated => "partner.reactivated",
        PartnersImported => "partners.imported",
        PartnerDeadlineReminderDue => "partner.deadline_reminder_due",
        StockChanged => "stock.changed",
        StockLow => "stock.low",
        DonationReceived => "donation.received",
        DistributionCreated => "distribution.created",
        DistributionUpdated => "distribution.updated",
        DistributionCompleted => "distribution.completed",
        DistributionReclaimed => "distribution.reclaimed",
        RequestCreated => "request.created",
        RequestStarted => "request.started",
        RequestFulfilled => "request.fulfilled",
        RequestCancelled => "request.cancelled",
    }
}

#[cfg(test)]
mod tests {
    use super::events::v1::{
        ALL_EVENT_TYPES, DistributionCreated, EventPayload, PartnerInvited, RequestCreated,
    };
    use std::collections::HashSet;

    #[test]
    fn event_types_are_unique() {
        let distinct: HashSet<&str> = ALL_EVENT_TYPES.iter().copied().collect();
        assert_eq!(distinct.len(), ALL_EVENT_TYPES.len());
    }

    #[test]
    fn payload_type_url_names_the_events_package() {
        let any = PartnerInvited::default().to_any().expect("encodes");
        assert_eq!(
            any.type_url,
            "type.googleapis.com/essentials.events.v1.PartnerInvited"
        );
    }

    #[test]
    fn from_any_refuses_another_payload() {
        let any = RequestCreated::default().to_any().expect("encodes");
        assert!(DistributionCreated::from_any(&any).is_err());
        assert!(RequestCreated::from_any(&any).is_ok());
    }

    #[test]
    fn descriptor_set_holds_every_package() {
        let descriptor_set =
            <prost_types::FileDescriptorSet as prost::Message>::decode(super::FILE_DESCRIPTOR_SET)
                .expect("decodes");
        let packages: HashSet<&str> = descriptor_set
            .file
            .iter()
            .filter_map(|file| file.package.as_deref())
            .collect();
        for package in [
            "essentials.common.v1",
            "essentials.partner.v1",
            "essentials.request.v1",
            "essentials.inventory.v1",
            "essentials.notification.v1",
            "essentials.events.v1",
        ] {
            assert!(packages.contains(package), "{package} missing");
        }
    }
}
