//! RebuildDashboard's reading side: asks the owning parts for a bank's current state, on the
//! caller's behalf, and turns their answers into the rows the event handlers would have written
//! (the same columns, the same encoded distribution snapshot). No SQL here; the writing is
//! `repo::replace_*`, the order of the two `service::Notifications::rebuild_dashboard`.

use std::collections::{BTreeSet, HashMap};

use essentials_proto::events::v1::{
    BankRef, DistributionSnapshot, ItemLine, PartnerRef, PersonRef,
};
use essentials_proto::inventory::v1 as inventory;
use essentials_proto::partner::v1 as partner;
use essentials_proto::request::v1 as request;
use essentials_runtime::ServiceError;
use essentials_runtime::auth::Principal;
use prost::Message;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::domain::dashboard::{RequestStatus, distribution_state_name};
use crate::domain::emails::to_datetime;
use crate::repo::{DistributionRecord, NewRequest, OutstandingRequest, PartnerReview, StockLevel};
use crate::service::owners::Owners;
use essentials_runtime::convert::timestamp;

/// Everything the rebuild writes, each list in id order (see `repo::replace_*`).
#[derive(Debug, Clone, Default)]
pub struct RebuiltDashboard {
    pub requests: Vec<OutstandingRequest>,
    pub awaiting_review: Vec<PartnerReview>,
    pub stock: Vec<StockLevel>,
    pub distributions: Vec<DistributionRecord>,
    /// Distributions the projection holds as scheduled that the inventory part no longer has.
    pub reclaimed: Vec<Uuid>,
}

fn parse_id(what: &str, text: &str) -> Option<Uuid> {
    let parsed = Uuid::parse_str(text.trim()).ok();
    if parsed.is_none() {
        // An owner answering a malformed id is a bug there; one bad row must not stop the rebuild.
        tracing::warn!(
            what,
            id = text,
            "an owning part answered an invalid id; row skipped"
        );
    }
    parsed
}

/// Reads the bank's current state. `as_of` stamps the rows; `from` (the start of today) bounds
/// the distributions read: the dashboard counts this week's from today and the reminders look at
/// tomorrow's, so earlier ones are left as they are. `projected` are the distributions the
/// projection holds as scheduled from `from` on: those the inventory part no longer lists there
/// are looked up one by one (moved to an earlier day, or reclaimed).
pub async fn read(
    owners: &Owners,
    principal: &Principal,
    as_of: OffsetDateTime,
    from: OffsetDateTime,
    projected: &[Uuid],
) -> Result<RebuiltDashboard, ServiceError> {
    let requests = outstanding_requests(owners, principal).await?;
    let awaiting_review = awaiting_review(owners, principal, as_of).await?;
    let items = owners.items(principal).await?;
    let balances = owners.bank_wide_stock(principal).await?;
    let stock = stock_levels(&items, &balances, as_of);
    let (distributions, reclaimed) =
        distributions(owners, principal, from, projected, &items).await?;
    Ok(RebuiltDashboard {
        requests,
        awaiting_review,
        stock,
        distributions,
        reclaimed,
    })
}

// ---- requests -----------------------------------------------------------------------------------

