//! A partner's profile, section by section: the review page (everything, with what the bank
//! requires marked, and "Submit for approval" for the partner), and one form per section with
//! "Save progress". The partner edits its own at `/partner/profile`; the bank's staff see and edit
//! the same pages at `/partners/{id}/profile`. The partner part keeps the rules: it checks every
//! save, and on submit also that the media section names a website, an account or "none".

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use essentials_proto::partner::v1 as pb;
use essentials_proto::partner::v1::partner_service_client::PartnerServiceClient;
use essentials_runtime::auth::{Principal, forward};
use serde::Deserialize;
use tonic::transport::Channel;

use super::path_id;
use crate::Web;
use crate::error::{PageError, render};
use crate::form::{Errors, Form};
use crate::session::{Csrf, PartnerUser, Staff};
use crate::view::{self, Choice, Chrome};

/// How a field is entered.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Long,
    Email,
    Tel,
    Number,
    Check,
    AgencyType,
    /// Repeated e-mail addresses, comma-separated.
    Emails,
    /// Served counties, one `County, share` a line.
    Areas,
}

/// One field of the profile: its API path (also its form name), how to show and read it.
struct Field {
    name: &'static str,
    label: &'static str,
    kind: Kind,
    hint: &'static str,
    get: fn(&pb::PartnerProfile) -> String,
    /// Writes the typed text into the profile, or says why it cannot.
    set: fn(&mut pb::PartnerProfile, &str) -> Result<(), &'static str>,
}

fn whole_number(text: &str) -> Result<i32, &'static str> {
    if text.is_empty() {
        return Ok(0);
    }
    text.parse().map_err(|_| "must be a whole number")
}

fn shown_number(value: i32) -> String {
    if value == 0 {
        String::new()
    } else {
        value.to_string()
    }
}

fn checked(text: &str) -> bool {
    !text.is_empty()
}

macro_rules! field {
    ($kind:ident, $label:expr, $hint:expr, $section:ident . $name:ident) => {
        Field {
            name: concat!(stringify!($section), ".", stringify!($name)),
            label: $label,
            kind: Kind::$kind,
            hint: $hint,
            get: |profile| {
                let value = profile.$section.clone().unwrap_or_default().$name;
                field!(@show $kind, value)
            },
            set: |profile, text| {
                let section = profile.$section.get_or_insert_with(Default::default);
                section.$name = field!(@read $kind, text)?;
                Ok(())
            },
        }
    };
    ($kind:ident, $label:expr, $section:ident . $address:ident . $name:ident) => {
        Field {
            name: concat!(
                stringify!($section),
                ".",
                stringify!($address),
                ".",
                stringify!($name)
            ),
            label: $label,
            kind: Kind::$kind,
            hint: "",
            get: |profile| {
                let section = profile.$section.clone().unwrap_or_default();
                section.$address.unwrap_or_default().$name
            },
            set: |profile, text| {
                let section = profile.$section.get_or_insert_with(Default::default);
                section.$address.get_or_insert_with(Default::default).$name = text.to_owned();
                Ok(())
            },
        }
    };
    (@show Number, $value:expr) => { shown_number($value) };
    (@show Check, $value:expr) => { if $value { "yes".to_owned() } else { String::new() } };
    (@show $kind:ident, $value:expr) => { $value };
    (@read Number, $text:expr) => { whole_number($text) };
    (@read Check, $text:expr) => { Ok::<bool, &'static str>(checked($text)) };
    (@read $kind:ident, $text:expr) => { Ok::<String, &'static str>($text.to_owned()) };
}

fn agency_type_field() -> Field {
    Field {
        name: "agency_information.agency_type",
        label: "Agency type",
        kind: Kind::AgencyType,
        hint: "",
        get: |profile| {
            let agency = profile.agency_information.clone().unwrap_or_default();
            if agency.agency_type == 0 {
                String::new()
            } else {
                agency.agency_type.to_string()
            }
        },
        set: |profile, text| {
            let value = if text.is_empty() {
                0
            } else {
                text.parse::<i32>()
                    .ok()
                    .filter(|value| pb::AgencyType::try_from(*value).is_ok())
                    .ok_or("is not one of the agency types")?
            };
            profile
                .agency_information
                .get_or_insert_with(Default::default)
                .agency_type = value;
            Ok(())
        },
    }
}

fn pick_up_emails_field() -> Field {
    Field {
        name: "pick_up_person.emails",
        label: "Pick-up e-mail addresses",
        kind: Kind::Emails,
        hint: "Up to three, separated by commas; they get a copy of pick-up e-mails.",
        get: |profile| {
            profile
                .pick_up_person
                .clone()
                .unwrap_or_default()
                .emails
                .join(", ")
        },
        set: |profile, text| {
            profile
                .pick_up_person
                .get_or_insert_with(Default::default)
                .emails = text
                .split(',')
                .map(str::trim)
                .filter(|email| !email.is_empty())
                .map(str::to_owned)
                .collect();
            Ok(())
        },
    }
}

/// `County, share` a line (the share in per cent, optional).
fn parse_areas(text: &str) -> Result<Vec<pb::ServedArea>, &'static str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(|line| match line.rsplit_once(',') {
            Some((county, share)) => Ok(pb::ServedArea {
                county: county.trim().to_owned(),
                client_share_percent: share
                    .trim()
                    .trim_end_matches('%')
                    .trim()
                    .parse()
                    .map_err(|_| "each line is a county, a comma and a whole percentage")?,
            }),
            None => Ok(pb::ServedArea {
                county: line.to_owned(),
                client_share_percent: 0,
            }),
        })
        .collect()
}

