//! Logs, traces and trace-context propagation.
//!
//! `tracing` everywhere: pretty on a terminal, JSON otherwise. Spans carry W3C trace context,
//! which travels through gRPC metadata, HTTP headers and AMQP headers (the outbox keeps it with
//! each event); traces are exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (in the
//! background: a missing collector costs a logged error per batch, never a crash or a hang).

use std::collections::HashMap;
use std::io::IsTerminal;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::settings::{LogFormat, LogSettings};

/// Our libraries' own chatter would otherwise flood the logs (and feed back into the exporter).
const QUIET: &str = "opentelemetry=warn,opentelemetry_sdk=warn,h2=warn,hyper=warn,tower=warn,lapin=warn,sqlx=warn,amq_protocol=warn";

/// Flushes and stops the trace exporter when dropped (or by [`TelemetryGuard::shutdown`]).
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    pub fn shutdown(mut self) {
        self.flush();
    }

    fn flush(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            tracing::debug!(%error, "trace exporter shutdown");
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Installs the global subscriber and propagator. Safe to call more than once (tests): later
/// calls keep the first subscriber.
pub fn init(service_name: &str, settings: &LogSettings) -> TelemetryGuard {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{},{QUIET}", settings.filter)));
    let provider = tracer_provider(service_name);
    let otel_layer =
        tracing_opentelemetry::layer().with_tracer(provider.tracer(service_name.to_owned()));
    let json = match settings.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let registry = tracing_subscriber::registry().with(filter).with(otel_layer);
    let installed = if json {
        registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false),
            )
            .try_init()
    } else {
        registry.with(tracing_subscriber::fmt::layer()).try_init()
    };
    if installed.is_err() {
        tracing::debug!("a tracing subscriber was already installed");
    }
    TelemetryGuard {
        provider: Some(provider),
    }
}

/// Spans always get W3C trace ids, so trace context travels through gRPC, HTTP and AMQP even
/// with no collector; they are exported over OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
fn tracer_provider(service_name: &str) -> SdkTracerProvider {
    let service_name =
        std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| format!("essentials-{service_name}"));
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(service_name)
        .build();
    let builder = SdkTracerProvider::builder().with_resource(resource);
    let Ok(endpoint) = std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT") else {
        return builder.build();
    };
    match opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
    {
        Ok(exporter) => builder.with_batch_exporter(exporter).build(),
        Err(error) => {
            // Tracing is an aid, not a dependency: run without the export.
            eprintln!("OTLP exporter for {endpoint} not started: {error}");
            builder.build()
        }
    }
}

struct MapInjector<'a>(&'a mut HashMap<String, String>);

impl Injector for MapInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        self.0.insert(key.to_owned(), value);
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct SingleExtractor<'a>(&'a str);

impl Extractor for SingleExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        (key == "traceparent").then_some(self.0)
    }

    fn keys(&self) -> Vec<&str> {
        vec!["traceparent"]
    }
}

/// The current span's W3C `traceparent`, if it belongs to a sampled trace.
pub fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let mut fields = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut MapInjector(&mut fields));
    });
    fields.remove("traceparent")
}

/// Makes `span` a child of the trace a received message belongs to.
pub fn set_parent_from_traceparent(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent else {
        return;
    };
    let context = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&SingleExtractor(traceparent))
    });
    let _ = span.set_parent(context);
}

/// Makes `span` a child of the trace named in incoming HTTP/gRPC headers.
pub fn set_parent_from_headers(span: &tracing::Span, headers: &http::HeaderMap) {
    let context = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    let _ = span.set_parent(context);
}

/// Writes the current trace context into outgoing HTTP/gRPC headers.
pub fn inject_headers(headers: &mut http::HeaderMap) {
    let context = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers));
    });
}

/// An outgoing gRPC request that carries the current trace into the callee.
pub fn traced_request<T>(message: T) -> tonic::Request<T> {
    let mut headers = http::HeaderMap::new();
    inject_headers(&mut headers);
    let mut request = tonic::Request::new(message);
    for (name, value) in &headers {
        if let (Ok(key), Ok(value)) = (
            tonic::metadata::MetadataKey::from_bytes(name.as_str().as_bytes()),
            value.to_str().map(str::to_owned),
        ) && let Ok(value) = value.parse()
        {
            request.metadata_mut().insert(key, value);
        }
    }
    crate::idempotency::attach_client_key(&mut request);
    request
}
