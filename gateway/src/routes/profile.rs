//! The partner profile as JSON: the sections of DOMAIN.md §2.3, field for field with the proto.
//! Attached documents are listed by the service but cannot be uploaded through JSON.

use essentials_proto::partner::v1 as pb;
use essentials_runtime::{FieldViolation, ServiceError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::convert::timestamp;

/// Proto enum names without their prefix, lower-cased: `AGENCY_TYPE_FOOD_BANK_PANTRY` → `food_bank_pantry`.
fn enum_name(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix).unwrap_or(full).to_lowercase()
}

/// A postal address (every field may be empty).
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(as = ProfileAddress)]
pub struct AddressDto {
    address1: String,
    address2: String,
    city: String,
    state: String,
    zip_code: String,
}

impl From<pb::PostalAddress> for AddressDto {
    fn from(value: pb::PostalAddress) -> Self {
        Self {
            address1: value.address1,
            address2: value.address2,
            city: value.city,
            state: value.state,
            zip_code: value.zip_code,
        }
    }
}

impl From<AddressDto> for pb::PostalAddress {
    fn from(value: AddressDto) -> Self {
        Self {
            address1: value.address1,
            address2: value.address2,
            city: value.city,
            state: value.state,
            zip_code: value.zip_code,
        }
    }
}

/// The agency: its name, kind, mission and addresses.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(as = ProfileAgencyInformation)]
pub struct AgencyInformationDto {
    name: String,
    /// null (not chosen) or one of career_technical_training, child_abuse_resource_center,
    /// basic_needs_bank, church_outreach_ministry, college_or_university,
    /// community_development_corporation, community_health_program, community_outreach_services,
    /// legal_services, crisis_disaster_services, developmental_disabilities_program,
    /// school_district, domestic_violence_shelter, early_childhood_education,
    /// early_childhood_services, education_program, family_resource_center, food_bank_pantry,
    /// foster_program, government_agency, head_start, home_visits, homeless_resource_center,
    /// hospital, infant_child_pantry, library, mental_health, military_veteran_services,
    /// police_station, pregnancy_resource_center, preschool, refugee_resource_center,
    /// elementary_school, high_school, middle_school, senior_center, tribal_organization,
    /// treatment_clinic, two_year_college, wic, other.
    agency_type: Option<String>,
    other_agency_type: String,
    agency_mission: String,
    address: AddressDto,
    program_address: AddressDto,
}

/// A section copied field for field between JSON and proto.
macro_rules! section {
    ($dto:ident as $schema:ident, $proto:ty { $($field:ident: $kind:ty),* $(,)? }) => {
        #[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
        #[serde(default, deny_unknown_fields)]
        #[schema(as = $schema)]
        pub struct $dto {
            $($field: $kind,)*
        }

        impl From<$proto> for $dto {
            fn from(value: $proto) -> Self {
                Self { $($field: value.$field,)* }
            }
        }

        impl From<$dto> for $proto {
            // Some sections have proto-only fields (documents); the rest are all listed.
            #[allow(clippy::needless_update)]
            fn from(value: $dto) -> Self {
                Self { $($field: value.$field,)* ..Default::default() }
            }
        }
    };
}

section!(
    MediaDto as ProfileMediaInformation,
    pb::MediaInformation {
        website: String,
        facebook: String,
        twitter: String,
        instagram: String,
        no_social_media_presence: bool,
    }
);
section!(
    StabilityDto as ProfileAgencyStability,
    pb::AgencyStability {
        founded: i32,
        form_990: bool,
        program_name: String,
        program_description: String,
        program_age: String,
        evidence_based: bool,
        case_management: bool,
        essentials_use: String,
        receives_essentials_from_other: String,
        currently_provide_diapers: bool,
    }
);
section!(
    CapacityDto as ProfileOrganizationalCapacity,
    pb::OrganizationalCapacity {
        client_capacity: String,
        storage_space: bool,
        describe_storage_space: String,
    }
);
section!(
    FundingDto as ProfileSourcesOfFunding,
    pb::SourcesOfFunding {
        sources_of_funding: String,
        sources_of_diapers: String,
        essentials_budget: String,
        essentials_funding_source: String,
    }
);
section!(
    ServedAreaDto as ProfileServedArea,
    pb::ServedArea {
        county: String,
        client_share_percent: i32
    }
);
section!(
    PopulationDto as ProfilePopulationServed,
    pb::PopulationServed {
        income_requirement_desc: bool,
        income_verification: bool,
        population_black: i32,
        population_white: i32,
        population_hispanic: i32,
        population_asian: i32,
        population_american_indian: i32,
        population_island: i32,
        population_multi_racial: i32,
        population_other: i32,
        zips_served: String,
        at_fpl_or_below: i32,
        above_1_2_times_fpl: i32,
        greater_2_times_fpl: i32,
        poverty_unknown: i32,
    }
);
section!(
    ContactsDto as ProfileContacts,
    pb::Contacts {
        executive_director_name: String,
        executive_director_phone: String,
        executive_director_email: String,
        primary_contact_name: String,
        primary_contact_phone: String,
        primary_contact_mobile: String,
        primary_contact_email: String,
    }
);
section!(
    PickUpDto as ProfilePickUpPerson,
    pb::PickUpPerson {
        name: String,
        phone: String,
        emails: Vec<String>,
    }
);
section!(
    DistributionInfoDto as ProfileDistributionInformation,
    pb::AgencyDistributionInformation {
        distribution_times: String,
        new_client_times: String,
        more_docs_required: String,
    }
);
section!(
    SettingsDto as ProfilePartnerSettings,
    pb::PartnerSettings {
        enable_quantity_based_requests: bool,
        enable_child_based_requests: bool,
        enable_individual_requests: bool,
    }
);