fn areas_field() -> Field {
    Field {
        name: "area_served.served_areas",
        label: "Counties served",
        kind: Kind::Areas,
        hint: "One county a line, with the share of your clients from it: \"Travis County, 60\". The shares add up to 100.",
        get: |profile| {
            profile
                .area_served
                .clone()
                .unwrap_or_default()
                .served_areas
                .iter()
                .map(|area| format!("{}, {}", area.county, area.client_share_percent))
                .collect::<Vec<_>>()
                .join("\n")
        },
        set: |profile, text| {
            profile
                .area_served
                .get_or_insert_with(Default::default)
                .served_areas = parse_areas(text)?;
            Ok(())
        },
    }
}

/// One section of the profile.
struct Section {
    slug: &'static str,
    title: &'static str,
    /// `None`: always shown (agency information, request settings).
    optional: Option<pb::ProfileSection>,
    /// What the bank requires of this section before it reviews the profile.
    requirement: &'static str,
    fields: Vec<Field>,
}

fn sections() -> Vec<Section> {
    use pb::ProfileSection as S;
    vec![
        Section {
            slug: "agency_information",
            title: "Agency information",
            optional: None,
            requirement: "The agency's name is required.",
            fields: vec![
                field!(Text, "Agency name", "", agency_information.name),
                agency_type_field(),
                field!(
                    Text,
                    "Other agency type",
                    "When the type is Other.",
                    agency_information.other_agency_type
                ),
                field!(Long, "Mission", "", agency_information.agency_mission),
                field!(Text, "Address", agency_information.address.address1),
                field!(Text, "Address line 2", agency_information.address.address2),
                field!(Text, "City", agency_information.address.city),
                field!(Text, "State", agency_information.address.state),
                field!(Text, "Zip code", agency_information.address.zip_code),
                field!(
                    Text,
                    "Program address",
                    agency_information.program_address.address1
                ),
                field!(
                    Text,
                    "Program address line 2",
                    agency_information.program_address.address2
                ),
                field!(
                    Text,
                    "Program city",
                    agency_information.program_address.city
                ),
                field!(
                    Text,
                    "Program state",
                    agency_information.program_address.state
                ),
                field!(
                    Text,
                    "Program zip code",
                    agency_information.program_address.zip_code
                ),
            ],
        },
        Section {
            slug: "media_information",
            title: "Media",
            optional: Some(S::MediaInformation),
            requirement: "A website, a social media account, or \"No social media presence\" checked.",
            fields: vec![
                field!(Text, "Website", "", media_information.website),
                field!(Text, "Facebook", "", media_information.facebook),
                field!(Text, "Twitter", "", media_information.twitter),
                field!(Text, "Instagram", "", media_information.instagram),
                field!(
                    Check,
                    "No social media presence",
                    "",
                    media_information.no_social_media_presence
                ),
            ],
        },
        Section {
            slug: "agency_stability",
            title: "Agency stability",
            optional: Some(S::AgencyStability),
            requirement: "",
            fields: vec![
                field!(Number, "Year founded", "", agency_stability.founded),
                field!(Check, "Files a Form 990", "", agency_stability.form_990),
                field!(Text, "Program name", "", agency_stability.program_name),
                field!(
                    Long,
                    "Program description",
                    "",
                    agency_stability.program_description
                ),
                field!(
                    Text,
                    "How long the program has run",
                    "",
                    agency_stability.program_age
                ),
                field!(
                    Check,
                    "Evidence-based program",
                    "",
                    agency_stability.evidence_based
                ),
                field!(
                    Check,
                    "Offers case management",
                    "",
                    agency_stability.case_management
                ),
                field!(
                    Long,
                    "How the essentials are used",
                    "",
                    agency_stability.essentials_use
                ),
                field!(
                    Text,
                    "Receives essentials from others",
                    "",
                    agency_stability.receives_essentials_from_other
                ),
                field!(
                    Check,
                    "Currently provides diapers",
                    "",
                    agency_stability.currently_provide_diapers
                ),
            ],
        },
        Section {
            slug: "organizational_capacity",
            title: "Organizational capacity",
            optional: Some(S::OrganizationalCapacity),
            requirement: "",
            fields: vec![
                field!(
                    Text,
                    "Client capacity",
                    "",
                    organizational_capacity.client_capacity
                ),
                field!(
                    Check,
                    "Has storage space",
                    "",
                    organizational_capacity.storage_space
                ),
                field!(
                    Long,
                    "Storage space",
                    "",
                    organizational_capacity.describe_storage_space
                ),
            ],
        },
        Section {
            slug: "sources_of_funding",
            title: "Sources of funding",
            optional: Some(S::SourcesOfFunding),
            requirement: "",
            fields: vec![
                field!(
                    Long,
                    "Sources of funding",
                    "",
                    sources_of_funding.sources_of_funding
                ),
                field!(
                    Long,
                    "Sources of diapers",
                    "",
                    sources_of_funding.sources_of_diapers
                ),
                field!(
                    Text,
                    "Essentials budget",
                    "",
                    sources_of_funding.essentials_budget
                ),
                field!(
                    Text,
                    "Essentials funding source",
                    "",
                    sources_of_funding.essentials_funding_source
                ),
            ],
        },
        Section {
            slug: "area_served",
            title: "Area served",
            optional: Some(S::AreaServed),
            requirement: "",
            fields: vec![areas_field()],
        },
        Section {
            slug: "population_served",
            title: "Population served",
            optional: Some(S::PopulationServed),
            requirement: "",
            fields: vec![
                field!(
                    Check,
                    "Has an income requirement",
                    "",
                    population_served.income_requirement_desc
                ),
                field!(
                    Check,
                    "Verifies income",
                    "",
                    population_served.income_verification
                ),
                field!(Number, "Black (%)", "", population_served.population_black),
                field!(Number, "White (%)", "", population_served.population_white),
                field!(
                    Number,
                    "Hispanic (%)",
                    "",
                    population_served.population_hispanic
                ),
                field!(Number, "Asian (%)", "", population_served.population_asian),
                field!(
                    Number,
                    "American Indian (%)",
                    "",
                    population_served.population_american_indian
                ),
                field!(
                    Number,
                    "Pacific Islander (%)",
                    "",
                    population_served.population_island
                ),
                field!(
                    Number,
                    "Multi-racial (%)",
                    "",
                    population_served.population_multi_racial
                ),
                field!(Number, "Other (%)", "", population_served.population_other),
                field!(Long, "Zip codes served", "", population_served.zips_served),
                field!(
                    Number,
                    "At or below the federal poverty level (%)",
                    "",
                    population_served.at_fpl_or_below
                ),
                field!(
                    Number,
                    "Up to twice the poverty level (%)",
                    "",
                    population_served.above_1_2_times_fpl
                ),
                field!(
                    Number,
                    "Above twice the poverty level (%)",
                    "",
                    population_served.greater_2_times_fpl
                ),
                field!(
                    Number,
                    "Poverty level unknown (%)",
                    "",
                    population_served.poverty_unknown
                ),
            ],
        },
        Section {
            slug: "contacts",
            title: "Contacts",
            optional: Some(S::Contacts),
            requirement: "",
            fields: vec![
                field!(
                    Text,
                    "Executive director",
                    "",
                    contacts.executive_director_name
                ),
                field!(
                    Tel,
                    "Executive director's phone",
                    "",
                    contacts.executive_director_phone
                ),
                field!(
                    Email,
                    "Executive director's e-mail",
                    "",
                    contacts.executive_director_email
                ),
                field!(
                    Text,
                    "Primary contact",
                    "The bank sees this name when it reviews your profile.",
                    contacts.primary_contact_name
                ),
                field!(
                    Tel,
                    "Primary contact's phone",
                    "",
                    contacts.primary_contact_phone
                ),
                field!(
                    Tel,
                    "Primary contact's mobile",
                    "",
                    contacts.primary_contact_mobile
                ),
                field!(
                    Email,
                    "Primary contact's e-mail",
                    "",
                    contacts.primary_contact_email
                ),
            ],
        },
        Section {
            slug: "pick_up_person",
            title: "Pick-up person",
            optional: Some(S::PickUpPerson),
            requirement: "",
            fields: vec![
                field!(Text, "Name", "", pick_up_person.name),
                field!(Tel, "Phone", "", pick_up_person.phone),
                pick_up_emails_field(),
            ],
        },
        Section {
            slug: "agency_distribution_information",
            title: "Distribution information",
            optional: Some(S::AgencyDistributionInformation),
            requirement: "",
            fields: vec![
                field!(
                    Long,
                    "Distribution times",
                    "",
                    agency_distribution_information.distribution_times
                ),
                field!(
                    Long,
                    "New client times",
                    "",
                    agency_distribution_information.new_client_times
                ),
                field!(
                    Long,
                    "Documents clients bring",
                    "",
                    agency_distribution_information.more_docs_required
                ),
            ],
        },
        Section {
            slug: "partner_settings",
            title: "Request settings",
            optional: None,
            requirement: "At least one kind of request stays enabled.",
            fields: vec![
                field!(
                    Check,
                    "Quantity requests (items and how many)",
                    "",
                    partner_settings.enable_quantity_based_requests
                ),
                field!(
                    Check,
                    "Individual requests (items for a number of people)",
                    "",
                    partner_settings.enable_individual_requests
                ),
                field!(
                    Check,
                    "Child-based requests",
                    "",
                    partner_settings.enable_child_based_requests
                ),
            ],
        },
    ]
}

