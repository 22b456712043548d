// The console: sign in, pick region and project, list, create, delete and (when the
// server has it) rotate tokens. Plain DOM; every text from the API goes through
// textContent, never HTML.
import { api, ApiError, session } from './api.js';
import { GROUPS, CHIP } from './scopes.js';
import { agents, snippet, suggested } from './snippets.js';

const $ = (id) => document.getElementById(id);
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const PREFS = { region: 'cockpit-tokens.region', project: 'cockpit-tokens.project',
  pageSize: 'cockpit-tokens.page-size' };

const state = {
  info: null, // GET /console/api/session
  region: '', project: '', scope: '', expired: '', page: 1, pageSize: 20, order: 'created_at_desc',
  total: 0, tokens: [], lifecycle: false, rotating: null, deleting: null,
};

/** Creates an element: h('td', { class: 'x', title: 't' }, child, 'text'). */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v == null) continue;
    if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) if (c != null && c !== false) el.append(c);
  return el;
}

// ---- messages ---------------------------------------------------------------------

function announce(text) {
  const s = $('status');
  s.textContent = '';
  requestAnimationFrame(() => { s.textContent = text; });
}

function banner(text) {
  const b = $('banner');
  b.replaceChildren();
  if (!text) { b.hidden = true; return; }
  b.append(h('span', { text }), h('button', {
    type: 'button', class: 'btn ghost small', 'aria-label': 'Dismiss message',
    on: { click: () => banner('') } }, '×'));
  b.hidden = false;
}

/** Runs an action; anything it throws is shown, never swallowed. */
function guarded(fn) {
  return async (ev) => {
    try { await fn(ev); } catch (e) { failed(e); }
  };
}

function failed(e) {
  if (e instanceof ApiError && e.status === 401 && session.key && state.info) {
    signOut(`You were signed out: ${e.message}`);
    return;
  }
  banner(e instanceof ApiError ? e.message : `Something went wrong in the console: ${e.message}`);
  if (!(e instanceof ApiError)) console.warn(e); // eslint-disable-line no-console
}

// ---- dialogs: focus goes in, and back to what opened them ---------------------------

const openers = new Map();

function openDialog(d, focus) {
  openers.set(d, document.activeElement);
  d.showModal();
  (focus ?? d.querySelector('input, select, button'))?.focus();
}

function closeDialog(d) {
  if (!d.open) return;
  d.close();
  const back = openers.get(d);
  openers.delete(d);
  if (back && back.isConnected && !back.closest('[hidden]')) back.focus();
  else $('tokens-title').focus();
}

for (const d of document.querySelectorAll('dialog:not(#secret-dialog)')) {
  d.addEventListener('cancel', (ev) => { ev.preventDefault(); closeDialog(d); });
  for (const b of d.querySelectorAll('[data-close]')) b.addEventListener('click', () => closeDialog(d));
}

// ---- sign in / out --------------------------------------------------------------------

function show(screen) {
  $('signin').hidden = screen !== 'signin';
  $('tokens').hidden = screen !== 'tokens';
  $('who').hidden = screen !== 'tokens';
}

function signOut(message) {
  session.forget();
  state.info = null;
  state.tokens = [];
  $('tbody').replaceChildren();
  for (const d of document.querySelectorAll('dialog')) if (d.open) d.close();
  show('signin');
  banner('');
  $('signin-error').textContent = message ?? '';
  $('api-key').value = '';
  $('api-key').focus();
  announce(message ?? 'Signed out. The API key was forgotten.');
}

async function start() {
  const info = await api.session();
  state.info = info;
  $('who-key').textContent = info.access_key;
  const saved = localStorage.getItem(PREFS.region);
  state.region = info.regions.includes(saved) ? saved : info.regions[0];
  $('region').replaceChildren(...info.regions.map((r) => h('option', { value: r, text: r })));
  $('region').value = state.region;
  $('project-list').replaceChildren(...(info.projects ?? []).map((p) => h('option', { value: p })));
  state.project = localStorage.getItem(PREFS.project) ?? '';
  // A key limited to some projects starts on one of them, not on a project it cannot see.
  if (info.projects && !info.projects.includes(state.project)) {
    state.project = info.projects.length === 1 ? info.projects[0] : '';
  }
  $('project').value = state.project;
  state.pageSize = Number(localStorage.getItem(PREFS.pageSize)) || 20;
  $('page-size').value = String(state.pageSize);
  state.lifecycle = info.features.includes('rotate');
  show('tokens');
  await load();
}