/// A partner's profile, every section as it is stored.
#[derive(Debug, Default, Serialize, ToSchema)]
#[schema(as = Profile)]
pub struct ProfileDto {
    partner_id: String,
    agency_information: AgencyInformationDto,
    media_information: MediaDto,
    agency_stability: StabilityDto,
    organizational_capacity: CapacityDto,
    sources_of_funding: FundingDto,
    area_served: Vec<ServedAreaDto>,
    population_served: PopulationDto,
    contacts: ContactsDto,
    pick_up_person: PickUpDto,
    agency_distribution_information: DistributionInfoDto,
    partner_settings: SettingsDto,
    updated_at: Option<String>,
}

/// The whole profile as a client writes it (PUT replaces every section; a section or field left
/// out is stored empty). `partner_id` and `updated_at` are not written.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
#[schema(as = UpdateProfile)]
pub struct ProfileBody {
    agency_information: AgencyInformationDto,
    media_information: MediaDto,
    agency_stability: StabilityDto,
    organizational_capacity: CapacityDto,
    sources_of_funding: FundingDto,
    area_served: Vec<ServedAreaDto>,
    population_served: PopulationDto,
    contacts: ContactsDto,
    pick_up_person: PickUpDto,
    agency_distribution_information: DistributionInfoDto,
    partner_settings: SettingsDto,
}

impl From<pb::PartnerProfile> for ProfileDto {
    fn from(profile: pb::PartnerProfile) -> Self {
        let agency = profile.agency_information.unwrap_or_default();
        let agency_type = match agency.agency_type() {
            pb::AgencyType::Unspecified => None,
            kind => Some(enum_name(kind.as_str_name(), "AGENCY_TYPE_")),
        };
        Self {
            partner_id: profile.partner_id,
            agency_information: AgencyInformationDto {
                name: agency.name,
                agency_type,
                other_agency_type: agency.other_agency_type,
                agency_mission: agency.agency_mission,
                address: agency.address.map(AddressDto::from).unwrap_or_default(),
                program_address: agency
                    .program_address
                    .map(AddressDto::from)
                    .unwrap_or_default(),
            },
            media_information: profile
                .media_information
                .map(Into::into)
                .unwrap_or_default(),
            agency_stability: profile.agency_stability.map(Into::into).unwrap_or_default(),
            organizational_capacity: profile
                .organizational_capacity
                .map(Into::into)
                .unwrap_or_default(),
            sources_of_funding: profile
                .sources_of_funding
                .map(Into::into)
                .unwrap_or_default(),
            area_served: profile
                .area_served
                .map(|area| area.served_areas.into_iter().map(Into::into).collect())
                .unwrap_or_default(),
            population_served: profile
                .population_served
                .map(Into::into)
                .unwrap_or_default(),
            contacts: profile.contacts.map(Into::into).unwrap_or_default(),
            pick_up_person: profile.pick_up_person.map(Into::into).unwrap_or_default(),
            agency_distribution_information: profile
                .agency_distribution_information
                .map(Into::into)
                .unwrap_or_default(),
            partner_settings: profile.partner_settings.map(Into::into).unwrap_or_default(),
            updated_at: timestamp(profile.updated_at.as_ref()),
        }
    }
}

impl ProfileBody {
    /// The proto profile; an unknown agency type is named.
    pub fn into_proto(self) -> Result<pb::PartnerProfile, ServiceError> {
        let agency_type = match &self.agency_information.agency_type {
            None => pb::AgencyType::Unspecified,
            Some(name) => {
                pb::AgencyType::from_str_name(&format!("AGENCY_TYPE_{}", name.to_uppercase()))
                    .filter(|kind| *kind != pb::AgencyType::Unspecified)
                    .ok_or_else(|| {
                        ServiceError::invalid(vec![FieldViolation::new(
                            "agency_information.agency_type",
                            format!("`{name}` is not an agency type"),
                        )])
                    })?
            }
        };
        let agency = self.agency_information;
        Ok(pb::PartnerProfile {
            agency_information: Some(pb::AgencyInformation {
                name: agency.name,
                agency_type: agency_type as i32,
                other_agency_type: agency.other_agency_type,
                agency_mission: agency.agency_mission,
                address: Some(agency.address.into()),
                program_address: Some(agency.program_address.into()),
            }),
            media_information: Some(self.media_information.into()),
            agency_stability: Some(self.agency_stability.into()),
            organizational_capacity: Some(self.organizational_capacity.into()),
            sources_of_funding: Some(self.sources_of_funding.into()),
            area_served: Some(pb::AreaServed {
                served_areas: self.area_served.into_iter().map(Into::into).collect(),
            }),
            population_served: Some(self.population_served.into()),
            contacts: Some(self.contacts.into()),
            pick_up_person: Some(self.pick_up_person.into()),
            agency_distribution_information: Some(self.agency_distribution_information.into()),
            partner_settings: Some(self.partner_settings.into()),
            ..Default::default()
        })
    }
}