/// The sections this bank shows its partners (none listed: all).
fn visible(profile: &pb::PartnerProfile) -> Vec<Section> {
    let shown = &profile.visible_sections;
    sections()
        .into_iter()
        .filter(|section| {
            section
                .optional
                .is_none_or(|optional| shown.is_empty() || shown.contains(&(optional as i32)))
        })
        .collect()
}

/// The API's field path as the form's field: `area_served.served_areas[1].county` and
/// `pick_up_person.emails[0]` belong to the one field that holds the list.
fn form_field(path: &str) -> String {
    let path = path.strip_prefix("profile.").unwrap_or(path);
    match path.split_once('[') {
        Some((list, _)) => list.to_owned(),
        None => path.to_owned(),
    }
}

/// Whose profile: the caller's own partner, or (bank staff) a partner of the bank.
struct Target {
    partner_id: String,
    /// Where its pages are: `/partner/profile` or `/partners/{id}/profile`.
    base: String,
    for_partner: bool,
}

impl Target {
    fn own(partner_id: uuid::Uuid) -> Self {
        Target {
            partner_id: partner_id.to_string(),
            base: "/partner/profile".to_owned(),
            for_partner: true,
        }
    }

    fn of(partner_id: String) -> Self {
        Target {
            base: format!("/partners/{partner_id}/profile"),
            partner_id,
            for_partner: false,
        }
    }
}

