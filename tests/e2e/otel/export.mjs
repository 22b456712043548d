// The OpenTelemetry JS SDK's OTLP/HTTP trace exporter, as an application would use
// it, pointed at the gateway's /v1/traces with the token in X-Token.
//   usage: node export.mjs URL SECRET RUN
// Exports three spans named e2e-otel-<RUN>-<n> in one request; prints the export
// result and exits 0 when the exporter reports success, 2 when it reports failure.
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

const [url, secret, run] = process.argv.slice(2);
const memory = new InMemorySpanExporter();
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(memory)] });
const tracer = provider.getTracer('cockpit-tokens-e2e');
for (let n = 1; n <= 3; n++) tracer.startSpan(`e2e-otel-${run}-${n}`).end();

const exporter = new OTLPTraceExporter({ url, headers: { 'X-Token': secret }, timeoutMillis: 5000 });
exporter.export(memory.getFinishedSpans(), async (result) => {
  const ok = result.code === 0;
  console.log(ok ? 'export: success' : `export: failed: ${result.error?.message ?? 'unknown error'}`);
  await exporter.shutdown();
  process.exit(ok ? 0 : 2);
});
