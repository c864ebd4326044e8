//! Small HTTP pieces the gateway's API and the web pages both answer with.

/// `Content-Disposition` for a file shown in the browser (a PDF opens in its viewer) and saved
/// under `file_name`. The plain `filename` is an ASCII rendering, safe inside quotes; `filename*`
/// (RFC 6266 / 8187) carries the real name for browsers that read it.
pub fn inline_file(file_name: &str) -> String {
    let ascii: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for byte in file_name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("inline; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

/// A PDF answered for the browser to show, saved under `file_name`.
pub fn inline_pdf(file_name: &str, pdf: Vec<u8>) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    (
        [
            (header::CONTENT_TYPE, "application/pdf".to_owned()),
            (header::CONTENT_DISPOSITION, inline_file(file_name)),
        ],
        pdf,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_safe_in_quotes_and_kept_in_full_in_the_extended_form() {
        assert_eq!(
            inline_file("Café \"Hope\" 2026-12-07.pdf"),
            "inline; filename=\"Caf_ _Hope_ 2026-12-07.pdf\"; \
             filename*=UTF-8''Caf%C3%A9%20%22Hope%22%202026-12-07.pdf"
        );
    }
}