fn client(web: &Web) -> PartnerServiceClient<Channel> {
    PartnerServiceClient::new(web.channels().partner.clone())
}

async fn load(
    web: &Web,
    principal: &Principal,
    target: &Target,
) -> Result<pb::PartnerProfile, PageError> {
    client(web)
        .get_profile(forward(
            principal,
            pb::GetProfileRequest {
                partner_id: target.partner_id.clone(),
            },
        ))
        .await?
        .into_inner()
        .profile
        .ok_or_else(PageError::not_found)
}

// ---- the review page ----------------------------------------------------------------------------

struct ShownField {
    label: &'static str,
    value: String,
}

struct ShownSection {
    slug: &'static str,
    title: &'static str,
    requirement: &'static str,
    /// The bank's requirement is not met (or the partner part said so on submit).
    wanting: Option<String>,
    fields: Vec<ShownField>,
}

#[derive(Template)]
#[template(path = "profile/review.html")]
struct ReviewPage {
    chrome: Chrome,
    name: String,
    base: String,
    for_partner: bool,
    status: &'static str,
    status_label: &'static str,
    may_submit: bool,
    sections: Vec<ShownSection>,
    notice: &'static str,
    problem: String,
}

fn agency_type_label(value: i32) -> String {
    pb::AgencyType::try_from(value)
        .ok()
        .filter(|kind| *kind != pb::AgencyType::Unspecified)
        .map(|kind| {
            let words = kind
                .as_str_name()
                .trim_start_matches("AGENCY_TYPE_")
                .replace('_', " ")
                .to_lowercase();
            let mut letters = words.chars();
            letters
                .next()
                .map(|first| first.to_uppercase().chain(letters).collect())
                .unwrap_or_default()
        })
        .unwrap_or_default()
}

