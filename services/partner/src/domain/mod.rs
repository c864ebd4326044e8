//! Partner statuses and their transitions, and the rules for e-mails, passwords and profiles.
//! No I/O: everything here is checked by unit tests.

pub mod csv;
mod error;
mod reminders;

pub use error::PartnerError;
pub use reminders::*;

use essentials_proto::partner::v1 as pb;
use essentials_runtime::FieldViolation;

/// A partner's status (DOMAIN.md §2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PartnerStatus {
    Uninvited,
    Invited,
    AwaitingReview,
    Approved,
    RecertificationRequired,
    Deactivated,
}

impl PartnerStatus {
    pub const ALL: [PartnerStatus; 6] = [
        PartnerStatus::Uninvited,
        PartnerStatus::Invited,
        PartnerStatus::AwaitingReview,
        PartnerStatus::Approved,
        PartnerStatus::RecertificationRequired,
        PartnerStatus::Deactivated,
    ];

    /// The name stored in the database and used in the JSON API.
    pub fn as_str(self) -> &'static str {
        match self {
            PartnerStatus::Uninvited => "uninvited",
            PartnerStatus::Invited => "invited",
            PartnerStatus::AwaitingReview => "awaiting_review",
            PartnerStatus::Approved => "approved",
            PartnerStatus::RecertificationRequired => "recertification_required",
            PartnerStatus::Deactivated => "deactivated",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    pub fn to_proto(self) -> pb::PartnerStatus {
        match self {
            PartnerStatus::Uninvited => pb::PartnerStatus::Uninvited,
            PartnerStatus::Invited => pb::PartnerStatus::Invited,
            PartnerStatus::AwaitingReview => pb::PartnerStatus::AwaitingReview,
            PartnerStatus::Approved => pb::PartnerStatus::Approved,
            PartnerStatus::RecertificationRequired => pb::PartnerStatus::RecertificationRequired,
            PartnerStatus::Deactivated => pb::PartnerStatus::Deactivated,
        }
    }

    pub fn from_proto(status: pb::PartnerStatus) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|candidate| candidate.to_proto() == status)
    }

    /// Only approved partners may make requests (our decision 1: enforced for every type).
    pub fn may_request(self) -> bool {
        self == PartnerStatus::Approved
    }
}

/// A status-changing action on a partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Invite,
    InviteAndApprove,
    SubmitForApproval,
    Approve,
    RequestRecertification,
    Deactivate,
    Reactivate,
}

impl Transition {
    /// The action's name in the API (`POST /partners/{id}/<name>`).
    pub fn name(self) -> &'static str {
        match self {
            Transition::Invite => "invite",
            Transition::InviteAndApprove => "invite_and_approve",
            Transition::SubmitForApproval => "submit_for_approval",
            Transition::Approve => "approve",
            Transition::RequestRecertification => "request_recertification",
            Transition::Deactivate => "deactivate",
            Transition::Reactivate => "reactivate",
        }
    }

    pub const ALL: [Transition; 7] = [
        Transition::Invite,
        Transition::InviteAndApprove,
        Transition::SubmitForApproval,
        Transition::Approve,
        Transition::RequestRecertification,
        Transition::Deactivate,
        Transition::Reactivate,
    ];
}

/// The status a transition leads to from `current`, or why it is refused.
///
/// Where the reference allows a transition that silently loses state we refuse it: inviting an
/// approved (or reviewed, or recertifying, or deactivated) partner would reset it to `invited`
/// (our decision 3); submitting from `approved` would take away its right to request.
pub fn next_status(
    name: &str,
    current: PartnerStatus,
    transition: Transition,
) -> Result<PartnerStatus, PartnerError> {
    use PartnerStatus::*;
    let name = name.to_owned();
    match transition {
        Transition::Invite => match current {
            Uninvited | Invited => Ok(Invited),
            status => Err(PartnerError::NotInvitable { name, status }),
        },
        Transition::InviteAndApprove => match current {
            Uninvited | Invited => Ok(Approved),
            status => Err(PartnerError::NotInvitableAndApprovable { name, status }),
        },
        Transition::SubmitForApproval => match current {
            Invited | RecertificationRequired | Uninvited => Ok(AwaitingReview),
            AwaitingReview => Err(PartnerError::AlreadyAwaitingReview),
            Approved => Err(PartnerError::AlreadyApproved { name }),
            Deactivated => Err(PartnerError::DeactivatedContactBank { name }),
        },
        Transition::Approve => match current {
            Invited | AwaitingReview => Ok(Approved),
            status => Err(PartnerError::NotApprovable { name, status }),
        },
        Transition::RequestRecertification => match current {
            RecertificationRequired => Err(PartnerError::AlreadyRecertificationRequired { name }),
            Deactivated => Err(PartnerError::Deactivated { name }),
            Uninvited => Err(PartnerError::NotInvited { name }),
            Invited | AwaitingReview | Approved => Ok(RecertificationRequired),
        },
        Transition::Deactivate => match current {
            Deactivated => Err(PartnerError::AlreadyDeactivated { name }),
            _ => Ok(Deactivated),
        },
        Transition::Reactivate => match current {
            Deactivated => Ok(Approved),
            _ => Err(PartnerError::NotDeactivated { name }),
        },
    }
}

