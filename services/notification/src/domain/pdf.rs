//! The distribution receipt as a one-page PDF, written by hand: a text page needs a catalog, a
//! page tree, a page, a font and a content stream, which is shorter than a PDF dependency.

use essentials_proto::events::v1::DistributionSnapshot;

use super::emails::{delivery_method_words, to_datetime, us_date};

/// Lines that fit on one A4/Letter page at 10 pt; the rest are summarised.
const MAX_ITEM_LINES: usize = 40;

fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let cents = cents.unsigned_abs();
    format!("{sign}${}.{:02}", cents / 100, cents % 100)
}

/// The receipt's text lines: bank, partner, date, method, items with quantities and values.
pub fn receipt_lines(distribution: &DistributionSnapshot) -> Vec<(f32, String)> {
    let bank = distribution.bank.clone().unwrap_or_default();
    let partner = distribution.partner.clone().unwrap_or_default();
    let issued = to_datetime(distribution.issued_at.as_ref())
        .map(|time| us_date(time.date()))
        .unwrap_or_default();
    let mut lines: Vec<(f32, String)> = vec![
        (16.0, bank.name.clone()),
        (10.0, bank.email.clone()),
        (10.0, String::new()),
        (
            13.0,
            format!("Distribution receipt {}", distribution.distribution_id),
        ),
        (
            10.0,
            format!("Issued to: {} <{}>", partner.name, partner.email),
        ),
        (10.0, format!("Issued on: {issued}")),
        (
            10.0,
            format!(
                "Method: {}",
                delivery_method_words(distribution.delivery_method())
            ),
        ),
    ];
    // A partner's own copy is read without the bank's location list.
    if !distribution.storage_location_name.is_empty() {
        lines.push((
            10.0,
            format!("From: {}", distribution.storage_location_name),
        ));
    }
    if !distribution.comment.is_empty() {
        lines.push((10.0, format!("Comments: {}", distribution.comment)));
    }
    lines.push((10.0, String::new()));
    lines.push((
        11.0,
        format!(
            "{:<44}{:>10}{:>14}{:>16}",
            "Item", "Quantity", "Value/item", "In-kind value"
        ),
    ));
    for item in distribution.items.iter().take(MAX_ITEM_LINES) {
        let mut name: String = item.item_name.chars().take(42).collect();
        if item.item_name.chars().count() > 42 {
            name.push('~');
        }
        lines.push((
            10.0,
            format!(
                "{:<44}{:>10}{:>14}{:>16}",
                name,
                item.quantity,
                money(item.value_in_cents),
                money(item.value_in_cents.saturating_mul(i64::from(item.quantity)))
            ),
        ));
    }
    if distribution.items.len() > MAX_ITEM_LINES {
        lines.push((
            10.0,
            format!(
                "... and {} more items",
                distribution.items.len() - MAX_ITEM_LINES
            ),
        ));
    }
    lines.push((
        11.0,
        format!(
            "{:<44}{:>10}{:>14}{:>16}",
            "Total",
            distribution.total_quantity,
            "",
            money(distribution.total_value_in_cents)
        ),
    ));
    if distribution.shipping_cost_in_cents > 0 {
        lines.push((
            10.0,
            format!(
                "Shipping cost: {}",
                money(distribution.shipping_cost_in_cents)
            ),
        ));
    }
    lines
}

/// A string for a PDF text operator: Latin-1 bytes (others become `?`), with `\ ( )` escaped.
fn pdf_string(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2);
    out.push(b'(');
    for character in text.chars() {
        let byte = u8::try_from(u32::from(character)).unwrap_or(b'?');
        if matches!(byte, b'\\' | b'(' | b')') {
            out.push(b'\\');
        }
        out.push(if byte < 0x20 { b' ' } else { byte });
    }
    out.push(b')');
    out
}