fn shown_value(field: &Field, profile: &pb::PartnerProfile) -> String {
    let value = (field.get)(profile);
    match field.kind {
        Kind::AgencyType => agency_type_label(value.parse().unwrap_or(0)),
        Kind::Check if value.is_empty() => "no".to_owned(),
        _ => value,
    }
}

/// What the review marks as wanting before the bank can review: the rules the partner part
/// applies on submit, seen from the profile as it is (the part's answer stays the authority).
fn wanting(section: &Section, profile: &pb::PartnerProfile) -> Option<String> {
    match section.slug {
        "agency_information" => profile
            .agency_information
            .as_ref()
            .is_none_or(|agency| agency.name.trim().is_empty())
            .then(|| "The agency's name is missing.".to_owned()),
        "media_information" => {
            let media = profile.media_information.clone().unwrap_or_default();
            let none = [
                &media.website,
                &media.facebook,
                &media.twitter,
                &media.instagram,
            ]
            .iter()
            .all(|value| value.trim().is_empty());
            (none && !media.no_social_media_presence).then(|| {
                "Give a website or a social media account, or check \"No social media presence\"."
                    .to_owned()
            })
        }
        _ => None,
    }
}

#[derive(Deserialize, Default)]
pub struct NoticeQuery {
    #[serde(default)]
    saved: String,
}