$('signin-form').addEventListener('submit', guarded(async (ev) => {
  ev.preventDefault();
  const input = $('api-key');
  const err = $('signin-error');
  const key = input.value.trim();
  err.textContent = '';
  if (!key) {
    err.textContent = 'Enter the secret key of a management API key.';
    input.focus();
    return;
  }
  const button = ev.submitter ?? $('signin-form').querySelector('button');
  button.disabled = true;
  session.set(key);
  try {
    await start();
    input.value = '';
    announce(`Signed in as ${state.info.access_key}.`);
    $('tokens-title').focus();
  } catch (e) {
    session.forget();
    state.info = null;
    err.textContent = e.message;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  } finally {
    button.disabled = false;
  }
}));

$('api-key').addEventListener('input', () => $('api-key').removeAttribute('aria-invalid'));
$('sign-out').addEventListener('click', () => signOut());

// ---- the list ---------------------------------------------------------------------

const COLUMNS = [
  { id: 'name', title: 'Name', sort: 'name' },
  { id: 'id', title: 'ID' },
  { id: 'project', title: 'Project', allProjects: true }, // shown when no project is picked
  { id: 'scopes', title: 'Scopes' },
  { id: 'created', title: 'Created', sort: 'created_at' },
  { id: 'expires', title: 'Expires', lifecycle: true },
  { id: 'used', title: 'Last used', lifecycle: true },
  { id: 'actions', title: 'Actions', hideTitle: true },
];

const dateFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const relFmt = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

function when(ts) {
  const d = new Date(ts);
  return h('time', { datetime: ts, title: d.toISOString(), text: dateFmt.format(d) });
}

function relative(ts, none) {
  if (!ts) return h('span', { class: 'muted', text: none });
  const d = new Date(ts);
  const s = (d.getTime() - Date.now()) / 1000;
  const units = [['year', 31536000], ['month', 2592000], ['day', 86400], ['hour', 3600],
    ['minute', 60], ['second', 1]];
  // 59.99 minutes read "1 hour", not "60 minutes".
  // Months only from two on ("in 30 days" says more than "next month").
  const [unit, n] = units.find(([u, sec]) => Math.abs(s) >= (u === 'month' ? 2 * sec : sec * 0.97))
    ?? ['second', 1];
  const text = relFmt.format(Math.round(s / n), unit);
  const expired = s <= 0 && none === 'Never'; // an expiry in the past
  return h('time', { datetime: ts, title: dateFmt.format(d), class: expired ? 'expired' : false,
    text: expired ? `Expired ${text}` : text });
}

async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    announce(`${what} copied to the clipboard.`);
    return true;
  } catch {
    banner(`The browser refused to copy ${what.toLowerCase()}: select it and copy it by hand.`);
    return false;
  }
}

function shortId(value, label) {
  return h('span', { class: 'id' },
    h('code', { title: value, text: `${value.slice(0, 8)}…` }),
    h('button', { type: 'button', class: 'icon', 'aria-label': label, title: label,
      on: { click: guarded(() => copy(value, label.replace(/^Copy /, '').replace(/^./, (c) => c.toUpperCase()))) } },
    h('span', { 'aria-hidden': 'true', class: 'copy-glyph' })));
}

function header() {
  const [field, dir] = [state.order.replace(/_(asc|desc)$/, ''), state.order.endsWith('asc') ? 'ascending' : 'descending'];
  return COLUMNS.filter((c) => (!c.lifecycle || state.lifecycle) && (!c.allProjects || !state.project)).map((c) => {
    const th = h('th', { scope: 'col', class: `col-${c.id}` });
    if (c.sort) {
      const active = field === c.sort;
      if (active) th.setAttribute('aria-sort', dir);
      th.append(h('button', { type: 'button', class: `sort${active ? ` ${dir}` : ''}`,
        on: { click: guarded(() => sortBy(c.sort)) } }, c.title,
      h('span', { class: 'arrow', 'aria-hidden': 'true' })));
    } else if (c.hideTitle) {
      th.append(h('span', { class: 'sr-only', text: c.title }));
    } else {
      th.textContent = c.title;
    }
    return th;
  });
}

const source = (s) => ['metrics', 'logs', 'traces'].find((k) => s.includes(k)) ?? 'alerts';