async fn outstanding_requests(
    owners: &Owners,
    principal: &Principal,
) -> Result<Vec<OutstandingRequest>, ServiceError> {
    let requests = owners.outstanding_requests(principal).await?;
    // ListRequests names the partner by id only; request.created carried its name.
    let partner_ids: Vec<String> = requests
        .iter()
        .map(|request| request.partner_id.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let partners = owners.partners_by_id(principal, &partner_ids).await?;
    let mut rows: Vec<OutstandingRequest> = requests
        .iter()
        .filter_map(|request| outstanding_request(request, &partners))
        .collect();
    rows.sort_by_key(|row| row.request.request_id);
    Ok(rows)
}

/// The row request.created (and request.started) would have left for this request.
fn outstanding_request(
    request: &request::Request,
    partners: &HashMap<String, partner::Partner>,
) -> Option<OutstandingRequest> {
    let status = match request.status() {
        request::RequestStatus::Pending => RequestStatus::Pending,
        request::RequestStatus::Started => RequestStatus::Started,
        // Asked for pending and started only; anything else is not outstanding.
        _ => return None,
    };
    let request_id = parse_id("request id", &request.id)?;
    // Without created_at a row is never shown, so a request without one is not worth a row.
    let created_at = to_datetime(request.created_at.as_ref())?;
    Some(OutstandingRequest {
        request: NewRequest {
            request_id,
            partner_id: Uuid::parse_str(&request.partner_id).ok(),
            partner_name: partners
                .get(&request.partner_id)
                .map(|partner| partner.name.clone())
                .unwrap_or_default(),
            requester_name: request.requester_name.clone(),
            requester_email: request.requester_email.clone(),
            comments: request.comments.clone(),
            created_at,
        },
        status,
    })
}

// ---- partners -----------------------------------------------------------------------------------

async fn awaiting_review(
    owners: &Owners,
    principal: &Principal,
    as_of: OffsetDateTime,
) -> Result<Vec<PartnerReview>, ServiceError> {
    let partners = owners
        .partners_with_status(principal, partner::PartnerStatus::AwaitingReview)
        .await?;
    let mut rows = Vec::with_capacity(partners.len());
    for partner in &partners {
        let Some(partner_id) = parse_id("partner id", &partner.id) else {
            continue;
        };
        // The primary contact lives in the profile; GetPartnerContacts answers it in one call.
        // A partner gone since the list (never: only uninvited partners are deletable) is skipped.
        let Some(contacts) = owners.contacts(principal, &partner.id).await? else {
            continue;
        };
        rows.push(PartnerReview {
            partner_id,
            name: partner.name.clone(),
            primary_contact_name: contacts.primary_contact_name,
            primary_contact_email: contacts.primary_contact_email,
            awaiting_review: true,
            // As partner.approval_requested says it; the reference shows updated_at.
            review_requested_at: to_datetime(partner.review_requested_at.as_ref())
                .or_else(|| to_datetime(partner.updated_at.as_ref())),
            as_of,
        });
    }
    rows.sort_by_key(|row| row.partner_id);
    Ok(rows)
}

// ---- stock --------------------------------------------------------------------------------------

/// Every item's bank-wide level with its thresholds, as stock.changed reports levels. Which are
/// low is not decided here: the dashboard's read applies the one rule
/// (`domain::dashboard::is_low`, repeated in `repo::load_dashboard`'s SQL) to rebuilt rows and to
/// rows from events alike, the rule the inventory part applies when it publishes stock.low.
pub fn stock_levels(
    items: &[inventory::Item],
    balances: &[inventory::StockBalance],
    as_of: OffsetDateTime,
) -> Vec<StockLevel> {
    let mut bank_wide: HashMap<&str, i64> = HashMap::new();
    for balance in balances {
        // One row per item in a bank-wide answer; summing also holds if a part answers per location.
        *bank_wide.entry(balance.item_id.as_str()).or_insert(0) += i64::from(balance.quantity);
    }
    let mut levels: Vec<StockLevel> = items
        .iter()
        .filter_map(|item| {
            let item_id = parse_id("item id", &item.id)?;
            let quantity = bank_wide.get(item.id.as_str()).copied().unwrap_or(0);
            Some(StockLevel {
                item_id,
                name: item.name.clone(),
                quantity: i32::try_from(quantity).unwrap_or(i32::MAX),
                minimum: item.on_hand_minimum_quantity.unwrap_or(0),
                recommended: item.on_hand_recommended_quantity.unwrap_or(0),
                as_of,
            })
        })
        .collect();
    levels.sort_by_key(|level| level.item_id);
    levels
}

// ---- distributions ------------------------------------------------------------------------------

async fn distributions(
    owners: &Owners,
    principal: &Principal,
    from: OffsetDateTime,
    projected: &[Uuid],
    items: &[inventory::Item],
) -> Result<(Vec<DistributionRecord>, Vec<Uuid>), ServiceError> {
    let mut distributions = owners
        .distributions_issued_from(principal, timestamp(from))
        .await?;
    let listed: BTreeSet<String> = distributions
        .iter()
        .map(|distribution| distribution.id.clone())
        .collect();
    let mut reclaimed = Vec::new();
    for distribution_id in projected {
        let id = distribution_id.to_string();
        if listed.contains(&id) {
            continue;
        }
        match owners.distribution(principal, &id).await? {
            Some(moved) => distributions.push(moved),
            None => reclaimed.push(*distribution_id),
        }
    }
    if distributions.is_empty() {
        return Ok((Vec::new(), reclaimed));
    }

    // What a distribution event's snapshot carries beyond the Distribution message, asked once
    // per partner, request and bank: the partner's contacts and the bank's texts, the requester,
    // the location's name and time zone, item names and values.
    let mut contacts = HashMap::new();
    let mut requesters = HashMap::new();
    for distribution in &distributions {
        if !contacts.contains_key(&distribution.partner_id) {
            let found = owners.contacts(principal, &distribution.partner_id).await?;
            contacts.insert(distribution.partner_id.clone(), found);
        }
        if !distribution.request_id.is_empty() && !requesters.contains_key(&distribution.request_id)
        {
            let found = owners.request(principal, &distribution.request_id).await?;
            requesters.insert(
                distribution.request_id.clone(),
                found.map(|r| requester(&r)),
            );
        }
    }
    let locations = owners.storage_locations(principal).await?;
    let locations: HashMap<&str, &inventory::StorageLocation> = locations
        .iter()
        .map(|location| (location.id.as_str(), location))
        .collect();
    let items: HashMap<&str, &inventory::Item> =
        items.iter().map(|item| (item.id.as_str(), item)).collect();

    let mut records: Vec<DistributionRecord> = distributions
        .iter()
        .filter_map(|distribution| {
            let distribution_id = parse_id("distribution id", &distribution.id)?;
            let issued_at = to_datetime(distribution.issued_at.as_ref())?;
            let snapshot = distribution_snapshot(
                distribution,
                contacts
                    .get(&distribution.partner_id)
                    .and_then(Option::as_ref),
                locations
                    .get(distribution.storage_location_id.as_str())
                    .copied(),
                &items,
                requesters.get(&distribution.request_id).cloned().flatten(),
            );
            Some(DistributionRecord {
                distribution_id,
                issued_at,
                state: distribution_state_name(distribution.state()),
                snapshot: snapshot.encode_to_vec(),
            })
        })
        .collect();
    records.sort_by_key(|record| record.distribution_id);
    reclaimed.sort();
    Ok((records, reclaimed))
}

/// One distribution's snapshot as its next event would carry it, read now from the owning parts
/// with the caller's token (the receipt a bank prints or a partner downloads); `None` when the
/// inventory part has no such distribution for the caller. Storage locations are bank staff's to
/// list, so a partner's copy names no location.
pub async fn current_snapshot(
    owners: &Owners,
    principal: &Principal,
    distribution_id: &str,
) -> Result<Option<DistributionSnapshot>, ServiceError> {
    let Some(distribution) = owners.distribution(principal, distribution_id).await? else {
        return Ok(None);
    };
    let contacts = owners.contacts(principal, &distribution.partner_id).await?;
    let requester = if distribution.request_id.is_empty() {
        None
    } else {
        owners
            .request(principal, &distribution.request_id)
            .await?
            .map(|found| requester(&found))
    };
    let locations = if principal.is_bank_staff() {
        owners.storage_locations(principal).await?
    } else {
        Vec::new()
    };
    let location = locations
        .iter()
        .find(|location| location.id == distribution.storage_location_id);
    let items = owners.items(principal).await?;
    let items: HashMap<&str, &inventory::Item> =
        items.iter().map(|item| (item.id.as_str(), item)).collect();
    Ok(Some(distribution_snapshot(
        &distribution,
        contacts.as_ref(),
        location,
        &items,
        requester,
    )))
}

fn requester(request: &request::Request) -> PersonRef {
    PersonRef {
        user_id: request.requester_user_id.clone(),
        name: request.requester_name.clone(),
        email: request.requester_email.clone(),
    }
}

/// The snapshot the inventory part's distribution events carry, from the distribution and what
/// the other parts answer about it. Without the partner's contacts (the partner is gone) the
/// partner and bank are left empty: the reminder then finds no address and sends nothing, as it
/// should for a partner that no longer exists.
pub fn distribution_snapshot(
    distribution: &inventory::Distribution,
    contacts: Option<&partner::GetPartnerContactsResponse>,
    location: Option<&inventory::StorageLocation>,
    items: &HashMap<&str, &inventory::Item>,
    requester: Option<PersonRef>,
) -> DistributionSnapshot {
    DistributionSnapshot {
        distribution_id: distribution.id.clone(),
        bank: contacts.map(|contacts| BankRef {
            organization_id: contacts.organization_id.clone(),
            name: contacts.organization_name.clone(),
            email: contacts.organization_email.clone(),
        }),
        partner: contacts.map(|contacts| PartnerRef {
            partner_id: contacts.partner_id.clone(),
            name: contacts.partner_name.clone(),
            email: contacts.partner_email.clone(),
            status: contacts.status,
            send_reminders: contacts.send_reminders,
        }),
        pick_up_emails: contacts
            .map(|contacts| contacts.pick_up_emails.clone())
            .unwrap_or_default(),
        request_id: distribution.request_id.clone(),
        requester,
        storage_location_id: distribution.storage_location_id.clone(),
        storage_location_name: location
            .map(|location| location.name.clone())
            .unwrap_or_default(),
        time_zone: location
            .map(|location| location.time_zone.clone())
            .unwrap_or_default(),
        issued_at: distribution.issued_at,
        delivery_method: distribution.delivery_method,
        shipping_cost_in_cents: distribution.shipping_cost_in_cents,
        comment: distribution.comment.clone(),
        agency_rep: distribution.agency_rep.clone(),
        state: distribution.state,
        reminder_email_enabled: distribution.reminder_email_enabled,
        items: distribution
            .line_items
            .iter()
            .map(|line| {
                let item = items.get(line.item_id.as_str());
                ItemLine {
                    item_id: line.item_id.clone(),
                    item_name: item.map(|item| item.name.clone()).unwrap_or_default(),
                    quantity: line.quantity,
                    value_in_cents: item.map(|item| item.value_in_cents).unwrap_or(0),
                    persons: 0,
                }
            })
            .collect(),
        total_quantity: distribution.total_quantity,
        total_value_in_cents: distribution.total_value_in_cents,
        default_email_text: contacts
            .map(|contacts| contacts.default_email_text.clone())
            .unwrap_or_default(),
        created_at: distribution.created_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::dashboard::is_low;
    use time::macros::datetime;

    fn item(
        id: Uuid,
        name: &str,
        minimum: Option<i32>,
        recommended: Option<i32>,
    ) -> inventory::Item {
        inventory::Item {
            id: id.to_string(),
            name: name.into(),
            on_hand_minimum_quantity: minimum,
            on_hand_recommended_quantity: recommended,
            value_in_cents: 25,
            ..Default::default()
        }
    }

    #[test]
    fn every_item_gets_its_bank_wide_level_and_thresholds() {
        let as_of = datetime!(2026-11-25 12:00 UTC);
        let (low, fine, unstocked) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let items = [
            item(low, "Diapers", Some(100), Some(200)),
            item(fine, "Wipes", None, Some(10)),
            item(unstocked, "Pads", Some(5), None),
            inventory::Item {
                id: "not-a-uuid".into(),
                ..Default::default()
            },
        ];
        let balances = [
            inventory::StockBalance {
                item_id: low.to_string(),
                quantity: 40,
                ..Default::default()
            },
            inventory::StockBalance {
                item_id: fine.to_string(),
                quantity: 10,
                ..Default::default()
            },
        ];
        let levels = stock_levels(&items, &balances, as_of);
        assert_eq!(levels.len(), 3, "the malformed item is skipped");
        let by_id: HashMap<Uuid, &StockLevel> =
            levels.iter().map(|level| (level.item_id, level)).collect();
        let diapers = by_id[&low];
        assert_eq!(
            (diapers.quantity, diapers.minimum, diapers.recommended),
            (40, 100, 200)
        );
        assert!(is_low(
            diapers.quantity,
            diapers.minimum,
            diapers.recommended
        ));
        let wipes = by_id[&fine];
        assert!(!is_low(wipes.quantity, wipes.minimum, wipes.recommended));
        let pads = by_id[&unstocked];
        assert_eq!(pads.quantity, 0, "no balance is none on hand");
        assert!(is_low(pads.quantity, pads.minimum, pads.recommended));
        assert!(levels.iter().all(|level| level.as_of == as_of));
        assert!(
            levels
                .windows(2)
                .all(|pair| pair[0].item_id < pair[1].item_id)
        );
    }

    #[test]
    fn outstanding_requests_take_the_partner_name_and_skip_the_rest() {
        let partner_id = Uuid::now_v7().to_string();
        let partners = HashMap::from([(
            partner_id.clone(),
            partner::Partner {
                id: partner_id.clone(),
                name: "Little Ones".into(),
                ..Default::default()
            },
        )]);
        let created = datetime!(2026-11-20 09:00 UTC);
        let started = request::Request {
            id: Uuid::now_v7().to_string(),
            partner_id: partner_id.clone(),
            status: request::RequestStatus::Started as i32,
            requester_name: "Jane".into(),
            requester_email: "jane@little.test".into(),
            comments: "Urgent".into(),
            created_at: Some(timestamp(created)),
            ..Default::default()
        };
        let row = outstanding_request(&started, &partners).expect("outstanding");
        assert_eq!(row.status, RequestStatus::Started);
        assert_eq!(row.request.partner_name, "Little Ones");
        assert_eq!(row.request.created_at, created);
        assert_eq!(row.request.requester_email, "jane@little.test");
        let mut fulfilled = started.clone();
        fulfilled.status = request::RequestStatus::Fulfilled as i32;
        assert!(outstanding_request(&fulfilled, &partners).is_none());
        let mut undated = started;
        undated.created_at = None;
        assert!(outstanding_request(&undated, &partners).is_none());
    }

    #[test]
    fn a_snapshot_carries_what_distribution_events_carry() {
        let item_id = Uuid::now_v7();
        let wipes = item(item_id, "Wipes", None, None);
        let items = HashMap::from([(wipes.id.as_str(), &wipes)]);
        let distribution = inventory::Distribution {
            id: Uuid::now_v7().to_string(),
            partner_id: Uuid::now_v7().to_string(),
            storage_location_id: Uuid::now_v7().to_string(),
            issued_at: Some(timestamp(datetime!(2026-11-26 15:00 UTC))),
            state: inventory::DistributionState::Scheduled as i32,
            reminder_email_enabled: true,
            line_items: vec![essentials_proto::common::v1::LineItem {
                item_id: item_id.to_string(),
                quantity: 12,
            }],
            total_quantity: 12,
            total_value_in_cents: 300,
            ..Default::default()
        };
        let contacts = partner::GetPartnerContactsResponse {
            partner_id: distribution.partner_id.clone(),
            partner_name: "Little Ones".into(),
            partner_email: "partner@little.test".into(),
            send_reminders: true,
            pick_up_emails: vec!["pickup@little.test".into()],
            organization_name: "North".into(),
            default_email_text: "Hello {partner_name}".into(),
            ..Default::default()
        };
        let location = inventory::StorageLocation {
            id: distribution.storage_location_id.clone(),
            name: "Main".into(),
            time_zone: "America/Chicago".into(),
            ..Default::default()
        };
        let snapshot = distribution_snapshot(
            &distribution,
            Some(&contacts),
            Some(&location),
            &items,
            None,
        );
        assert_eq!(
            snapshot.partner.as_ref().map(|p| p.send_reminders),
            Some(true)
        );
        assert_eq!(
            snapshot.bank.as_ref().map(|b| b.name.as_str()),
            Some("North")
        );
        assert_eq!(snapshot.pick_up_emails, vec!["pickup@little.test"]);
        assert_eq!(snapshot.storage_location_name, "Main");
        assert_eq!(snapshot.time_zone, "America/Chicago");
        assert_eq!(snapshot.items[0].item_name, "Wipes");
        assert_eq!(snapshot.items[0].value_in_cents, 25);
        assert!(snapshot.reminder_email_enabled);
        // The distribution reminder reads it as it reads an event's snapshot.
        let day_before = datetime!(2026-11-25 00:00 UTC);
        let reminder = crate::domain::emails::distribution_reminder(&snapshot, day_before)
            .expect("a reminder");
        assert_eq!(reminder.to, "partner@little.test");
        let orphan = distribution_snapshot(&distribution, None, None, &items, None);
        assert!(crate::domain::emails::distribution_reminder(&orphan, day_before).is_none());
    }
}