async fn review(
    web: &Web,
    principal: &Principal,
    csrf: &str,
    target: Target,
    notice: &'static str,
    problem: Option<Errors>,
) -> Result<Response, PageError> {
    let section_name = if target.for_partner {
        "profile"
    } else {
        "partners"
    };
    let mut partners = client(web);
    let (chrome, profile, partner) = tokio::join!(
        view::chrome(web, principal, csrf, section_name, "Profile"),
        load(web, principal, &target),
        partners.get_partner(forward(
            principal,
            pb::GetPartnerRequest {
                partner_id: target.partner_id.clone(),
            },
        )),
    );
    let profile = profile?;
    let partner = partner?.into_inner().partner.unwrap_or_default();
    let (status, status_label) = view::partner_status(partner.status);
    let may_submit = target.for_partner
        && partner
            .actions
            .iter()
            .any(|action| action.name == "submit_for_approval" && action.allowed);
    let problem = problem.unwrap_or_default();
    let sections = visible(&profile)
        .iter()
        .map(|section| ShownSection {
            slug: section.slug,
            title: section.title,
            requirement: section.requirement,
            wanting: problem
                .get(section.slug)
                .map(str::to_owned)
                .or_else(|| wanting(section, &profile)),
            fields: section
                .fields
                .iter()
                .map(|field| ShownField {
                    label: field.label,
                    value: shown_value(field, &profile),
                })
                .collect(),
        })
        .collect();
    Ok(render(&ReviewPage {
        chrome: chrome?,
        name: partner.name,
        base: target.base,
        for_partner: target.for_partner,
        status,
        status_label,
        may_submit,
        sections,
        notice,
        problem: problem.summary.unwrap_or_default(),
    }))
}

fn saved_notice(query: &NoticeQuery) -> &'static str {
    match query.saved.as_str() {
        "" => "",
        _ => "Saved.",
    }
}

pub async fn own_review(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    PartnerUser(principal, partner_id): PartnerUser,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    review(
        &web,
        &principal,
        &csrf,
        Target::own(partner_id),
        saved_notice(&query),
        None,
    )
    .await
}

pub async fn bank_review(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path(id): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let target = Target::of(path_id(&id)?);
    review(&web, &principal, &csrf, target, saved_notice(&query), None).await
}

/// "Submit for approval" from the review page: on success the home page says where it stands;
/// a refusal comes back on the review with the section it is about marked.
pub async fn submit(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    PartnerUser(principal, partner_id): PartnerUser,
    _form: Form,
) -> Result<Response, PageError> {
    let answer = client(&web)
        .submit_for_approval(forward(
            &principal,
            pb::SubmitForApprovalRequest {
                partner_id: partner_id.to_string(),
            },
        ))
        .await;
    match answer {
        Ok(_) => Ok(Redirect::to("/").into_response()),
        Err(status) => {
            let mut errors = Errors::from_status(status, form_field)?;
            if errors.summary.is_none() {
                errors.summary =
                    Some("The profile is not ready for review yet; see below.".to_owned());
            }
            review(
                &web,
                &principal,
                &csrf,
                Target::own(partner_id),
                "",
                Some(errors),
            )
            .await
        }
    }
}

// ---- one section's form -------------------------------------------------------------------------

struct InputField {
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    hint: &'static str,
    value: String,
    options: Vec<Choice>,
}

#[derive(Template)]
#[template(path = "profile/section.html")]
struct SectionPage {
    chrome: Chrome,
    base: String,
    slug: &'static str,
    title: &'static str,
    requirement: &'static str,
    fields: Vec<InputField>,
    errors: Errors,
    /// The next section's slug; empty after the last.
    next: &'static str,
    notice: &'static str,
}

fn agency_type_choices(selected: &str) -> Vec<Choice> {
    let mut choices = vec![Choice {
        value: String::new(),
        label: "Choose one".to_owned(),
        selected: selected.is_empty(),
    }];
    choices.extend(Choice::list(
        (1..)
            .map_while(|value| pb::AgencyType::try_from(value).ok())
            .map(|kind| (kind as i32).to_string())
            .map(|value| {
                let label = agency_type_label(value.parse().unwrap_or(0));
                (value, label)
            }),
        selected,
    ));
    choices
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Text | Kind::Emails => "text",
        Kind::Long | Kind::Areas => "long",
        Kind::Email => "email",
        Kind::Tel => "tel",
        // Entered as text (inputmode numeric): a number input drops what is not a number
        // without a word, and the form should say what is wrong instead.
        Kind::Number => "number",
        Kind::Check => "check",
        Kind::AgencyType => "select",
    }
}