function row(t) {
  const chips = h('ul', { class: 'chips', 'aria-label': `Scopes of ${t.name}` },
    t.scopes.length ? t.scopes.map((s) => h('li', { class: `chip ${source(s)}`, title: s },
      h('span', { 'aria-hidden': 'true', text: CHIP[s] ?? s }), h('span', { class: 'sr-only', text: s })))
      : h('li', { class: 'muted', text: 'none' }));
  const actions = h('td', { class: 'col-actions' });
  if (state.info.features.includes('rotate')) {
    actions.append(h('button', { type: 'button', class: 'btn small ghost', 'aria-label': `Rotate ${t.name}`,
      on: { click: () => openRotate(t) } }, 'Rotate'));
  }
  actions.append(h('button', { type: 'button', class: 'btn small ghost danger-text', 'aria-label': `Delete ${t.name}`,
    on: { click: () => openDelete(t) } }, 'Delete'));
  const cells = [
    h('th', { scope: 'row', class: 'col-name' }, h('span', { class: 'name', text: t.name })),
    h('td', { class: 'col-id' }, shortId(t.id, `Copy ID of ${t.name}`)),
    !state.project && h('td', { class: 'col-project' }, shortId(t.project_id, `Copy project ID of ${t.name}`)),
    h('td', { class: 'col-scopes' }, chips),
    h('td', { class: 'col-created', 'data-label': 'Created' }, when(t.created_at)),
  ];
  if (state.lifecycle) {
    cells.push(h('td', { class: 'col-expires', 'data-label': 'Expires' }, relative(t.expires_at, 'Never')),
      h('td', { class: 'col-used', 'data-label': 'Last used' }, relative(t.last_used_at, 'Not yet')));
  }
  return h('tr', {}, cells, actions);
}

function pageList(current, last) {
  const want = new Set([1, last, current - 1, current, current + 1].filter((p) => p >= 1 && p <= last));
  const out = [];
  let prev = 0;
  for (const p of [...want].sort((a, b) => a - b)) {
    if (p - prev > 1) out.push('…');
    out.push(p);
    prev = p;
  }
  return out;
}

function pager() {
  const last = Math.max(1, Math.ceil(state.total / state.pageSize));
  const first = state.total ? (state.page - 1) * state.pageSize + 1 : 0;
  const end = Math.min(state.total, first + state.tokens.length - 1);
  $('total').textContent = state.total
    ? `${first}–${end} of ${state.total} token${state.total === 1 ? '' : 's'}` : '0 tokens';
  const go = (p) => guarded(async () => { state.page = p; await load(); $('pages').querySelector('[aria-current]')?.focus(); });
  const items = [h('li', {}, h('button', { type: 'button', class: 'btn small ghost', 'aria-label': 'Previous page',
    disabled: state.page <= 1, on: { click: go(state.page - 1) } }, '‹'))];
  for (const p of pageList(state.page, last)) {
    items.push(h('li', {}, p === '…' ? h('span', { class: 'gap', 'aria-hidden': 'true', text: '…' })
      : h('button', { type: 'button', class: `btn small ${p === state.page ? 'current' : 'ghost'}`,
        'aria-label': `Page ${p}`, 'aria-current': p === state.page ? 'page' : false, on: { click: go(p) } }, String(p))));
  }
  items.push(h('li', {}, h('button', { type: 'button', class: 'btn small ghost', 'aria-label': 'Next page',
    disabled: state.page >= last, on: { click: go(state.page + 1) } }, '›')));
  $('pages').replaceChildren(...items);
}

function render() {
  if (!state.lifecycle && state.tokens.some((t) => 'expires_at' in t)) state.lifecycle = true;
  $('thead-row').replaceChildren(...header());
  $('tbody').replaceChildren(...state.tokens.map(row));
  const filtered = Boolean(state.scope || state.expired);
  $('status-field').hidden = !state.lifecycle;
  const none = state.total === 0;
  $('table-wrap').hidden = none;
  $('empty').hidden = !none;
  $('pager').hidden = none;
  $('empty-title').textContent = filtered ? 'No token matches these filters' : 'No tokens here yet';
  $('caption').textContent = `Tokens in ${state.region}${state.project ? `, project ${state.project}` : ''}`;
  pager();
}

async function load() {
  $('table').setAttribute('aria-busy', 'true');
  try {
    const res = await api.list(state.region, { project: state.project, scope: state.scope, expired: state.expired,
      page: state.page, pageSize: state.pageSize, order: state.order });
    if (res.tokens.length === 0 && res.total_count > 0 && state.page > 1) {
      state.page = Math.ceil(res.total_count / state.pageSize);
      return load();
    }
    state.tokens = res.tokens;
    state.total = res.total_count;
    banner('');
    projectError('');
    render();
  } catch (e) {
    if (e instanceof ApiError && (e.field === 'project_id' || e.body?.type === 'permissions_denied')) {
      projectError(e.message);
      return;
    }
    throw e;
  } finally {
    $('table').removeAttribute('aria-busy');
  }
}

