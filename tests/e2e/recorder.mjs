// The Loki and Tempo stand-in of the end-to-end runs (neither is packaged in
// Debian): answers every request 200 and echoes what the gateway forwarded, in the
// "key=value" lines of deploy/'s recording upstream (tenant, URI, method, token id,
// and any secret that leaked), and keeps the last 2,000 requests so that the real
// clients' pushes (syslog-ng, the OpenTelemetry exporter) can be checked after the
// fact: GET /_e2e/records on this port (never through the gateway: not in its path
// map) lists them. OTLP paths get "{}" (an empty ExportTraceServiceResponse).
//   usage: node recorder.mjs PORT
import http from 'node:http';

const port = Number(process.argv[2]);
const records = [];
const MAX = 2000;

// Loki's and Tempo's Go servers take 1 MiB of headers: long GET queries must pass.
const server = http.createServer({ maxHeaderSize: 1 << 20 }, (req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    if (req.method === 'GET' && req.url === '/_e2e/records') {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(records));
      return;
    }
    const h = req.headers;
    const body = Buffer.concat(chunks);
    const rec = {
      method: req.method,
      uri: req.url,
      tenant: h['x-scope-orgid'] ?? '',
      token_id: h['x-cockpit-token-id'] ?? '',
      x_token: h['x-token'] ?? '',
      authorization: h.authorization ?? '',
      content_type: h['content-type'] ?? '',
      body: body.subarray(0, 4096).toString(),
    };
    if (records.length === MAX) records.shift();
    records.push(rec);
    if (/\/v1\/(traces|logs)$/.test(req.url.split('?')[0])) {
      res.writeHead(200, { 'Content-Type': 'application/json' });
      res.end('{}');
      return;
    }
    res.writeHead(200, { 'Content-Type': 'text/plain' });
    res.end(`tenant=${rec.tenant}\nuri=${rec.uri}\nmethod=${rec.method}\ntoken_id=${rec.token_id}\n` +
      `x_token=${rec.x_token}\nauthorization=${rec.authorization}\n`);
  });
});
server.keepAliveTimeout = 65000;
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
