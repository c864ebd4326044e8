//! A bounded fuzz test of the gateway's request decoding: random and mutated JSON bodies and
//! query strings are sent, through the real router, to every documented route that takes input
//! (the seeds are example bodies built from the OpenAPI schemas, so a new route is fuzzed too).
//! No answer may be a 500: bad input is a 4xx, and input that decodes reaches the parts (here:
//! none are running, so 503). Deterministic (fixed seed) and bounded by a case count.

mod common;

use common::{ID, app, bearer, document, example, operations, send, settings};

/// Cases per route; with about 60 routes that take input this stays within seconds.
const CASES_PER_ROUTE: usize = 40;

/// xorshift64*: a tiny deterministic generator, enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, bound: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(bound.max(1)).unwrap_or(1)).unwrap_or(0)
    }
}

const INTERESTING: &[&str] = &[
    "null",
    "true",
    "-1",
    "0",
    "1e309",
    "18446744073709551616",
    "\"\"",
    "\"x\"",
    "[]",
    "{}",
    "[null]",
    "\"\\u0000\"",
    "-9223372036854775809",
    "3.5",
    "\"not-a-uuid\"",
    "\"2026-13-45T99:00:00Z\"",
    "\"\u{1F600}\"",
    "{\"a\":{\"b\":{\"c\":[[[[]]]]}}}",
];

/// A mutated version of `seed`: replace a JSON value, flip, insert or delete bytes, or truncate.
fn mutate(rng: &mut Rng, seed: &str) -> Vec<u8> {
    let mut bytes = seed.as_bytes().to_vec();
    for _ in 0..=rng.below(3) {
        match rng.below(6) {
            0 if !bytes.is_empty() => {
                // Swap the value after a colon for an interesting one.
                let colons: Vec<usize> = bytes
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b':')
                    .map(|(i, _)| i)
                    .collect();
                if let Some(&at) = colons.get(rng.below(colons.len())) {
                    let end = bytes[at + 1..]
                        .iter()
                        .position(|b| *b == b',' || *b == b'}')
                        .map_or(bytes.len(), |offset| at + 1 + offset);
                    let value = INTERESTING[rng.below(INTERESTING.len())].as_bytes();
                    bytes.splice(at + 1..end, value.iter().copied());
                }
            }
            1 if !bytes.is_empty() => {
                let at = rng.below(bytes.len());
                bytes[at] = u8::try_from(rng.next() & 0xff).unwrap_or(0);
            }
            2 => {
                let at = rng.below(bytes.len() + 1);
                bytes.insert(at, b"{}[]\",:\\0-e9"[rng.below(12)]);
            }
            3 if !bytes.is_empty() => {
                let at = rng.below(bytes.len());
                bytes.remove(at);
            }
            4 => bytes.truncate(rng.below(bytes.len() + 1)),
            _ => {
                bytes = INTERESTING[rng.below(INTERESTING.len())]
                    .as_bytes()
                    .to_vec();
            }
        }
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_input_makes_the_gateway_answer_500() {
    let settings = settings();
    let app = app(&settings);
    let bearer = bearer(&settings);
    let document = document();
    let mut rng = Rng(0x5eed_cafe_f00d_beef);
    let (mut sent, mut routes) = (0, 0);
    let (mut refused, mut passed_on) = (0, 0);
    for operation in operations(&document) {
        let path = operation.path_with(ID);
        // A plausible input to mutate: the example body, or the example query string.
        let body_seed = operation
            .json_body_schema()
            .map(|schema| example(&document, schema, "").to_string());
        let query_seed: Vec<String> = operation
            .query_params()
            .into_iter()
            .map(|(name, schema)| {
                let value = example(&document, &schema, &name);
                let text = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_owned);
                format!("{name}={text}")
            })
            .collect();
        if body_seed.is_none() && query_seed.is_empty() {
            continue;
        }
        routes += 1;
        let query_seed = query_seed.join("&");
        for case in 0..CASES_PER_ROUTE {
            let (uri, body) = match &body_seed {
                Some(seed) if case == 0 => (path.clone(), seed.as_bytes().to_vec()),
                Some(seed) => (path.clone(), mutate(&mut rng, seed)),
                None => {
                    // Mutate the query string instead of a body.
                    let mutated =
                        String::from_utf8_lossy(&mutate(&mut rng, &query_seed)).into_owned();
                    let encoded: String = mutated
                        .bytes()
                        .map(|b| {
                            if b.is_ascii_alphanumeric() || b"=&_-.".contains(&b) {
                                (b as char).to_string()
                            } else {
                                format!("%{b:02X}")
                            }
                        })
                        .collect();
                    (format!("{path}?{encoded}"), Vec::new())
                }
            };
            let shown = String::from_utf8_lossy(&body).into_owned();
            let answer = send(
                &app,
                &operation.method,
                &uri,
                &[
                    ("authorization", &bearer),
                    ("content-type", "application/json"),
                ],
                body,
            )
            .await;
            let status = answer.status;
            assert!(
                (400..500).contains(&status) || [200, 201, 204, 503].contains(&status),
                "{} {uri} with {shown:?} answered {status}",
                operation.method
            );
            if status == 503 {
                passed_on += 1;
            } else if (400..500).contains(&status) {
                refused += 1;
            }
            sent += 1;
        }
    }
    assert!(routes >= 40, "only {routes} routes take input");
    assert_eq!(sent, routes * CASES_PER_ROUTE);
    // The run exercised both sides: bad input refused, good input decoded and passed on.
    assert!(refused > sent / 4, "{refused} of {sent} refused");
    assert!(passed_on >= routes, "{passed_on} of {sent} passed on");
}