async function sortBy(field) {
  const [cur, dir] = [state.order.replace(/_(asc|desc)$/, ''), state.order.endsWith('asc') ? 'asc' : 'desc'];
  const next = cur === field ? (dir === 'asc' ? 'desc' : 'asc') : (field === 'name' ? 'asc' : 'desc');
  state.order = `${field}_${next}`;
  state.page = 1;
  await load();
  $('thead-row').querySelector(`[aria-sort] button`)?.focus();
  announce(`Sorted by ${field === 'name' ? 'name' : 'creation date'}, ${next === 'asc' ? 'ascending' : 'descending'}.`);
}

function projectError(text) {
  $('project-error').textContent = text;
  if (text) $('project').setAttribute('aria-invalid', 'true');
  else $('project').removeAttribute('aria-invalid');
}

async function applyProject() {
  const v = $('project').value.trim();
  if (v && !UUID.test(v)) {
    projectError('A project ID is a UUID, like 11111111-2222-4333-8444-555555555555.');
    return;
  }
  state.project = v.toLowerCase();
  localStorage.setItem(PREFS.project, state.project);
  state.page = 1;
  await load();
}

$('filters').addEventListener('submit', (ev) => { ev.preventDefault(); guarded(applyProject)(); });
$('project').addEventListener('change', guarded(applyProject));
$('region').addEventListener('change', guarded(async () => {
  state.region = $('region').value;
  localStorage.setItem(PREFS.region, state.region);
  state.page = 1;
  await load();
}));
$('scope-filter').append(...GROUPS.map((g) => h('optgroup', { label: g.name },
  g.scopes.map(([id, words]) => h('option', { value: id, text: `${words} (${id})` })))));
$('scope-filter').addEventListener('change', guarded(async () => {
  state.scope = $('scope-filter').value;
  state.page = 1;
  await load();
}));
$('status-filter').addEventListener('change', guarded(async () => {
  state.expired = $('status-filter').value;
  state.page = 1;
  await load();
}));
$('page-size').addEventListener('change', guarded(async () => {
  state.pageSize = Number($('page-size').value);
  localStorage.setItem(PREFS.pageSize, String(state.pageSize));
  state.page = 1;
  await load();
}));

// ---- create ---------------------------------------------------------------------------

$('scope-groups').append(...GROUPS.map((g) => h('div', { class: 'scope-group', role: 'group', 'aria-label': g.name },
  h('p', { class: 'group-name', 'aria-hidden': 'true', text: g.name }),
  g.scopes.map(([id, words]) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name: 'scope', value: id }),
    h('span', { class: 'words', text: words }), ' ', h('code', { text: id }))))));

