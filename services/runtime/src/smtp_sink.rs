//! A real SMTP listener for tests: a tokio TCP server on `127.0.0.1` that speaks enough SMTP for
//! lettre and most clients (EHLO/HELO, MAIL FROM, RCPT TO, DATA, RSET, NOOP, QUIT) and keeps every
//! message it accepts.
//!
//! ```no_run
//! # async fn example() -> std::io::Result<()> {
//! use essentials_runtime::smtp_sink::SmtpSink;
//! let sink = SmtpSink::start().await?;
//! // settings.smtp.url = Some(sink.url());
//! let mail = sink.wait_for(1, std::time::Duration::from_secs(10)).await;
//! assert_eq!(mail[0].subject().as_deref(), Some("Application Approved"));
//! sink.stop().await; // connections refused from now on ("SMTP down")
//! sink.restart().await?; // the same port again ("SMTP up")
//! # Ok(()) }
//! ```

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// The largest message the sink accepts (bigger ones are refused with 552).
const MAX_MESSAGE_BYTES: usize = 20 * 1024 * 1024;

/// One message the sink accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`), without angle brackets.
    pub from: String,
    /// The envelope recipients (`RCPT TO`) in order, without angle brackets: To, Cc and Bcc alike.
    pub recipients: Vec<String>,
    /// The message as sent after `DATA` (headers and body, dot-stuffing undone, CRLF line ends).
    pub data: String,
}

impl ReceivedMail {
    /// The unfolded value of the first header with this name (case-insensitive), with RFC 2047
    /// encoded words (`=?utf-8?b?…?=`) decoded.
    pub fn header(&self, name: &str) -> Option<String> {
        header_in(head_of(&self.data), name).map(|value| decode_encoded_words(&value))
    }

    pub fn subject(&self) -> Option<String> {
        self.header("Subject")
    }

    /// Addresses of the `To` header (lower-case, without display names).
    pub fn to(&self) -> Vec<String> {
        self.header("To")
            .map(|value| addresses(&value))
            .unwrap_or_default()
    }

    /// Addresses of the `Cc` header (lower-case, without display names).
    pub fn cc(&self) -> Vec<String> {
        self.header("Cc")
            .map(|value| addresses(&value))
            .unwrap_or_default()
    }

    /// The decoded `text/plain` part (the whole body for a single-part plain message).
    pub fn text_body(&self) -> Option<String> {
        find_part(&self.data, &|headers| {
            content_type(headers).starts_with("text/plain") && !is_attachment(headers)
        })
        .map(|part| String::from_utf8_lossy(&part).into_owned())
    }

    /// The decoded `text/html` part.
    pub fn html_body(&self) -> Option<String> {
        find_part(&self.data, &|headers| {
            content_type(headers).starts_with("text/html") && !is_attachment(headers)
        })
        .map(|part| String::from_utf8_lossy(&part).into_owned())
    }

    /// File names of the attachments.
    pub fn attachment_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        walk_parts(&self.data, &mut |headers, _body| {
            if is_attachment(headers)
                && let Some(name) = parameter(headers, "filename")
            {
                names.push(name);
            }
        });
        names
    }

    /// The decoded content of the attachment with this file name.
    pub fn attachment(&self, file_name: &str) -> Option<Vec<u8>> {
        find_part(&self.data, &|headers| {
            is_attachment(headers) && parameter(headers, "filename").as_deref() == Some(file_name)
        })
    }
}

#[derive(Default)]
struct State {
    messages: Vec<ReceivedMail>,
    /// Recipients refused with a permanent 550 at `RCPT TO`.
    rejected: HashSet<String>,
}

struct Running {
    accept: tokio::task::JoinHandle<()>,
}

/// A running (or stopped) SMTP sink. Dropping it stops it.
pub struct SmtpSink {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    running: tokio::sync::Mutex<Option<Running>>,
}

impl SmtpSink {
    /// Starts a sink on a free loopback port.
    pub async fn start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let sink = Self {
            address,
            state: Arc::new(Mutex::new(State::default())),
            running: tokio::sync::Mutex::new(None),
        };
        *sink.running.lock().await = Some(sink.spawn(listener));
        Ok(sink)
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `smtp://127.0.0.1:<port>`, for `settings.smtp.url`.
    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    /// Stops listening and cuts every open connection: clients get "connection refused".
    pub async fn stop(&self) {
        if let Some(running) = self.running.lock().await.take() {
            // Aborting the accept loop drops its listener and its JoinSet of sessions.
            running.accept.abort();
            let _ = running.accept.await;
        }
    }