/// The receipt PDF.
pub fn receipt(distribution: &DistributionSnapshot) -> Vec<u8> {
    let mut content: Vec<u8> = b"BT\n".to_vec();
    let mut y = 800.0_f32;
    for (size, line) in receipt_lines(distribution) {
        // Courier keeps the item table in columns.
        let font = if size > 10.5 { "F2" } else { "F1" };
        content.extend_from_slice(format!("/{font} {size} Tf 1 0 0 1 40 {y:.1} Tm ").as_bytes());
        content.extend(pdf_string(&line));
        content.extend_from_slice(b" Tj\n");
        y -= size * 1.5;
    }
    content.extend_from_slice(b"ET\n");

    let objects: Vec<Vec<u8>> = vec![
        b"<< /Type /Catalog /Pages 2 0 R >>".to_vec(),
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_vec(),
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R /F2 5 0 R >> >> /Contents 6 0 R >>".to_vec(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>".to_vec(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier-Bold /Encoding /WinAnsiEncoding >>".to_vec(),
        {
            let mut stream = format!("<< /Length {} >>\nstream\n", content.len()).into_bytes();
            stream.extend_from_slice(&content);
            stream.extend_from_slice(b"endstream");
            stream
        },
    ];
    let mut pdf: Vec<u8> = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n".to_vec();
    let mut offsets = Vec::with_capacity(objects.len());
    for (index, object) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.extend_from_slice(format!("{} 0 obj\n", index + 1).as_bytes());
        pdf.extend_from_slice(object);
        pdf.extend_from_slice(b"\nendobj\n");
    }
    let xref_at = pdf.len();
    pdf.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for offset in offsets {
        pdf.extend_from_slice(format!("{offset:010} 00000 n \n").as_bytes());
    }
    pdf.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref_at}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    pdf
}

#[cfg(test)]
mod tests {
    use super::*;
    use essentials_proto::events::v1::{BankRef, ItemLine, PartnerRef};

    fn snapshot() -> DistributionSnapshot {
        DistributionSnapshot {
            distribution_id: "d-1".into(),
            bank: Some(BankRef {
                organization_id: "o".into(),
                name: "Diaper Bank (North)".into(),
                email: "bank@example.org".into(),
            }),
            partner: Some(PartnerRef {
                name: "Café Partner".into(),
                email: "p@example.org".into(),
                ..PartnerRef::default()
            }),
            items: vec![ItemLine {
                item_name: "Diapers Size 4".into(),
                quantity: 50,
                value_in_cents: 25,
                ..ItemLine::default()
            }],
            total_quantity: 50,
            total_value_in_cents: 1250,
            ..DistributionSnapshot::default()
        }
    }

    #[test]
    fn receipt_is_a_well_formed_pdf_with_the_items() {
        let pdf = receipt(&snapshot());
        assert!(pdf.starts_with(b"%PDF-1.4"));
        assert!(pdf.ends_with(b"%%EOF\n"));
        let text = String::from_utf8_lossy(&pdf);
        assert!(
            text.contains("Diaper Bank \\(North\\)"),
            "parentheses escaped"
        );
        assert!(text.contains("Diapers Size 4"));
        assert!(text.contains("$12.50"));
        // Every xref offset points at its object.
        let xref_at: usize = text
            .rsplit("startxref\n")
            .next()
            .and_then(|rest| rest.lines().next())
            .and_then(|number| number.parse().ok())
            .expect("startxref");
        assert!(pdf[xref_at..].starts_with(b"xref"));
        let table = String::from_utf8_lossy(&pdf[xref_at..]);
        for (index, line) in table.lines().skip(3).take(6).enumerate() {
            let offset: usize = line[..10].parse().expect("offset");
            assert!(
                pdf[offset..].starts_with(format!("{} 0 obj", index + 1).as_bytes()),
                "object {}",
                index + 1
            );
        }
    }

    #[test]
    fn non_latin1_text_is_replaced_not_broken() {
        assert_eq!(pdf_string("a(b)\\ é 🙂"), b"(a\\(b\\)\\\\ \xe9 ?)".to_vec());
    }

    #[test]
    fn money_formats_cents() {
        assert_eq!(money(1250), "$12.50");
        assert_eq!(money(5), "$0.05");
        assert_eq!(money(-199), "-$1.99");
    }
}