function fieldError(id, text) {
  $(`${id}-error`).textContent = text;
  const input = $(id);
  if (!input) return;
  if (text) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

function openCreate() {
  const f = $('create-form');
  f.reset();
  for (const id of ['create-name', 'create-project', 'create-scopes', 'create-expiry']) fieldError(id, '');
  $('create-error').textContent = '';
  const projects = state.info.projects ?? [];
  $('create-project').value = state.project || (projects.length === 1 ? projects[0] : '');
  $('expiry-field').hidden = !state.lifecycle;
  openDialog($('create-dialog'), $('create-name'));
}
$('create-open').addEventListener('click', openCreate);
$('empty-create').addEventListener('click', openCreate);

$('create-name').addEventListener('input', () => fieldError('create-name', ''));
$('create-project').addEventListener('input', () => fieldError('create-project', ''));

$('create-form').addEventListener('submit', guarded(async (ev) => {
  ev.preventDefault();
  for (const id of ['create-name', 'create-project', 'create-scopes', 'create-expiry']) fieldError(id, '');
  $('create-error').textContent = '';
  const body = {
    project_id: $('create-project').value.trim(),
    name: $('create-name').value.trim(),
    token_scopes: [...$('create-form').querySelectorAll('input[name=scope]:checked')].map((c) => c.value),
  };
  const days = $('create-expiry').value;
  if (state.lifecycle && days) body.expires_at = new Date(Date.now() + days * 86400e3).toISOString();
  const button = $('create-form').querySelector('[type=submit]');
  button.disabled = true;
  let tok;
  try {
    tok = await api.create(state.region, body);
  } catch (e) {
    if (!(e instanceof ApiError) || e.status === 401) throw e;
    const map = { name: 'create-name', project_id: 'create-project', token_scopes: 'create-scopes',
      expires_at: 'create-expiry' };
    const target = map[e.field];
    if (target) {
      fieldError(target, e.body?.details?.[0]?.help_message || e.message);
      (target === 'create-scopes' ? $('create-form').querySelector('input[name=scope]') : $(target)).focus();
    } else {
      $('create-error').textContent = e.message;
    }
    return;
  } finally {
    button.disabled = false;
  }
  closeDialog($('create-dialog'));
  showSecret(tok, 'Token created');
  await load(); // the new row appears behind the secret
}));

// ---- the secret, once -------------------------------------------------------------------

let secretToken = null;

function showSecret(tok, title) {
  secretToken = tok;
  $('secret-title').textContent = title;
  $('secret-sub').textContent = `${tok.name} · ${tok.region} · project ${tok.project_id}`;
  $('secret-key').value = tok.secret_key;
  const sel = $('snippet-agent');
  sel.replaceChildren(...agents().map((a) => h('option', { value: a.id, text: a.name })));
  sel.value = suggested(tok.scopes);
  renderSnippet();
  openDialog($('secret-dialog'), $('secret-copy'));
}

function renderSnippet() {
  if (!secretToken) return;
  const gw = state.info.gateway_url;
  $('snippet').textContent = snippet($('snippet-agent').value, gw, secretToken.secret_key);
  $('snippet-note').textContent = gw ? `Gateway: ${gw}`
    : 'Replace <your-gateway> with your gateway\'s address (the operator can set --console-gateway-url to fill it in).';
}

$('snippet-agent').addEventListener('change', renderSnippet);
/** Copies, then says so on the button for two seconds. */
function copyButton(button, what, text) {
  const label = button.textContent;
  button.addEventListener('click', guarded(async () => {
    if (!(await copy(text(), what))) return;
    button.textContent = 'Copied';
    setTimeout(() => { button.textContent = label; }, 2000);
  }));
}
copyButton($('secret-copy'), 'Secret key', () => $('secret-key').value);
copyButton($('snippet-copy'), 'Snippet', () => $('snippet').textContent);

async function secretDone() {
  // The secret leaves the page: nothing keeps it (not the DOM, not storage).
  secretToken = null;
  $('secret-key').value = '';
  $('snippet').textContent = '';
  const d = $('secret-dialog');
  d.close();
  openers.delete(d);
  await load();
  $('create-open').focus();
}
$('secret-done').addEventListener('click', guarded(secretDone));
$('secret-dialog').addEventListener('cancel', (ev) => { ev.preventDefault(); guarded(secretDone)(); });

// ---- delete and rotate ------------------------------------------------------------------

function openDelete(t) {
  state.deleting = t;
  $('delete-title').textContent = `Delete ${t.name}?`;
  $('delete-text').textContent = `Agents using this token (${t.id}) are refused from their next request, on every node. This cannot be undone.`;
  $('delete-error').textContent = '';
  openDialog($('delete-dialog'), $('delete-form').querySelector('[data-close]'));
}

$('delete-form').addEventListener('submit', guarded(async (ev) => {
  ev.preventDefault();
  const t = state.deleting;
  try {
    await api.remove(state.region, t.id);
  } catch (e) {
    if (!(e instanceof ApiError) || e.status === 401) throw e;
    $('delete-error').textContent = e.message;
    return;
  }
  closeDialog($('delete-dialog'));
  await load();
  $('tokens-title').focus();
  announce(`Token ${t.name} deleted.`);
}));

function openRotate(t) {
  state.rotating = t;
  $('rotate-title').textContent = `Rotate ${t.name}?`;
  $('rotate-text').textContent = 'A new token with the same name, project and scopes is created, and its secret shown once. The old secret stops working after the grace period you choose.';
  $('rotate-error').textContent = '';
  openDialog($('rotate-dialog'), $('rotate-grace'));
}

$('rotate-form').addEventListener('submit', guarded(async (ev) => {
  ev.preventDefault();
  let tok;
  try {
    tok = await api.rotate(state.region, state.rotating.id, $('rotate-grace').value);
  } catch (e) {
    if (!(e instanceof ApiError) || e.status === 401) throw e;
    $('rotate-error').textContent = e.message;
    return;
  }
  closeDialog($('rotate-dialog'));
  showSecret(tok, 'Token rotated');
  await load();
}));

// ---- start ----------------------------------------------------------------------------

window.addEventListener('unhandledrejection', (ev) => failed(ev.reason));
if (session.key) {
  start().catch((e) => {
    session.forget();
    show('signin');
    $('signin-error').textContent = e.message;
  });
} else {
  show('signin');
  $('api-key').focus();
}