/// Who is asking for a page.
struct Caller<'a> {
    web: &'a Web,
    principal: &'a Principal,
    csrf: &'a str,
}

/// The section's form, showing `value(field)` in each field.
async fn section_page(
    caller: &Caller<'_>,
    target: &Target,
    slug: &str,
    value: impl Fn(&Field) -> String,
    errors: Errors,
    notice: &'static str,
    profile: &pb::PartnerProfile,
) -> Result<Response, PageError> {
    let shown = visible(profile);
    let index = shown
        .iter()
        .position(|section| section.slug == slug)
        .ok_or_else(PageError::not_found)?;
    let section = &shown[index];
    let section_name = if target.for_partner {
        "profile"
    } else {
        "partners"
    };
    let chrome = view::chrome(
        caller.web,
        caller.principal,
        caller.csrf,
        section_name,
        section.title,
    )
    .await?;
    let fields = section
        .fields
        .iter()
        .map(|field| {
            let typed = value(field);
            InputField {
                name: field.name,
                label: field.label,
                kind: kind_name(field.kind),
                hint: field.hint,
                options: if field.kind == Kind::AgencyType {
                    agency_type_choices(&typed)
                } else {
                    Vec::new()
                },
                value: typed,
            }
        })
        .collect();
    Ok(render(&SectionPage {
        chrome,
        base: target.base.clone(),
        slug: section.slug,
        title: section.title,
        requirement: section.requirement,
        fields,
        errors,
        next: shown.get(index + 1).map(|next| next.slug).unwrap_or(""),
        notice,
    }))
}

async fn edit(
    web: &Web,
    principal: &Principal,
    csrf: &str,
    target: Target,
    slug: &str,
    notice: &'static str,
) -> Result<Response, PageError> {
    let profile = load(web, principal, &target).await?;
    let caller = Caller {
        web,
        principal,
        csrf,
    };
    section_page(
        &caller,
        &target,
        slug,
        |field| (field.get)(&profile),
        Errors::default(),
        notice,
        &profile,
    )
    .await
}

/// Saves one section: the profile as it is with this section's fields as typed (the partner
/// part replaces the profile as a whole). "Save progress" stays on the section; "Save and
/// continue" opens the next one, the last one the review.
async fn save(
    web: &Web,
    principal: &Principal,
    csrf: &str,
    target: Target,
    slug: &str,
    form: &Form,
) -> Result<Response, PageError> {
    let mut profile = load(web, principal, &target).await?;
    let shown = visible(&profile);
    let section = shown
        .iter()
        .find(|section| section.slug == slug)
        .ok_or_else(PageError::not_found)?;
    let mut errors = Errors::default();
    for field in &section.fields {
        if let Err(problem) = (field.set)(&mut profile, &form.text(field.name)) {
            errors.add(field.name, problem);
        }
    }
    let typed = |field: &Field| form.text(field.name);
    if !errors.is_empty() {
        // The typed values are shown; the profile only says which sections there are.
        let caller = Caller {
            web,
            principal,
            csrf,
        };
        return section_page(&caller, &target, slug, typed, errors, "", &profile).await;
    }
    let answer = client(web)
        .update_profile(forward(
            principal,
            pb::UpdateProfileRequest {
                partner_id: target.partner_id.clone(),
                profile: Some(profile.clone()),
                update_mask: None,
            },
        ))
        .await;
    match answer {
        Ok(_) => {
            let then = form.text("then");
            let next = shown
                .iter()
                .position(|section| section.slug == slug)
                .and_then(|index| shown.get(index + 1));
            let to = match (then.as_str(), next) {
                ("continue", Some(next)) => format!("{}/{}", target.base, next.slug),
                ("continue", None) => format!("{}?saved=1", target.base),
                _ => format!("{}/{slug}?saved=1", target.base),
            };
            Ok(Redirect::to(&to).into_response())
        }
        Err(status) => {
            let errors = Errors::from_status(status, form_field)?;
            let caller = Caller {
                web,
                principal,
                csrf,
            };
            section_page(&caller, &target, slug, typed, errors, "", &profile).await
        }
    }
}