/// Only an uninvited partner without users, requests or distributions may be deleted.
pub fn check_deletable(name: &str, deletable: bool) -> Result<(), PartnerError> {
    if deletable {
        return Ok(());
    }
    Err(PartnerError::NotDeletable {
        name: name.to_owned(),
    })
}

/// Lower-cases and checks an e-mail address; `None` when it is not one.
pub fn normalize_email(email: &str) -> Option<String> {
    let email = email.trim().to_lowercase();
    let (local, domain) = email.split_once('@')?;
    let valid = !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control());
    valid.then_some(email)
}

/// Our password policy (the reference's): 8 to 128 characters, at least one that is neither a
/// letter nor a digit.
pub fn check_password(field: &str, password: &str) -> Option<FieldViolation> {
    let length = password.chars().count();
    if !(8..=128).contains(&length) {
        return Some(FieldViolation::new(
            field,
            "must be 8 to 128 characters long",
        ));
    }
    if password.chars().all(char::is_alphanumeric) {
        return Some(FieldViolation::new(
            field,
            "must contain at least one character that is not a letter or a digit",
        ));
    }
    None
}

/// Checks a profile; every problem is named.
pub fn check_profile(profile: &pb::PartnerProfile, media_shown: bool) -> Vec<FieldViolation> {
    let mut violations = Vec::new();
    let settings = profile.partner_settings.unwrap_or_default();
    if !(settings.enable_quantity_based_requests
        || settings.enable_individual_requests
        || settings.enable_child_based_requests)
    {
        violations.push(FieldViolation::new(
            "partner_settings",
            "at least one request type must be enabled",
        ));
    }
    if let Some(population) = &profile.population_served {
        let shares = [
            ("population_black", population.population_black),
            ("population_white", population.population_white),
            ("population_hispanic", population.population_hispanic),
            ("population_asian", population.population_asian),
            (
                "population_american_indian",
                population.population_american_indian,
            ),
            ("population_island", population.population_island),
            (
                "population_multi_racial",
                population.population_multi_racial,
            ),
            ("population_other", population.population_other),
            ("at_fpl_or_below", population.at_fpl_or_below),
            ("above_1_2_times_fpl", population.above_1_2_times_fpl),
            ("greater_2_times_fpl", population.greater_2_times_fpl),
            ("poverty_unknown", population.poverty_unknown),
        ];
        for (name, share) in shares {
            if !(0..=100).contains(&share) {
                violations.push(FieldViolation::new(
                    format!("population_served.{name}"),
                    "must be a percentage, 0 to 100",
                ));
            }
        }
    }
    if profile
        .agency_stability
        .as_ref()
        .is_some_and(|stability| !(0..=9999).contains(&stability.founded))
    {
        violations.push(FieldViolation::new(
            "agency_stability.founded",
            "must be a year (or empty)",
        ));
    }
    if let Some(area) = &profile.area_served {
        let mut total = 0i64;
        for (index, served) in area.served_areas.iter().enumerate() {
            if !(0..=100).contains(&served.client_share_percent) {
                violations.push(FieldViolation::new(
                    format!("area_served.served_areas[{index}].client_share_percent"),
                    "must be between 0 and 100",
                ));
            }
            if served.county.trim().is_empty() {
                violations.push(FieldViolation::new(
                    format!("area_served.served_areas[{index}].county"),
                    "must not be blank",
                ));
            }
            total += i64::from(served.client_share_percent);
        }
        if total != 0 && total != 100 {
            violations.push(FieldViolation::new(
                "area_served.served_areas",
                format!("client shares must add up to 0 or 100 (they add up to {total})"),
            ));
        }
    }
    if let Some(pick_up) = &profile.pick_up_person {
        if pick_up.emails.len() > 3 {
            violations.push(FieldViolation::new(
                "pick_up_person.emails",
                "at most 3 e-mail addresses",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (index, email) in pick_up.emails.iter().enumerate() {
            match normalize_email(email) {
                None => violations.push(FieldViolation::new(
                    format!("pick_up_person.emails[{index}]"),
                    "is not a valid e-mail address",
                )),
                Some(normalized) if !seen.insert(normalized.clone()) => {
                    violations.push(FieldViolation::new(
                        format!("pick_up_person.emails[{index}]"),
                        "is a duplicate",
                    ))
                }
                Some(_) => {}
            }
        }
    }
    if media_shown {
        let media = profile.media_information.clone().unwrap_or_default();
        let has_presence = [
            &media.website,
            &media.facebook,
            &media.twitter,
            &media.instagram,
        ]
        .iter()
        .any(|value| !value.trim().is_empty());
        if !has_presence && !media.no_social_media_presence {
            violations.push(FieldViolation::new(
                "media_information",
                "give a website or social media account, or check no_social_media_presence",
            ));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;
    use PartnerStatus::*;
    use essentials_runtime::ServiceError;

    #[test]
    fn every_transition_from_every_status() {
        // One row per transition, one column per status in `PartnerStatus::ALL` order (uninvited,
        // invited, awaiting_review, approved, recertification_required, deactivated): the
        // arrays' types make the table cover every pair.
        type Expected = Result<PartnerStatus, &'static str>;
        let table: [(Transition, [Expected; 6]); 7] = [
            (
                Transition::Invite,
                [
                    Ok(Invited),
                    Ok(Invited),
                    Err("PARTNER_NOT_INVITABLE"),
                    Err("PARTNER_NOT_INVITABLE"),
                    Err("PARTNER_NOT_INVITABLE"),
                    Err("PARTNER_NOT_INVITABLE"),
                ],
            ),
            (
                Transition::InviteAndApprove,
                [
                    Ok(Approved),
                    Ok(Approved),
                    Err("PARTNER_NOT_INVITABLE"),
                    Err("PARTNER_NOT_INVITABLE"),
                    Err("PARTNER_NOT_INVITABLE"),
                    Err("PARTNER_NOT_INVITABLE"),
                ],
            ),
            (
                Transition::SubmitForApproval,
                [
                    Ok(AwaitingReview),
                    Ok(AwaitingReview),
                    Err("PARTNER_ALREADY_AWAITING_REVIEW"),
                    Err("PARTNER_ALREADY_APPROVED"),
                    Ok(AwaitingReview),
                    Err("PARTNER_DEACTIVATED"),
                ],
            ),
            (
                Transition::Approve,
                [
                    Err("PARTNER_NOT_APPROVABLE"),
                    Ok(Approved),
                    Ok(Approved),
                    Err("PARTNER_NOT_APPROVABLE"),
                    Err("PARTNER_NOT_APPROVABLE"),
                    Err("PARTNER_NOT_APPROVABLE"),
                ],
            ),
            (
                Transition::RequestRecertification,
                [
                    Err("PARTNER_NOT_INVITED"),
                    Ok(RecertificationRequired),
                    Ok(RecertificationRequired),
                    Ok(RecertificationRequired),
                    Err("PARTNER_ALREADY_RECERTIFICATION_REQUIRED"),
                    Err("PARTNER_DEACTIVATED"),
                ],
            ),
            (
                Transition::Deactivate,
                [
                    Ok(Deactivated),
                    Ok(Deactivated),
                    Ok(Deactivated),
                    Ok(Deactivated),
                    Ok(Deactivated),
                    Err("PARTNER_ALREADY_DEACTIVATED"),
                ],
            ),
            (
                Transition::Reactivate,
                [
                    Err("PARTNER_NOT_DEACTIVATED"),
                    Err("PARTNER_NOT_DEACTIVATED"),
                    Err("PARTNER_NOT_DEACTIVATED"),
                    Err("PARTNER_NOT_DEACTIVATED"),
                    Err("PARTNER_NOT_DEACTIVATED"),
                    Ok(Approved),
                ],
            ),
        ];
        let covered: Vec<Transition> = table.iter().map(|(transition, _)| *transition).collect();
        assert_eq!(covered, Transition::ALL, "one row per transition");
        for (transition, expectations) in &table {
            for (from, expected) in PartnerStatus::ALL.into_iter().zip(expectations) {
                let result = next_status("Acme", from, *transition);
                match expected {
                    Ok(status) => assert_eq!(
                        result.as_ref().ok(),
                        Some(status),
                        "{transition:?} from {from:?}"
                    ),
                    Err(reason) => {
                        let error = ServiceError::from(result.expect_err("refused"));
                        assert_eq!(
                            error.reason.as_deref(),
                            Some(*reason),
                            "{transition:?} from {from:?}"
                        );
                        assert_eq!(
                            error.code,
                            essentials_runtime::Code::FailedPrecondition,
                            "{transition:?} from {from:?}: a refusal is a 409"
                        );
                        assert!(
                            !error.message.is_empty(),
                            "{transition:?} from {from:?}: says why"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn refusals_say_what_is_wrong() {
        let error = next_status("Acme", Approved, Transition::Reactivate).expect_err("refused");
        assert_eq!(error.to_string(), "Acme is not deactivated!");
        let error = next_status("Acme", Uninvited, Transition::Approve).expect_err("refused");
        assert!(error.to_string().contains("is not waiting for approval"));
    }

    #[test]
    fn statuses_round_trip_through_text_and_proto() {
        for status in PartnerStatus::ALL {
            assert_eq!(PartnerStatus::parse(status.as_str()), Some(status));
            assert_eq!(PartnerStatus::from_proto(status.to_proto()), Some(status));
        }
        assert_eq!(PartnerStatus::parse("pending"), None);
        assert!(Approved.may_request());
        assert!(!AwaitingReview.may_request());
    }

    #[test]
    fn emails_are_lower_cased_and_checked() {
        assert_eq!(
            normalize_email("  Jane.Doe@Example.ORG "),
            Some("jane.doe@example.org".to_owned())
        );
        for bad in [
            "",
            "jane",
            "@example.org",
            "jane@",
            "jane@example",
            "ja ne@example.org",
            "a@b@c.org",
        ] {
            assert_eq!(normalize_email(bad), None, "{bad}");
        }
    }

    #[test]
    fn password_policy() {
        assert!(check_password("password", "short!").is_some());
        assert!(check_password("password", "longenoughbutplain1").is_some());
        assert!(check_password("password", "long enough!").is_none());
        assert!(check_password("password", &"x!".repeat(65)).is_some());
    }

    #[test]
    fn profile_rules() {
        let mut profile = pb::PartnerProfile::default();
        let fields = |profile: &pb::PartnerProfile, media: bool| -> Vec<String> {
            check_profile(profile, media)
                .into_iter()
                .map(|violation| violation.field)
                .collect()
        };
        assert_eq!(fields(&profile, false), vec!["partner_settings"]);
        profile.partner_settings = Some(pb::PartnerSettings {
            enable_quantity_based_requests: true,
            ..Default::default()
        });
        assert!(fields(&profile, false).is_empty());
        assert_eq!(fields(&profile, true), vec!["media_information"]);
        profile.area_served = Some(pb::AreaServed {
            served_areas: vec![
                pb::ServedArea {
                    county: "Kent".into(),
                    client_share_percent: 60,
                },
                pb::ServedArea {
                    county: "Sussex".into(),
                    client_share_percent: 30,
                },
            ],
        });
        profile.pick_up_person = Some(pb::PickUpPerson {
            emails: vec![
                "a@x.org".into(),
                "A@x.org".into(),
                "bad".into(),
                "d@x.org".into(),
            ],
            ..Default::default()
        });
        assert_eq!(
            fields(&profile, false),
            vec![
                "area_served.served_areas",
                "pick_up_person.emails",
                "pick_up_person.emails[1]",
                "pick_up_person.emails[2]"
            ]
        );
        profile.area_served = None;
        profile.pick_up_person = None;
        profile.population_served = Some(pb::PopulationServed {
            population_black: 40,
            population_white: 101,
            poverty_unknown: -1,
            ..Default::default()
        });
        profile.agency_stability = Some(pb::AgencyStability {
            founded: 1998,
            ..Default::default()
        });
        assert_eq!(
            fields(&profile, false),
            vec![
                "population_served.population_white",
                "population_served.poverty_unknown"
            ]
        );
        profile.population_served = None;
        profile.agency_stability = Some(pb::AgencyStability {
            founded: -5,
            ..Default::default()
        });
        assert_eq!(fields(&profile, false), vec!["agency_stability.founded"]);
    }
}