    /// Listens again on the same port (after [`stop`](Self::stop)); a no-op while running.
    pub async fn restart(&self) -> std::io::Result<()> {
        let mut running = self.running.lock().await;
        if running.is_some() {
            return Ok(());
        }
        // The port may linger for a moment after the old listener closed.
        let started = Instant::now();
        let listener = loop {
            match TcpListener::bind(self.address).await {
                Ok(listener) => break listener,
                Err(error) if started.elapsed() > Duration::from_secs(5) => return Err(error),
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        *running = Some(self.spawn(listener));
        Ok(())
    }

    /// Every message accepted so far, oldest first.
    pub fn messages(&self) -> Vec<ReceivedMail> {
        self.lock().messages.clone()
    }

    pub fn count(&self) -> usize {
        self.lock().messages.len()
    }

    /// Forgets the messages received so far.
    pub fn clear(&self) {
        self.lock().messages.clear();
    }

    /// Messages sent to this address (as an envelope recipient: To, Cc or Bcc).
    pub fn messages_to(&self, address: &str) -> Vec<ReceivedMail> {
        let wanted = address.to_lowercase();
        self.lock()
            .messages
            .iter()
            .filter(|mail| {
                mail.recipients
                    .iter()
                    .any(|recipient| recipient.to_lowercase() == wanted)
            })
            .cloned()
            .collect()
    }

    /// Refuses this recipient with a permanent `550` from now on (a bad address).
    pub fn reject_recipient(&self, address: &str) {
        self.lock().rejected.insert(address.to_lowercase());
    }

    /// Waits until at least `count` messages have arrived and returns them all; panics after
    /// `timeout` (a test failure that names what was received).
    pub async fn wait_for(&self, count: usize, timeout: Duration) -> Vec<ReceivedMail> {
        let started = Instant::now();
        loop {
            let messages = self.messages();
            if messages.len() >= count {
                return messages;
            }
            assert!(
                started.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {count} e-mails; got {}: {:?}",
                messages.len(),
                messages
                    .iter()
                    .map(|mail| (mail.recipients.clone(), mail.subject()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until at least `count` e-mails went to `address`; fails the test at the timeout.
    pub async fn wait_for_to(
        &self,
        address: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<ReceivedMail> {
        let started = Instant::now();
        loop {
            let messages = self.messages_to(address);
            if messages.len() >= count {
                return messages;
            }
            assert!(
                started.elapsed() < timeout,
                "timed out after {timeout:?} waiting for {count} e-mails to {address}; got {}",
                messages.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn spawn(&self, listener: TcpListener) -> Running {
        let state = self.state.clone();
        let accept = tokio::spawn(async move {
            let mut sessions = JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((stream, _)) => {
                            sessions.spawn(session(stream, state.clone()));
                        }
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    },
                    Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
                }
            }
        });
        Running { accept }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Ok(mut running) = self.running.try_lock()
            && let Some(running) = running.take()
        {
            running.accept.abort();
        }
    }
}

/// One client connection: a small SMTP state machine.
async fn session(stream: TcpStream, state: Arc<Mutex<State>>) {
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    if writer
        .write_all(b"220 essentials-smtp-sink ESMTP ready\r\n")
        .await
        .is_err()
    {
        return;
    }
    let mut from: Option<String> = None;
    let mut recipients: Vec<String> = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end();
        let verb = command
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_uppercase();
        let reply: String = match verb.as_str() {
            "EHLO" => {
                "250-essentials-smtp-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 SIZE 20971520\r\n"
                    .into()
            }
            "HELO" => "250 essentials-smtp-sink\r\n".into(),
            "MAIL" => {
                from = Some(angle_address(command));
                recipients.clear();
                "250 OK\r\n".into()
            }
            "RCPT" => {
                let recipient = angle_address(command);
                let rejected = state
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .rejected
                    .contains(&recipient.to_lowercase());
                if from.is_none() {
                    "503 MAIL first\r\n".into()
                } else if rejected {
                    "550 No such user here\r\n".into()
                } else {
                    recipients.push(recipient);
                    "250 OK\r\n".into()
                }
            }
            "DATA" => {
                if from.is_none() || recipients.is_empty() {
                    "503 MAIL and RCPT first\r\n".into()
                } else {
                    if writer
                        .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                    match read_data(&mut reader).await {
                        Some(data) if data.len() <= MAX_MESSAGE_BYTES => {
                            let mail = ReceivedMail {
                                from: from.take().unwrap_or_default(),
                                recipients: std::mem::take(&mut recipients),
                                data,
                            };
                            state
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .messages
                                .push(mail);
                            "250 OK queued\r\n".into()
                        }
                        Some(_) => {
                            from = None;
                            recipients.clear();
                            "552 Message too big\r\n".into()
                        }
                        None => return,
                    }
                }
            }
            "RSET" => {
                from = None;
                recipients.clear();
                "250 OK\r\n".into()
            }
            "NOOP" => "250 OK\r\n".into(),
            "QUIT" => {
                let _ = writer.write_all(b"221 Bye\r\n").await;
                return;
            }
            _ => "500 Command not recognized\r\n".into(),
        };
        if writer.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads the DATA section up to the lone dot; undoes dot-stuffing. `None` if the client left.
async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> Option<String> {
    let mut data = String::new();
    let mut line = String::new();
    loop {
        line.clear();
        let read = reader.read_line(&mut line).await.ok()?;
        if read == 0 {
            return None;
        }
        let content = line.trim_end_matches(['\r', '\n']);
        if content == "." {
            return Some(data);
        }
        let content = content
            .strip_prefix('.')
            .filter(|_| content.starts_with(".."))
            .unwrap_or(content);
        if data.len() <= MAX_MESSAGE_BYTES {
            data.push_str(content);
            data.push_str("\r\n");
        }
    }
}

/// `MAIL FROM:<a@b> BODY=8BITMIME` → `a@b`.
fn angle_address(command: &str) -> String {
    match (command.find('<'), command.find('>')) {
        (Some(start), Some(end)) if start < end => command[start + 1..end].to_owned(),
        _ => command
            .split_once(':')
            .map(|(_, rest)| rest.trim().to_owned())
            .unwrap_or_default(),
    }
}

/// The header block of a message or part (before the first empty line).
fn head_of(text: &str) -> &str {
    split_head(text).0
}

fn split_head(text: &str) -> (&str, &str) {
    if let Some(index) = text.find("\r\n\r\n") {
        (&text[..index], &text[index + 4..])
    } else if let Some(index) = text.find("\n\n") {
        (&text[..index], &text[index + 2..])
    } else {
        (text, "")
    }
}

/// The unfolded raw value of a header in a header block.
fn header_in(head: &str, name: &str) -> Option<String> {
    let mut found: Option<String> = None;
    for line in head.lines() {
        let line = line.trim_end_matches('\r');
        if line.starts_with([' ', '\t']) {
            if let Some(value) = found.as_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if found.is_some() {
            break;
        }
        if let Some((key, value)) = line.split_once(':')
            && key.trim().eq_ignore_ascii_case(name)
        {
            found = Some(value.trim().to_owned());
        }
    }
    found
}

fn content_type(head: &str) -> String {
    header_in(head, "Content-Type")
        .unwrap_or_else(|| "text/plain".into())
        .to_lowercase()
}

fn is_attachment(head: &str) -> bool {
    header_in(head, "Content-Disposition")
        .is_some_and(|value| value.to_lowercase().starts_with("attachment"))
}

/// A parameter (`boundary`, `filename`, `name`) of Content-Type or Content-Disposition, also
/// when RFC 2231 splits or encodes it (`filename*0="…"; filename*1="…"`, `filename*=utf-8''…`),
/// as mailers do for long or non-ASCII file names.
fn parameter(head: &str, name: &str) -> Option<String> {
    for header in ["Content-Disposition", "Content-Type"] {
        let Some(value) = header_in(head, header) else {
            continue;
        };
        let mut pieces: Vec<(usize, String)> = Vec::new();
        for piece in value.split(';').skip(1) {
            let Some((key, raw)) = piece.split_once('=') else {
                continue;
            };
            let key = key.trim().to_ascii_lowercase();
            let raw = raw.trim().trim_matches('"');
            if key == name.to_ascii_lowercase() {
                return Some(decode_encoded_words(raw));
            }
            let Some(section) = key.strip_prefix(&format!("{}*", name.to_ascii_lowercase())) else {
                continue;
            };
            let (index, encoded) = match section.strip_suffix('*') {
                Some(number) => (number, true),
                None if section.is_empty() => ("", true),
                None => (section, false),
            };
            let index = if index.is_empty() {
                0
            } else {
                index.parse().ok()?
            };
            let text = if encoded {
                // The first encoded section starts with `charset'language'`.
                let raw = match raw.splitn(3, '\'').collect::<Vec<_>>().as_slice() {
                    [_, _, rest] if index == 0 => *rest,
                    _ => raw,
                };
                percent_decode(raw)
            } else {
                raw.to_owned()
            };
            pieces.push((index, text));
        }
        if !pieces.is_empty() {
            pieces.sort_by_key(|(index, _)| *index);
            return Some(pieces.into_iter().map(|(_, text)| text).collect());
        }
    }
    None
}

/// `%41%42` → `AB` (RFC 2231 values), UTF-8 assumed.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && let Some(byte) = text
                .get(index + 1..index + 3)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            out.push(byte);
            index += 3;
            continue;
        }
        out.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Calls `visit` with the headers and decoded body of every leaf part.
fn walk_parts(text: &str, visit: &mut dyn FnMut(&str, Vec<u8>)) {
    let (head, body) = split_head(text);
    if content_type(head).starts_with("multipart/") {
        let Some(boundary) = parameter(head, "boundary") else {
            return;
        };
        let delimiter = format!("--{boundary}");
        for (index, chunk) in body.split(delimiter.as_str()).enumerate() {
            // The preamble comes before the first delimiter; the epilogue starts with "--".
            if index == 0 || chunk.starts_with("--") {
                continue;
            }
            let part = chunk.trim_start_matches(['\r', '\n']);
            walk_parts(part, visit);
        }
        return;
    }
    let encoding = header_in(head, "Content-Transfer-Encoding")
        .unwrap_or_default()
        .to_lowercase();
    let body = body.strip_suffix("\r\n").unwrap_or(body);
    let decoded = match encoding.as_str() {
        "base64" => decode_base64(body),
        "quoted-printable" => decode_quoted_printable(body),
        _ => body.as_bytes().to_vec(),
    };
    visit(head, decoded);
}

fn find_part(text: &str, wanted: &dyn Fn(&str) -> bool) -> Option<Vec<u8>> {
    let mut found = None;
    walk_parts(text, &mut |headers, body| {
        if found.is_none() && wanted(headers) {
            found = Some(body);
        }
    });
    found
}

/// `"Name" <a@b>, c@d` → `["a@b", "c@d"]` (lower-case).
fn addresses(value: &str) -> Vec<String> {
    value
        .split(',')
        .filter_map(|piece| {
            let address = angle_address(&format!(":{}", piece.trim()));
            let address = address.trim().to_lowercase();
            address.contains('@').then_some(address)
        })
        .collect()
}

fn decode_base64(text: &str) -> Vec<u8> {
    let mut bits: u32 = 0;
    let mut count = 0;
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for byte in text.bytes() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => continue,
        };
        bits = (bits << 6) | u32::from(value);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push(((bits >> count) & 0xff) as u8);
        }
    }
    out
}

fn hex_value(byte: u8) -> Option<u8> {
    match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'A'..=b'F' => Some(byte - b'A' + 10),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    }
}

fn decode_quoted_printable(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte != b'=' {
            out.push(byte);
            index += 1;
            continue;
        }
        // A soft line break: "=" at the end of a line.
        if bytes.get(index + 1) == Some(&b'\r') && bytes.get(index + 2) == Some(&b'\n') {
            index += 3;
            continue;
        }
        if bytes.get(index + 1) == Some(&b'\n') {
            index += 2;
            continue;
        }
        match (
            bytes.get(index + 1).copied().and_then(hex_value),
            bytes.get(index + 2).copied().and_then(hex_value),
        ) {
            (Some(high), Some(low)) => {
                out.push(high * 16 + low);
                index += 3;
            }
            _ => {
                out.push(byte);
                index += 1;
            }
        }
    }
    out
}

/// Decodes RFC 2047 encoded words (`=?charset?B|Q?…?=`, UTF-8 or ASCII), joining adjacent ones.
fn decode_encoded_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let before = &rest[..start];
        let after = &rest[start + 2..];
        let word = after.split_once('?').and_then(|(charset, tail)| {
            let (encoding, tail) = tail.split_once('?')?;
            let (text, remainder) = tail.split_once("?=")?;
            Some((charset, encoding, text, remainder))
        });
        let Some((_charset, encoding, text, remainder)) = word else {
            break;
        };
        // Whitespace between two encoded words is not part of the text.
        if !(last_was_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        let bytes = if encoding.eq_ignore_ascii_case("b") {
            decode_base64(text)
        } else {
            decode_quoted_printable(&text.replace('_', " "))
        };
        out.push_str(&String::from_utf8_lossy(&bytes));
        last_was_word = true;
        rest = remainder;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    async fn reply(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> String {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.expect("reply");
            all.push_str(&line);
            // Multi-line replies use "250-"; the last line uses "250 ".
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return all;
            }
        }
    }

    #[test]
    fn split_and_encoded_file_names_are_read() {
        let plain = "Content-Disposition: attachment; filename=\"a b.pdf\"\r\n";
        assert_eq!(parameter(plain, "filename").as_deref(), Some("a b.pdf"));
        let split = "Content-Disposition: attachment;\r\n filename*0=\"Cycle all Partner\";\r\n filename*1=\" 2026-12-01.pdf\"\r\n";
        assert_eq!(
            parameter(split, "filename").as_deref(),
            Some("Cycle all Partner 2026-12-01.pdf")
        );
        let encoded =
            "Content-Disposition: attachment; filename*=utf-8''Caf%C3%A9%20Partner.pdf\r\n";
        assert_eq!(
            parameter(encoded, "filename").as_deref(),
            Some("Café Partner.pdf")
        );
        assert_eq!(parameter(plain, "name"), None);
    }

    #[tokio::test]
    async fn accepts_a_message_and_parses_it() {
        let sink = SmtpSink::start().await.expect("sink");
        let stream = TcpStream::connect(sink.address()).await.expect("connect");
        let (reader, mut writer) = stream.into_split();
        let mut reader = BufReader::new(reader);
        assert!(reply(&mut reader).await.starts_with("220"));
        let script = [
            ("EHLO test\r\n", "250"),
            ("MAIL FROM:<from@example.org>\r\n", "250"),
            ("RCPT TO:<a@example.org>\r\n", "250"),
            ("RCPT TO:<b@example.org>\r\n", "250"),
            ("DATA\r\n", "354"),
        ];
        for (command, expected) in script {
            writer.write_all(command.as_bytes()).await.expect("write");
            let answer = reply(&mut reader).await;
            assert!(answer.starts_with(expected), "{command}: {answer}");
        }
        let message = "Subject: =?utf-8?b?UXXDqWJlYw==?= news\r\nTo: \"A\" <A@example.org>\r\nCc: b@example.org\r\n\
                       Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
                       caf=C3=A9\r\n..dotted\r\n.\r\n";
        writer.write_all(message.as_bytes()).await.expect("data");
        assert!(reply(&mut reader).await.starts_with("250"));
        writer.write_all(b"QUIT\r\n").await.expect("quit");
        assert!(reply(&mut reader).await.starts_with("221"));
        let mut rest = Vec::new();
        let _ = reader.read_to_end(&mut rest).await;

        let mail = sink.wait_for(1, Duration::from_secs(5)).await;
        assert_eq!(mail[0].from, "from@example.org");
        assert_eq!(mail[0].recipients, vec!["a@example.org", "b@example.org"]);
        assert_eq!(mail[0].subject().as_deref(), Some("Québec news"));
        assert_eq!(mail[0].to(), vec!["a@example.org"]);
        assert_eq!(mail[0].cc(), vec!["b@example.org"]);
        assert_eq!(mail[0].text_body().as_deref(), Some("café\r\n.dotted"));
    }

    #[tokio::test]
    async fn stop_refuses_connections_and_restart_listens_on_the_same_port() {
        let sink = SmtpSink::start().await.expect("sink");
        let address = sink.address();
        sink.stop().await;
        assert!(
            TcpStream::connect(address).await.is_err(),
            "refused while stopped"
        );
        sink.restart().await.expect("restart");
        assert_eq!(sink.address(), address);
        assert!(TcpStream::connect(address).await.is_ok());
    }

    #[test]
    fn multipart_parts_and_attachments_are_found() {
        let data = "Subject: x\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
                    --b1\r\nContent-Type: multipart/alternative; boundary=\"b2\"\r\n\r\n\
                    --b2\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n\
                    --b2\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>hello</p>\r\n--b2--\r\n\
                    --b1\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=\"a b.pdf\"\r\n\
                    Content-Transfer-Encoding: base64\r\n\r\nJVBERg==\r\n--b1--\r\n";
        let mail = ReceivedMail {
            from: String::new(),
            recipients: Vec::new(),
            data: data.into(),
        };
        assert_eq!(mail.text_body().as_deref(), Some("hello"));
        assert_eq!(mail.html_body().as_deref(), Some("<p>hello</p>"));
        assert_eq!(mail.attachment_names(), vec!["a b.pdf"]);
        assert_eq!(mail.attachment("a b.pdf"), Some(b"%PDF".to_vec()));
    }
}