pub async fn own_edit(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    PartnerUser(principal, partner_id): PartnerUser,
    Path(slug): Path<String>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    edit(
        &web,
        &principal,
        &csrf,
        Target::own(partner_id),
        &slug,
        saved_notice(&query),
    )
    .await
}

pub async fn own_save(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    PartnerUser(principal, partner_id): PartnerUser,
    Path(slug): Path<String>,
    form: Form,
) -> Result<Response, PageError> {
    save(
        &web,
        &principal,
        &csrf,
        Target::own(partner_id),
        &slug,
        &form,
    )
    .await
}

pub async fn bank_edit(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path((id, slug)): Path<(String, String)>,
    Query(query): Query<NoticeQuery>,
) -> Result<Response, PageError> {
    let target = Target::of(path_id(&id)?);
    edit(&web, &principal, &csrf, target, &slug, saved_notice(&query)).await
}

pub async fn bank_save(
    State(web): State<Web>,
    Csrf(csrf): Csrf,
    Staff(principal): Staff,
    Path((id, slug)): Path<(String, String)>,
    form: Form,
) -> Result<Response, PageError> {
    let target = Target::of(path_id(&id)?);
    save(&web, &principal, &csrf, target, &slug, &form).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_reads_back_what_it_wrote() {
        let mut profile = pb::PartnerProfile::default();
        for section in sections() {
            for field in &section.fields {
                let text = match field.kind {
                    Kind::Number => "42",
                    Kind::Check => "1",
                    Kind::AgencyType => "18",
                    Kind::Emails => "a@x.test, b@x.test",
                    Kind::Areas => "Travis County, 60\nHays, 40",
                    _ => "Some text",
                };
                (field.set)(&mut profile, text).expect(field.name);
                let back = (field.get)(&profile);
                let expected = match field.kind {
                    Kind::Check => "yes",
                    Kind::Areas => "Travis County, 60\nHays, 40",
                    _ => text,
                };
                assert_eq!(back, expected, "{}", field.name);
            }
        }
        let names: std::collections::HashSet<_> = sections()
            .iter()
            .flat_map(|section| section.fields.iter().map(|field| field.name))
            .collect();
        assert_eq!(
            names.len(),
            sections()
                .iter()
                .map(|section| section.fields.len())
                .sum::<usize>(),
            "no field twice"
        );
    }

    #[test]
    fn bad_numbers_and_agency_types_are_named_not_stored() {
        let mut profile = pb::PartnerProfile::default();
        let fields = sections();
        let founded = fields
            .iter()
            .flat_map(|section| section.fields.iter())
            .find(|field| field.name == "agency_stability.founded")
            .expect("the founded field");
        assert!((founded.set)(&mut profile, "nineteen").is_err());
        assert!((agency_type_field().set)(&mut profile, "9999").is_err());
        assert!(parse_areas("Travis, sixty").is_err());
        assert_eq!(
            parse_areas("Travis County, 60%\n\nHays").expect("areas"),
            vec![
                pb::ServedArea {
                    county: "Travis County".into(),
                    client_share_percent: 60
                },
                pb::ServedArea {
                    county: "Hays".into(),
                    client_share_percent: 0
                },
            ]
        );
    }

    #[test]
    fn list_violations_land_on_the_field_that_holds_the_list() {
        assert_eq!(
            form_field("area_served.served_areas[1].county"),
            "area_served.served_areas"
        );
        assert_eq!(
            form_field("profile.pick_up_person.emails[0]"),
            "pick_up_person.emails"
        );
        assert_eq!(form_field("media_information"), "media_information");
    }

    #[test]
    fn the_media_rule_is_marked_until_met() {
        let media = sections()
            .into_iter()
            .find(|section| section.slug == "media_information")
            .expect("media");
        let mut profile = pb::PartnerProfile::default();
        assert!(wanting(&media, &profile).is_some());
        profile.media_information = Some(pb::MediaInformation {
            no_social_media_presence: true,
            ..Default::default()
        });
        assert!(wanting(&media, &profile).is_none());
    }
}
