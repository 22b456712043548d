// Starts and stops the real cockpit-tokens binary for black-box API tests.
//
//   const srv = await startServer();   // {url, port, secretKey, dbUri, stop(), stderr()}
//   const key = await createApiKey(srv.dbUri, [projectA, projectB]);
//   await srv.stop();
//
// Environment:
//   CT_BIN          the binary (default <repo>/build/cockpit-tokens)
//   CT_TEST_DB_URI  a database URI used instead of a fresh sqlite file; the tests then must not
//                   assume an empty database (they use fresh random project ids everywhere).
import { spawn, execFile } from 'node:child_process';
import { randomUUID, randomInt } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(here, '..', '..', '..');
export const BIN = process.env.CT_BIN || path.join(REPO_ROOT, 'build', 'cockpit-tokens');
export const SHARED_DB = Boolean(process.env.CT_TEST_DB_URI);
export const REGIONS = ['fr-par', 'nl-ams', 'pl-waw'];

const HEALTH_TIMEOUT_MS = 10_000;
const STOP_GRACE_MS = 5_000;
const STDERR_KEEP = 64 * 1024;

/** A free TCP port on 127.0.0.1 (bind port 0, read it, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A syntactically valid access key (^SCW[A-Z0-9]{17}$), as the SDKs demand. */
export function fakeAccessKey() {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789';
  let s = 'SCW';
  for (let i = 0; i < 17; i++) s += alphabet[randomInt(alphabet.length)];
  return s;
}

function cleanEnv(extra) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    // Hermetic: no configuration leaks in from the developer's shell.
    if (k.startsWith('COCKPIT_TOKENS_') || k.startsWith('SCW_')) continue;
    env[k] = v;
  }
  return { ...env, ...extra };
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function healthy(url) {
  try {
    const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

async function startOnce({ dbUri, secretKey, regions, extraArgs, extraEnv }) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = ['serve', '--listen', `127.0.0.1:${port}`, '--db', dbUri,
    '--regions', regions.join(','), ...extraArgs];
  const child = spawn(BIN, args, {
    env: cleanEnv({
      COCKPIT_TOKENS_BOOTSTRAP_SECRET_KEY: secretKey,
      COCKPIT_TOKENS_LOG_LEVEL: 'warning',
      ...extraEnv,
    }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const keep = (chunk) => {
    log += chunk.toString('utf8');
    if (log.length > STDERR_KEEP) log = log.slice(log.length - STDERR_KEEP);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  let exited = null;
  const exitPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => { exited = { code, signal }; resolve(exited); });
    child.on('error', (err) => { exited = { code: null, signal: null, err }; log += `\nspawn error: ${err.message}\n`; resolve(exited); });
  });

  const deadline = Date.now() + HEALTH_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited) break;
    if (await healthy(url)) {
      return {
        url, port, secretKey, dbUri, child,
        stderr: () => log,
        exited: () => exited,
        async stop() {
          if (exited) return exited;
          child.kill('SIGTERM');
          const timer = setTimeout(() => { if (!exited) child.kill('SIGKILL'); }, STOP_GRACE_MS);
          const r = await exitPromise;
          clearTimeout(timer);
          return r;
        },
      };
    }
    await sleep(50);
  }
  if (!exited) {
    child.kill('SIGKILL');
    await exitPromise;
  }
  const err = new Error(`cockpit-tokens did not become healthy on ${url} ` +
    `(exit: ${JSON.stringify(exited)})\n${BIN} ${args.join(' ')}\n--- server output ---\n${log}`);
  err.retryable = Boolean(exited) && /address already in use|EADDRINUSE|bind/i.test(log);
  throw err;
}

/**
 * Starts the server on a free port with a fresh sqlite database (or CT_TEST_DB_URI) and a
 * random bootstrap (organization-wide) secret key. Resolves when GET /healthz answers 200.
 */
export async function startServer({ regions = REGIONS, extraArgs = [], extraEnv = {} } = {}) {
  let tmpdir = null;
  let dbUri = process.env.CT_TEST_DB_URI;
  if (!dbUri) {
    tmpdir = await mkdtemp(path.join(os.tmpdir(), 'ct-api-'));
    dbUri = `sqlite:${tmpdir}/t.db`;
  }
  const secretKey = randomUUID();
  const launch = async () => {
    let lastErr;
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        return await startOnce({ dbUri, secretKey, regions, extraArgs, extraEnv });
      } catch (err) {
        lastErr = err;
        if (!err.retryable) break; // a port race is the only thing worth retrying
      }
    }
    throw lastErr;
  };
  let inner;
  try {
    inner = await launch();
  } catch (err) {
    if (tmpdir) await rm(tmpdir, { recursive: true, force: true });
    throw err;
  }
  // A stable handle: restart() swaps the process (same database and key, new port) in place.
  const handle = {
    secretKey, dbUri, tmpdir, crashes: [],
    get url() { return inner.url; },
    get port() { return inner.port; },
    get child() { return inner.child; },
    stderr: () => inner.stderr(),
    exited: () => inner.exited(),
    async restart() {
      await inner.stop();
      inner = await launch();
    },
    async stop() {
      const r = await inner.stop();
      if (tmpdir) await rm(tmpdir, { recursive: true, force: true });
      return r;
    },
  };
  return handle;
}

/**
 * Creates a project-limited management API key with the admin subcommand, against the same
 * database as the server. Resolves to {access_key, secret_key, projects, description}.
 */
export function createApiKey(dbUri, projects) {
  const args = ['apikey', 'create', '--db', dbUri];
  for (const p of projects) args.push('--project', p);
  args.push('-o', 'json');
  return new Promise((resolve, reject) => {
    execFile(BIN, args, {
      env: cleanEnv({ COCKPIT_TOKENS_LOG_LEVEL: 'warning' }),
      timeout: 15_000,
    }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`${BIN} ${args.join(' ')} failed: ${err.message}\nstdout: ${stdout}\nstderr: ${stderr}`));
        return;
      }
      try {
        const key = JSON.parse(stdout);
        if (typeof key.secret_key !== 'string' || typeof key.access_key !== 'string') {
          throw new Error('missing access_key/secret_key');
        }
        resolve(key);
      } catch (e) {
        reject(new Error(`apikey create printed unexpected output (${e.message}): ${stdout}\nstderr: ${stderr}`));
      }
    });
  });
}

/**
 * Wraps a test body so that, when it fails, the server's recent output is printed with it.
 * `getServer` is a function because the server is started in a before() hook.
 */
export function withServerLog(getServer, fn) {
  return async (t) => {
    const srv = getServer();
    if (srv && srv.exited()) {
      // An earlier test killed the server: note it, and give this test a live one.
      srv.crashes.push({ exit: srv.exited(), log: srv.stderr().slice(-2000) });
      await srv.restart();
    }
    try {
      await fn(t);
    } catch (err) {
      if (srv) {
        if (!srv.exited()) await new Promise((r) => setTimeout(r, 100)); // let a dying server finish
        const tail = srv.stderr().slice(-8000).trimEnd();
        const exited = srv.exited();
        let note = tail ? `cockpit-tokens output (last lines):\n${tail}` : 'cockpit-tokens printed nothing';
        if (exited) note += `\nSERVER DIED during this test: ${JSON.stringify(exited)}`;
        t.diagnostic(note);
        process.stderr.write(`\n--- test "${t.name}" failed; ${note}\n--- end ---\n`);
      }
      throw err;
    }
  };
}
