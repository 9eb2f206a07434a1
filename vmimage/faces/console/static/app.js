// The vmimage console: plain DOM, no framework. Everything it shows comes from the service's
// own APIs (Keystone, Glance v2, the native API) called with the signed-in person's token,
// which lives in sessionStorage only. Text from the service is always set as text
// (textContent / text nodes), never parsed as HTML.
import { LANGUAGES, language, setLanguage, t } from './i18n.js';

const SESSION_KEY = 'vmimage.console.session';
const NATIVE = '/vmimage/v1';
const PAGE_SIZE = 20;
const DISK_FORMATS = ['qcow2', 'raw', 'vmdk', 'vhd', 'vhdx', 'vdi', 'iso', 'ploop', 'aki', 'ari', 'ami'];
const IMAGE_STATUSES = ['queued', 'saving', 'uploading', 'importing', 'active', 'deactivated', 'killed'];
const JOB_POLL_MS = 1500;

// --- small helpers -----------------------------------------------------------------------------

// h('a', {href: '#/x', onclick: f}, 'text', child): an element; strings become text nodes.
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (key === 'class') el.className = value;
    else if (key === 'value') el.value = value;
    else if (key === 'checked') el.checked = value;
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

function humanSize(bytes) {
  if (bytes === null || bytes === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

function shown(value) {
  if (value === null || value === undefined || value === '') return '—';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

let idCounter = 0;
function fieldId(stem) { idCounter += 1; return `${stem}-${idCounter}`; }

// A labelled control: <label for=id>words</label> + the control.
function field(words, control) {
  control.id = control.id || fieldId('field');
  return h('div', { class: 'field' }, h('label', { for: control.id }, words), control);
}

// --- the session -------------------------------------------------------------------------------

let session = null;
let expiryTimer = null;
let endedNotice = false;

function loadSession() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    if (saved && saved.token && Date.parse(saved.expiresAt) > Date.now()) return saved;
  } catch { /* a damaged entry is no session */ }
  sessionStorage.removeItem(SESSION_KEY);
  return null;
}

function startSession(value) {
  session = value;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify(value));
  watchExpiry();
}

function watchExpiry() {
  clearTimeout(expiryTimer);
  if (!session) return;
  const left = Date.parse(session.expiresAt) - Date.now();
  // Timers beyond ~24 days overflow; a token never lives that long here.
  expiryTimer = setTimeout(() => endSession(true), Math.max(0, Math.min(left, 2 ** 31 - 1)));
}

function endSession(expired) {
  clearTimeout(expiryTimer);
  session = null;
  sessionStorage.removeItem(SESSION_KEY);
  endedNotice = expired;
  stopPolling();
  if (location.hash !== '#/signin') history.replaceState(null, '', '#/signin');
  render();
}

const canWrite = () => !!session && session.roles.some((role) => role === 'admin' || role === 'member');
const isAdmin = () => !!session && session.roles.includes('admin');

// --- the APIs ----------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function errorMessage(resp) {
  try {
    const body = await resp.json();
    const error = body.error ?? body;
    return error.message ?? error.error_msg ?? body.message ?? `${resp.status} ${resp.statusText}`;
  } catch {
    return `${resp.status} ${resp.statusText}`;
  }
}

async function api(method, path, { json, headers = {} } = {}) {
  const init = { method, headers: { 'X-Auth-Token': session?.token ?? '', ...headers } };
  if (json !== undefined) {
    init.headers['Content-Type'] = init.headers['Content-Type'] ?? 'application/json';
    init.body = JSON.stringify(json);
  }
  const resp = await fetch(path, init);
  if (resp.status === 401) {       // expired or revoked: back to sign-in
    endSession(true);
    throw new ApiError(401, t('Your session has ended. Sign in again.'));
  }
  if (!resp.ok) throw new ApiError(resp.status, await errorMessage(resp));
  if (resp.status === 204) return null;
  const type = resp.headers.get('Content-Type') || '';
  return type.includes('json') ? resp.json() : resp.text();
}

async function signIn(user, password, project) {
  const resp = await fetch('/identity/v3/auth/tokens', {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ auth: {
      identity: { methods: ['password'], password: { user: { name: user, password, domain: { name: 'Default' } } } },
      scope: { project: { name: project, domain: { name: 'Default' } } } } }),
  });
  if (!resp.ok) throw new ApiError(resp.status, await errorMessage(resp));
  const token = resp.headers.get('X-Subject-Token');
  const body = (await resp.json()).token;
  startSession({ token, expiresAt: body.expires_at, user: body.user.name, userId: body.user.id,
    project: body.project.name, projectId: body.project.id, roles: body.roles.map((role) => role.name) });
}

async function signOut() {
  const token = session?.token;
  if (token) {
    try {
      await fetch('/identity/v3/auth/tokens', { method: 'DELETE',
        headers: { 'X-Auth-Token': token, 'X-Subject-Token': token } });
    } catch { /* the session ends here whatever the network says */ }
  }
  endSession(false);
}

// --- live updates ------------------------------------------------------------------------------

let pollTimer = null;
function poll(fn) { stopPolling(); pollTimer = setInterval(fn, JOB_POLL_MS); }
function stopPolling() { clearInterval(pollTimer); pollTimer = null; }

// --- the frame ---------------------------------------------------------------------------------

const root = () => document.getElementById('app');

function languageControl() {
  const select = h('select', { onchange: (ev) => { setLanguage(ev.target.value); render(); } },
    LANGUAGES.map(([code, words]) => h('option', { value: code, lang: code === 'zh' ? 'zh-CN' : 'en',
      selected: code === language() }, words)));
  return h('div', { class: 'language' }, field(t('Language'), select));
}

const SECTIONS = [['images', 'Images'], ['servers', 'Servers'], ['volumes', 'Volumes'],
  ['snapshots', 'Snapshots'], ['jobs', 'Jobs']];

function frame(section, content) {
  const sections = isAdmin() ? [...SECTIONS, ['admin', 'Administration']] : SECTIONS;
  const links = sections.map(([key, words]) => h('li', {}, h('a', { href: `#/${key}`,
    'aria-current': key === section ? 'page' : false }, t(words))));
  return [
    h('header', { class: 'top' },
      h('span', { class: 'brand' }, t('vmimage console')),
      h('nav', { 'aria-label': t('Main') }, h('ul', {}, links)),
      h('div', { class: 'who' },
        h('span', {}, t('Signed in as {user} in {project}', { user: session.user, project: session.project })),
        canWrite() ? null : h('span', { class: 'badge' }, t('Read only'))),
      languageControl(),
      h('button', { type: 'button', onclick: signOut }, t('Sign out'))),
    h('main', { id: 'main' }, content),
  ];
}

function notice(words, kind = 'error') {
  return h('p', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' }, words);
}

function table(headers, rows, empty = t('Nothing here.')) {
  if (!rows.length) return h('p', { class: 'empty' }, empty);
  return h('table', {}, h('thead', {}, h('tr', {}, headers)), h('tbody', {}, rows));
}

function render() {
  document.title = t('vmimage console');
  const app = root();
  if (!session) { stopPolling(); app.replaceChildren(...signInPage()); return; }
  const [section, id] = location.hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  const pages = { images: id ? imagePage : imagesPage, servers: id ? serverPage : serversPage,
    volumes: id ? volumePage : volumesPage, snapshots: id ? snapshotPage : snapshotsPage, jobs: jobsPage,
    admin: adminPage };
  const page = pages[section];
  if (!page) { location.hash = '#/images'; return; }
  stopPolling();
  const content = h('div', { class: 'page' });
  app.replaceChildren(...frame(section, content));
  page(content, id).catch((error) => {
    if (error.status !== 401) content.replaceChildren(notice(error.message));
  });
}

// --- sign in -----------------------------------------------------------------------------------

function signInPage() {
  const user = h('input', { name: 'user', autocomplete: 'username', required: true });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const project = h('input', { name: 'project', required: true });
  const message = h('div', { 'aria-live': 'polite' }, endedNotice ? notice(t('Your session has ended. Sign in again.'), 'info') : null);
  const submit = h('button', { type: 'submit' }, t('Sign in'));
  const form = h('form', { class: 'signin', onsubmit: async (ev) => {
    ev.preventDefault();
    submit.disabled = true;
    message.replaceChildren(notice(t('Signing in…'), 'info'));
    try {
      await signIn(user.value, password.value, project.value);
      endedNotice = false;
      if (!location.hash || location.hash === '#/signin') history.replaceState(null, '', '#/images');
      render();
    } catch (error) {
      message.replaceChildren(notice(error.message));
      submit.disabled = false;
    }
  } }, h('h1', {}, t('vmimage console')), field(t('User'), user), field(t('Password'), password),
  field(t('Project'), project), submit, message);
  return [h('header', { class: 'top' }, h('span', { class: 'brand' }, 'vmimage'), languageControl()),
    h('main', { id: 'main' }, form)];
}

// --- images ------------------------------------------------------------------------------------

const imageQuery = { sortKey: 'created_at', sortDir: 'desc', name: '', status: '', format: '', markers: [null] };

function imagesUrl(marker) {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE), sort_key: imageQuery.sortKey,
    sort_dir: imageQuery.sortDir });
  if (imageQuery.name) params.set('name', imageQuery.name);
  if (imageQuery.status) params.set('status', imageQuery.status);
  if (imageQuery.format) params.set('disk_format', imageQuery.format);
  if (marker) params.set('marker', marker);
  return `/v2/images?${params}`;
}

async function imagesPage(content) {
  const listing = h('div', { class: 'listing', 'aria-live': 'polite' }, h('p', {}, t('Loading…')));
  const search = h('input', { type: 'search', name: 'search', value: imageQuery.name,
    placeholder: t('Search by name') });
  const status = h('select', { name: 'status' }, h('option', { value: '' }, t('All')),
    IMAGE_STATUSES.map((s) => h('option', { value: s, selected: s === imageQuery.status }, s)));
  const format = h('select', { name: 'format' }, h('option', { value: '' }, t('All')),
    DISK_FORMATS.map((f) => h('option', { value: f, selected: f === imageQuery.format }, f)));
  const reload = () => { imageQuery.markers = [null]; showImages(listing); };
  const pageMessage = h('div', { 'aria-live': 'polite' });
  const filters = h('form', { class: 'toolbar', role: 'search', onsubmit: (ev) => {
    ev.preventDefault(); imageQuery.name = search.value.trim(); reload();
  } }, field(t('Search'), search), field(t('Status'), status), field(t('Format'), format));
  status.addEventListener('change', () => { imageQuery.status = status.value; reload(); });
  format.addEventListener('change', () => { imageQuery.format = format.value; reload(); });
  content.replaceChildren(h('div', { class: 'heading' }, h('h1', {}, t('Images')),
    canWrite() ? h('button', { type: 'button', onclick: () => importDialog(pageMessage) }, t('Import from bucket')) : null,
    canWrite() ? h('button', { type: 'button', onclick: () => uploadDialog(() => reload()) }, t('Upload image')) : null),
  pageMessage, filters, listing);
  await showImages(listing);
}

let imagesShown = 0;     // the latest listing asked for: an earlier answer arriving late is dropped

async function showImages(listing) {
  const asked = ++imagesShown;
  const page = imageQuery.markers.length;
  const body = await api('GET', imagesUrl(imageQuery.markers[page - 1]));
  if (asked !== imagesShown) return;
  const sortable = (key, words) => {
    const active = imageQuery.sortKey === key;
    return h('th', { scope: 'col', 'aria-sort': active ? (imageQuery.sortDir === 'asc' ? 'ascending' : 'descending') : false },
      h('button', { type: 'button', class: 'sort', onclick: () => {
        imageQuery.sortDir = active && imageQuery.sortDir === 'asc' ? 'desc' : 'asc';
        imageQuery.sortKey = key; imageQuery.markers = [null]; showImages(listing);
      } }, t(words), active ? h('span', { class: 'arrow', 'aria-hidden': 'true' },
        imageQuery.sortDir === 'asc' ? ' ▲' : ' ▼') : null));
  };
  const headers = [sortable('name', 'Name'), sortable('status', 'Status'), sortable('disk_format', 'Format'),
    sortable('size', 'Size'), h('th', { scope: 'col' }, t('Visibility')), sortable('created_at', 'Created')];
  const rows = body.images.map((image) => h('tr', {},
    h('td', {}, h('a', { href: `#/images/${encodeURIComponent(image.id)}` }, image.name ?? image.id)),
    h('td', {}, h('span', { class: `status ${image.status}` }, image.status)), h('td', {}, shown(image.disk_format)),
    h('td', {}, humanSize(image.size)), h('td', {}, image.visibility), h('td', {}, shown(image.created_at))));
  const nextMarker = body.next ? new URLSearchParams(body.next.split('?')[1] || '').get('marker') : null;
  const pager = h('div', { class: 'pager' },
    h('button', { type: 'button', disabled: page === 1, onclick: () => { imageQuery.markers.pop(); showImages(listing); } }, t('Previous')),
    h('span', {}, t('Page {n}', { n: page })),
    h('button', { type: 'button', disabled: !nextMarker, onclick: () => { imageQuery.markers.push(nextMarker); showImages(listing); } }, t('Next')));
  listing.replaceChildren(table(headers, rows, t('No images.')), pager);
}

function dialog(title, body, { onclose } = {}) {
  const titleId = fieldId('dialog-title');
  const box = h('dialog', { 'aria-labelledby': titleId }, h('h2', { id: titleId }, title), body);
  box.addEventListener('close', () => { box.remove(); if (onclose) onclose(); });
  document.body.append(box);
  box.showModal();
  return box;
}

function uploadDialog(done) {
  const name = h('input', { name: 'name', required: true });
  const format = h('select', { name: 'disk_format' }, DISK_FORMATS.map((f) => h('option', { value: f }, f)));
  const file = h('input', { name: 'file', type: 'file', required: true });
  const progress = h('progress', { max: '100', value: '0', 'aria-label': t('Upload progress') });
  const message = h('div', { 'aria-live': 'polite' });
  const upload = h('button', { type: 'submit' }, t('Upload'));
  const cancel = h('button', { type: 'button' }, t('Cancel'));
  let xhr = null, imageId = null, finished = false;
  file.addEventListener('change', () => {
    if (!name.value && file.files[0]) name.value = file.files[0].name.replace(/\.[^.]*$/, '');
  });
  const form = h('form', { onsubmit: async (ev) => {
    ev.preventDefault();
    const chosen = file.files[0];
    if (!chosen) return;
    upload.disabled = true;
    message.replaceChildren(notice(t('Uploading…'), 'info'));
    try {
      const image = await api('POST', '/v2/images', { json: { name: name.value, disk_format: format.value,
        container_format: 'bare' } });
      imageId = image.id;
      await sendFile(chosen, image.id, (sent) => { progress.value = Math.floor((sent * 100) / (chosen.size || 1)); },
        (request) => { xhr = request; });
      progress.value = 100;
      const stored = await api('GET', `/v2/images/${encodeURIComponent(image.id)}`);
      finished = true;
      message.replaceChildren(notice(t('Image {name} is {status}.', { name: stored.name, status: stored.status }), 'info'));
      cancel.textContent = t('Close');
      done();
    } catch (error) {
      if (error.name !== 'AbortError') message.replaceChildren(notice(error.message));
      upload.disabled = false;
    } finally {
      xhr = null;
    }
  } }, field(t('Name'), name), field(t('Disk format'), format), field(t('Image file'), file), progress, message,
  h('div', { class: 'buttons' }, upload, cancel));
  const box = dialog(t('Upload image'), form);
  // Escape closes a dialog by itself: here it must cancel the upload as the button does.
  box.addEventListener('cancel', (ev) => { ev.preventDefault(); cancel.click(); });
  cancel.addEventListener('click', async () => {
    if (xhr) xhr.abort();
    // An upload cut short leaves a queued image with nothing stored: take it away too.
    if (imageId && !finished) {
      try { await api('DELETE', `/v2/images/${encodeURIComponent(imageId)}`); } catch { /* already gone */ }
      done();
    }
    box.close();
  });
}

// The file goes as the request body, read from disk by the browser as it is sent (never
// whole into memory); XMLHttpRequest because fetch reports no upload progress.
function sendFile(file, imageId, onProgress, onStart) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('PUT', `/v2/images/${encodeURIComponent(imageId)}/file`);
    request.setRequestHeader('X-Auth-Token', session.token);
    request.setRequestHeader('Content-Type', 'application/octet-stream');
    request.upload.addEventListener('progress', (ev) => onProgress(ev.loaded));
    request.addEventListener('load', async () => {
      if (request.status === 401) { endSession(true); reject(new ApiError(401, t('Your session has ended. Sign in again.'))); return; }
      if (request.status >= 200 && request.status < 300) { resolve(); return; }
      let text = `${request.status} ${request.statusText}`;
      try { const body = JSON.parse(request.responseText); text = (body.error ?? body).message ?? text; } catch { /* not JSON */ }
      reject(new ApiError(request.status, text));
    });
    request.addEventListener('error', () => reject(new ApiError(0, 'Network error')));
    request.addEventListener('abort', () => { const e = new Error(t('Upload cancelled.')); e.name = 'AbortError'; reject(e); });
    onStart(request);
    request.send(file);
  });
}

function attributes(entries) {
  return h('dl', { class: 'attributes' }, entries.map(([key, value]) => [h('dt', {}, key), h('dd', {}, shown(value))]));
}

async function imagePage(content, id) {
  const image = await api('GET', `/v2/images/${encodeURIComponent(id)}`);
  const [ids, members, tasks, jobs] = await Promise.all([
    api('GET', `${NATIVE}/images/${encodeURIComponent(id)}`).then((b) => b.image.ids).catch(() => ({ glance: image.id })),
    api('GET', `/v2/images/${encodeURIComponent(id)}/members`).then((b) => b.members).catch(() => []),
    api('GET', `/v2/images/${encodeURIComponent(id)}/tasks`).then((b) => b.tasks).catch(() => []),
    api('GET', `${NATIVE}/jobs`).then((b) => b.jobs).catch(() => []),
  ]);
  const pageMessage = h('div', { 'aria-live': 'polite' });
  const madeBy = jobs.filter((job) => (job.entities?.image_ids ?? []).includes(image.id));
  const actions = [];
  if (canWrite() && image.owner === session.projectId) {
    actions.push(h('button', { type: 'button', onclick: () => shareDialog(image, () => render()) }, t('Share')));
    if (image.status === 'active') {
      actions.push(h('button', { type: 'button', onclick: () => exportDialog(image, pageMessage) }, t('Export to bucket')));
    }
    actions.push(h('button', { type: 'button', class: 'danger', onclick: () => deleteDialog(image) }, t('Delete')));
  }
  content.replaceChildren(
    h('p', {}, h('a', { href: '#/images' }, t('Back to images'))),
    h('div', { class: 'heading' }, h('h1', {}, image.name ?? image.id), actions), pageMessage,
    h('h2', {}, t('Identifiers')), attributes([[t('Glance id'), ids.glance], [t('Huawei IMS id'), ids.huawei_ims],
      [t('JD Cloud id'), ids.jdcloud], [t('Aries id'), ids.aries]]),
    h('h2', {}, t('Attributes')),
    attributes(Object.keys(image).sort().filter((k) => k !== 'tags').map((k) => [k, image[k]])),
    insightPanel(image),
    h('h2', {}, t('Tags')), image.tags.length ? h('ul', { class: 'tags' }, image.tags.map((tag) => h('li', {}, tag))) : h('p', {}, '—'),
    h('h2', {}, t('Stores')), h('p', {}, shown(image.stores)),
    h('h2', {}, t('Members')), table([h('th', { scope: 'col' }, t('Member')), h('th', { scope: 'col' }, t('Status'))],
      members.map((m) => h('tr', {}, h('td', {}, m.member_id), h('td', {}, m.status)))),
    h('h2', {}, t('Made by job')), jobsTable(madeBy),
    h('h2', {}, t('Tasks')), table([h('th', { scope: 'col' }, t('ID')), h('th', { scope: 'col' }, t('Status')),
      h('th', { scope: 'col' }, t('Failure'))],
    tasks.map((task) => h('tr', {}, h('td', {}, task.id), h('td', {}, task.status), h('td', {}, shown(task.message))))));
}

// --- image insight (issue 25): what reading the image found, without booting it -------------

// The report comes from the image itself (a hostile guest chooses its os-release and hostname):
// every value is set as text by h(), never as markup.
const CHECK_RESULTS = { pass: ['✓', 'pass'], warn: ['!', 'warning'], fail: ['✗', 'fail'] };
const INSIGHT_FIELDS = [['os_distribution', 'Distribution'], ['os_release', 'Version'], ['os_version', 'OS version'],
  ['os_family', 'OS family'], ['architecture', 'Architecture'], ['boot_mode', 'Boot mode']];

function insightPanel(image) {
  const headingId = fieldId('insight-title');
  const body = h('div', { 'aria-live': 'polite' }, h('p', {}, t('Loading…')));
  const message = h('div', { 'aria-live': 'polite' });
  const writable = canWrite() && (image.owner === session.projectId || isAdmin()) && image.status === 'active';
  const again = writable ? h('button', { type: 'button', onclick: async () => {
    again.disabled = true;
    message.replaceChildren();
    try {
      // The POST marks the report pending in the same write: from here on the panel follows
      // the new inspection (or a newer one asked for meanwhile) to its end.
      await api('POST', `${NATIVE}/images/${encodeURIComponent(image.id)}/insight`);
      await refresh();
    } catch (error) {
      if (error.status !== 401) message.replaceChildren(notice(error.message));
      again.disabled = false;
    }
  } }, t('Inspect again')) : null;
  const section = h('section', { class: 'insight', 'aria-labelledby': headingId },
    h('div', { class: 'heading' }, h('h2', { id: headingId }, t('Insight')), again), message, body);
  const refresh = async () => {
    const { insight } = await api('GET', `${NATIVE}/images/${encodeURIComponent(image.id)}/insight`);
    if (!section.isConnected) return;     // the person has moved on: no polling for a page gone
    let status = insight.status;
    if (status === 'pending' && insight.job_id) {
      // The report says pending until it is read; the job says whether the reading started.
      try {
        const job = await api('GET', `${NATIVE}/jobs/${encodeURIComponent(insight.job_id)}`);
        if ((job.job ?? job).status === 'RUNNING') status = 'running';
      } catch { /* the job's own view is extra: pending stays pending */ }
    }
    const ended = status === 'done' || status === 'failed' || status === 'none';
    if (ended) {
      if (again) again.disabled = false;
      stopPolling();
    } else if (!pollTimer) {
      poll(() => { refresh().catch(() => { /* the next round tries again */ }); });
    }
    if (again && !ended) again.disabled = true;
    body.replaceChildren(...insightBody(insight, status));
  };
  refresh().catch((error) => { if (error.status !== 401) body.replaceChildren(notice(error.message)); });
  return section;
}

function insightStatusWords(status) {
  return { none: t('not inspected'), pending: t('pending'), running: t('running'), done: t('done'),
    failed: t('failed') }[status] ?? status;
}

function insightBody(insight, status) {
  const out = [];
  const statusLine = [h('span', { class: `status insight-${status}` }, insightStatusWords(status))];
  if (insight.inspected_at && (status === 'done' || status === 'failed')) {
    statusLine.push(' ', h('span', { class: 'hint' }, t('at {when}', { when: insight.inspected_at })));
  }
  const summary = [[t('Inspection'), statusLine]];
  if (status === 'failed') summary.push([t('Failure'), shown(insight.error)]);
  const report = insight.report;
  if (report && status !== 'failed') {
    const os = report.os ?? {};
    summary.push([t('OS family'), shown(os.family)], [t('Distribution'),
        os.pretty_name ? `${shown(os.distribution)} (${os.pretty_name})` : shown(os.distribution)],
      [t('Version'), shown(os.version)], [t('Architecture'), shown(os.architecture)],
      [t('Kernels'), os.kernels?.length ? os.kernels.join(', ') : '—'], [t('Boot mode'), shown(os.boot_mode)],
      [t('Hostname'), shown(os.hostname)]);
  }
  out.push(h('dl', { class: 'attributes' }, summary.map(([key, value]) => [h('dt', {}, key), h('dd', {}, value)])));
  if (status === 'none') out.push(h('p', { class: 'hint' }, t('This image was never inspected.')));
  if (!report || status === 'failed') return out;
  const names = Object.fromEntries(INSIGHT_FIELDS);
  const fieldName = (key) => (names[key] ? t(names[key]) : key);
  if (report.mismatches?.length) {
    out.push(h('div', { class: 'notice warn', role: 'note' }, h('strong', {}, t('Declared and detected differ')),
      h('ul', {}, report.mismatches.map((m) => h('li', {},
        t('{field}: declared {declared}, detected {detected}',
          { field: fieldName(m.field), declared: shown(m.declared), detected: shown(m.detected) }))))));
  }
  out.push(h('h3', {}, t('Checks')), table([col('Check'), col('Result'), col('Reason')],
    (report.checks ?? []).map((check) => {
      const [mark, words] = CHECK_RESULTS[check.result] ?? ['?', check.result];
      return h('tr', { class: `check ${CHECK_RESULTS[check.result] ? check.result : ''}` }, h('td', {}, check.name),
        h('td', {}, h('span', { class: `result ${check.result}` }, h('span', { 'aria-hidden': 'true' }, mark), ' ',
          t(words))), h('td', {}, shown(check.reason)));
    })));
  const filled = insight.filled ?? [];
  out.push(h('h3', {}, t('Filled into the image')), filled.length
    ? h('ul', { class: 'filled' }, filled.map((key) => h('li', {}, names[key] ? `${fieldName(key)} (${key})` : key)))
    : h('p', { class: 'hint' }, t('Nothing: every field was already set.')));
  return out;
}

function deleteDialog(image) {
  const message = h('div', { 'aria-live': 'polite' });
  const yes = h('button', { type: 'button', class: 'danger' }, t('Delete'));
  const no = h('button', { type: 'button' }, t('Cancel'));
  const box = dialog(t('Delete image'), [h('p', {}, t('Delete image {name}?', { name: image.name ?? image.id })), message,
    h('div', { class: 'buttons' }, yes, no)]);
  no.addEventListener('click', () => box.close());
  yes.addEventListener('click', async () => {
    try {
      await api('DELETE', `/v2/images/${encodeURIComponent(image.id)}`);
      box.close();
      location.hash = '#/images';
    } catch (error) { message.replaceChildren(notice(error.message)); }
  });
}

function jobStarted(where, job) {
  where.replaceChildren(h('p', { class: 'notice info', role: 'status' }, t('Job {id} started.', { id: job.id }), ' ',
    h('a', { href: '#/jobs' }, t('Jobs'))));
}

// A form in a dialog whose submit calls the API; a refusal is shown in it, success closes it.
function formDialog(title, fields, submitWords, action) {
  const message = h('div', { 'aria-live': 'polite' });
  const cancel = h('button', { type: 'button' }, t('Cancel'));
  const form = h('form', { onsubmit: async (ev) => {
    ev.preventDefault();
    try { await action(); box.close(); } catch (error) { message.replaceChildren(notice(error.message)); }
  } }, fields, message, h('div', { class: 'buttons' }, h('button', { type: 'submit' }, submitWords), cancel));
  const box = dialog(title, form);
  cancel.addEventListener('click', () => box.close());
  return box;
}

function importDialog(pageMessage) {
  const name = h('input', { name: 'name', required: true });
  const bucket = h('input', { name: 'bucket', required: true });
  const key = h('input', { name: 'key', required: true });
  const format = h('select', { name: 'disk_format' }, DISK_FORMATS.map((f) => h('option', { value: f }, f)));
  formDialog(t('Import from bucket'), [field(t('Name'), name), field(t('Bucket'), bucket), field(t('Object key'), key),
    field(t('Disk format'), format)], t('Import'), async () => {
    const { job } = await api('POST', `${NATIVE}/images/import`, { json: { name: name.value, bucket: bucket.value,
      key: key.value, disk_format: format.value } });
    jobStarted(pageMessage, job);
  });
}

function exportDialog(image, pageMessage) {
  const bucket = h('input', { name: 'bucket', required: true });
  const key = h('input', { name: 'key', required: true, value: `${image.name ?? image.id}.${image.disk_format ?? 'img'}` });
  formDialog(t('Export to bucket'), [field(t('Bucket'), bucket), field(t('Object key'), key)], t('Export'), async () => {
    const { job } = await api('POST', `${NATIVE}/images/${encodeURIComponent(image.id)}/export`,
      { json: { bucket: bucket.value, key: key.value } });
    jobStarted(pageMessage, job);
  });
}

function shareDialog(image, done) {
  const project = h('input', { name: 'member', required: true });
  const message = h('div', { 'aria-live': 'polite' });
  const cancel = h('button', { type: 'button' }, t('Cancel'));
  const form = h('form', { onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      if (image.visibility !== 'shared') {
        await api('PATCH', `/v2/images/${encodeURIComponent(image.id)}`, {
          json: [{ op: 'replace', path: '/visibility', value: 'shared' }],
          headers: { 'Content-Type': 'application/openstack-images-v2.1-json-patch' } });
      }
      await api('POST', `/v2/images/${encodeURIComponent(image.id)}/members`, { json: { member: project.value.trim() } });
      box.close();
      done();
    } catch (error) { message.replaceChildren(notice(error.message)); }
  } }, field(t('Project id'), project), message, h('div', { class: 'buttons' }, h('button', { type: 'submit' }, t('Share')), cancel));
  const box = dialog(t('Share with project'), form);
  cancel.addEventListener('click', () => box.close());
}

// --- servers, volumes, snapshots ---------------------------------------------------------------

const col = (words) => h('th', { scope: 'col' }, t(words));

async function serversPage(content) {
  const { servers } = await api('GET', `${NATIVE}/servers`);
  content.replaceChildren(h('h1', {}, t('Servers')), table(
    [col('Name'), col('Status'), col('Image'), col('Memory (MiB)'), col('Created')],
    servers.map((s) => h('tr', {}, h('td', {}, h('a', { href: `#/servers/${encodeURIComponent(s.id)}` }, s.name ?? s.id)),
      h('td', {}, h('span', { class: `status ${s.status}` }, s.status)), h('td', {}, shown(s.image_id)),
      h('td', {}, shown(s.memory_mb)), h('td', {}, shown(s.created_at))))));
}

function disksTable(server) {
  const disks = [server.system_disk, ...server.data_disks].filter(Boolean);
  return table([col('Device'), col('Name'), col('Size'), col('Type'), col('Status')],
    disks.map((d) => h('tr', {}, h('td', {}, shown(d.device)), h('td', {}, shown(d.name)), h('td', {}, `${d.size_gb} GB`),
      h('td', {}, shown(d.type)), h('td', {}, d.status))));
}

async function serverPage(content, id) {
  const { server } = await api('GET', `${NATIVE}/servers/${encodeURIComponent(id)}`);
  const message = h('div', { 'aria-live': 'polite' });
  const act = (action) => async () => {
    try {
      await api('POST', `${NATIVE}/servers/${encodeURIComponent(id)}/actions/${action}`);
      render();
    } catch (error) { message.replaceChildren(notice(error.message)); }
  };
  const actions = canWrite() ? [
    server.status === 'stopped' ? h('button', { type: 'button', onclick: act('start') }, t('Start')) : null,
    server.status === 'running' ? h('button', { type: 'button', onclick: act('stop') }, t('Stop')) : null,
    h('button', { type: 'button', onclick: () => createImageDialog(server, message) }, t('Create image')),
  ] : [];
  content.replaceChildren(
    h('p', {}, h('a', { href: '#/servers' }, t('Back to servers'))),
    h('div', { class: 'heading' }, h('h1', {}, server.name ?? server.id), actions), message,
    h('h2', {}, t('Attributes')), attributes(['id', 'name', 'status', 'image_id', 'memory_mb', 'task', 'created_at']
      .map((k) => [k, server[k]])),
    h('h2', {}, t('Disks')), disksTable(server));
}

async function createImageDialog(server, pageMessage) {
  const snapshots = await api('GET', `${NATIVE}/snapshots`).then((b) => b.snapshots).catch(() => []);
  const name = h('input', { name: 'name', required: true });
  const kind = h('select', { name: 'kind' }, h('option', { value: 'system' }, t('System disk')),
    h('option', { value: 'whole' }, t('Whole server')));
  const description = h('input', { name: 'description' });
  // Per data disk: exclude it or give it a new size; and optionally a disk inserted from a snapshot.
  const perDisk = server.data_disks.map((disk) => {
    const exclude = h('input', { type: 'checkbox', 'aria-label': `${t('Exclude')} ${disk.device}` });
    const resize = h('input', { type: 'number', min: String(disk.size_gb), 'aria-label': `${t('Resize (GB)')} ${disk.device}` });
    return { disk, exclude, resize, row: h('tr', {}, h('td', {}, disk.device), h('td', {}, `${disk.size_gb} GB`),
      h('td', {}, exclude), h('td', {}, resize)) };
  });
  const insertDevice = h('input', { name: 'insert_device', placeholder: 'vdd' });
  const insertSnapshot = h('select', { name: 'insert_snapshot' }, h('option', { value: '' }, t('none')),
    h('option', { value: 'empty' }, t('An empty disk')),
    snapshots.map((s) => h('option', { value: s.id }, `${s.name ?? s.id} (${s.size_gb} GB)`)));
  const emptySize = h('input', { type: 'number', min: '1', name: 'insert_size' });
  const wholeOptions = h('fieldset', { hidden: true }, h('legend', {}, t('Disks')),
    perDisk.length ? h('table', {}, h('thead', {}, h('tr', {}, col('Device'), col('Size'), col('Exclude'), col('Resize (GB)'))),
      h('tbody', {}, perDisk.map((p) => p.row))) : null,
    h('p', {}, t('Insert a disk from a snapshot at')), field(t('Device'), insertDevice), field(t('Snapshot'), insertSnapshot),
    field(t('Size of an empty disk (GB)'), emptySize));
  kind.addEventListener('change', () => { wholeOptions.hidden = kind.value !== 'whole'; });
  const message = h('div', { 'aria-live': 'polite' });
  const cancel = h('button', { type: 'button' }, t('Cancel'));
  const form = h('form', { onsubmit: async (ev) => {
    ev.preventDefault();
    const spec = { name: name.value, kind: kind.value };
    if (description.value) spec.description = description.value;
    if (kind.value === 'whole') {
      const disks = [];
      for (const p of perDisk) {
        if (p.exclude.checked) disks.push({ device: p.disk.device, exclude: true });
        else if (p.resize.value) disks.push({ device: p.disk.device, size_gb: Number(p.resize.value) });
      }
      if (insertSnapshot.value === 'empty' && insertDevice.value) {
        disks.push({ device: insertDevice.value.trim(), size_gb: Number(emptySize.value) });
      } else if (insertSnapshot.value && insertDevice.value) {
        disks.push({ device: insertDevice.value.trim(), snapshot_id: insertSnapshot.value });
      }
      if (disks.length) spec.data_disks = disks;
    }
    try {
      const { job } = await api('POST', `${NATIVE}/servers/${encodeURIComponent(server.id)}/images`, { json: spec });
      box.close();
      jobStarted(pageMessage, job);
    } catch (error) { message.replaceChildren(notice(error.message)); }
  } }, field(t('Name'), name), field(t('Kind'), kind), field(t('Description'), description), wholeOptions, message,
  h('div', { class: 'buttons' }, h('button', { type: 'submit' }, t('Create')), cancel));
  const box = dialog(t('Create image'), form);
  cancel.addEventListener('click', () => box.close());
}

async function volumesPage(content) {
  const { volumes } = await api('GET', `${NATIVE}/volumes`);
  content.replaceChildren(h('h1', {}, t('Volumes')), table(
    [col('Name'), col('Status'), col('Size'), col('Type'), col('Server'), col('Device'), col('Created')],
    volumes.map((v) => h('tr', {}, h('td', {}, h('a', { href: `#/volumes/${encodeURIComponent(v.id)}` }, v.name ?? v.id)), h('td', {}, v.status), h('td', {}, `${v.size_gb} GB`),
      h('td', {}, shown(v.type)), h('td', {}, v.server_id ? h('a', { href: `#/servers/${encodeURIComponent(v.server_id)}` }, v.server_id) : '—'),
      h('td', {}, shown(v.device)), h('td', {}, shown(v.created_at))))));
}

async function snapshotsPage(content) {
  const { snapshots } = await api('GET', `${NATIVE}/snapshots`);
  content.replaceChildren(h('h1', {}, t('Snapshots')), table(
    [col('Name'), col('Status'), col('Size'), col('Volume'), col('Created')],
    snapshots.map((s) => h('tr', {}, h('td', {}, h('a', { href: `#/snapshots/${encodeURIComponent(s.id)}` }, s.name ?? s.id)), h('td', {}, s.status), h('td', {}, `${s.size_gb} GB`),
      h('td', {}, shown(s.volume_id)), h('td', {}, shown(s.created_at))))));
}

async function volumePage(content, id) {
  const { volume } = await api('GET', `${NATIVE}/volumes/${encodeURIComponent(id)}`);
  const message = h('div', { 'aria-live': 'polite' });
  const create = () => {
    const name = h('input', { name: 'name', required: true });
    const description = h('input', { name: 'description' });
    formDialog(t('Create image'), [field(t('Name'), name), field(t('Description'), description)], t('Create'), async () => {
      const spec = { name: name.value };
      if (description.value) spec.description = description.value;
      const { job } = await api('POST', `${NATIVE}/volumes/${encodeURIComponent(id)}/images`, { json: spec });
      jobStarted(message, job);
    });
  };
  content.replaceChildren(h('p', {}, h('a', { href: '#/volumes' }, t('Back to volumes'))),
    h('div', { class: 'heading' }, h('h1', {}, volume.name ?? volume.id),
      canWrite() ? h('button', { type: 'button', onclick: create }, t('Create image')) : null), message,
    h('h2', {}, t('Attributes')), attributes(Object.keys(volume).sort().map((k) => [k, volume[k]])));
}

async function snapshotPage(content, id) {
  const { snapshot } = await api('GET', `${NATIVE}/snapshots/${encodeURIComponent(id)}`);
  content.replaceChildren(h('p', {}, h('a', { href: '#/snapshots' }, t('Back to snapshots'))),
    h('h1', {}, snapshot.name ?? snapshot.id),
    h('h2', {}, t('Attributes')), attributes(Object.keys(snapshot).sort().map((k) => [k, snapshot[k]])));
}

// --- jobs --------------------------------------------------------------------------------------

function jobsTable(jobs) {
  return table([col('ID'), col('Kind of job'), col('Status'), col('Progress'), col('Failure'), col('Created')],
    jobs.map((job) => h('tr', { 'data-job': job.id }, h('td', {}, job.id), h('td', {}, job.kind),
      h('td', {}, h('span', { class: `status ${job.status}` }, job.status)),
      h('td', {}, h('progress', { max: '100', value: String(job.progress ?? 0), 'aria-label': `${t('Progress')} ${job.id}` })),
      h('td', {}, shown(job.fail_reason ?? job.error_code)), h('td', {}, shown(job.created_at)))));
}

async function jobsPage(content) {
  const holder = h('div', { 'aria-live': 'off' });
  content.replaceChildren(h('h1', {}, t('Jobs')), h('p', { class: 'hint' }, t('Refreshed live.')), holder);
  const refresh = async () => {
    const { jobs } = await api('GET', `${NATIVE}/jobs`);
    jobs.sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
    holder.replaceChildren(jobsTable(jobs));
  };
  await refresh();
  poll(() => { refresh().catch(() => { /* the next round tries again */ }); });
}

// --- administration (admins only; the API refuses anyone else) --------------------------------

const ADMIN = `${NATIVE}/admin`;
const ROLES = ['reader', 'member', 'admin', 'service'];

function confirmDialog(title, question, words, action) {
  return formDialog(title, [h('p', {}, question)], words, action);
}

function quota(value) { return value === -1 ? '∞' : String(value); }

async function adminPage(content) {
  const [projects, users, keys, grants] = await Promise.all([
    api('GET', `${ADMIN}/projects`).then((b) => b.projects), api('GET', `${ADMIN}/users`).then((b) => b.users),
    api('GET', `${ADMIN}/access-keys`).then((b) => b.access_keys),
    api('GET', `${ADMIN}/bucket-grants`).then((b) => b.bucket_grants)]);
  const projectName = Object.fromEntries(projects.map((p) => [p.id, p.name]));
  const message = h('div', { 'aria-live': 'polite' });
  const small = (words, onclick, extra = {}) => h('button', { type: 'button', onclick, ...extra }, words);
  const projectSelect = (name) => h('select', { name }, projects.map((p) => h('option', { value: p.name }, p.name)));
  const roleSelect = () => h('select', { name: 'role' }, ROLES.map((r) => h('option', { value: r, selected: r === 'member' }, r)));

  const newProject = () => {
    const name = h('input', { name: 'name', required: true });
    formDialog(t('Create project'), [field(t('Name'), name)], t('Create'), async () => {
      await api('POST', `${ADMIN}/projects`, { json: { name: name.value } }); render();
    });
  };
  const setQuotas = (project) => {
    const images = h('input', { type: 'number', min: '-1', value: String(project.quotas.images) });
    const bytes = h('input', { type: 'number', min: '-1', value: String(project.quotas.bytes) });
    formDialog(t('Quotas of {name}', { name: project.name }), [field(t('Images (-1: unlimited)'), images),
      field(t('Bytes (-1: unlimited)'), bytes)], t('Save'), async () => {
      await api('PUT', `${ADMIN}/projects/${encodeURIComponent(project.id)}/quotas`,
        { json: { images: Number(images.value), bytes: Number(bytes.value) } });
      render();
    });
  };
  const newUser = () => {
    const name = h('input', { name: 'name', required: true });
    const password = h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true });
    const project = projectSelect('project');
    const role = roleSelect();
    formDialog(t('Create user'), [field(t('Name'), name), field(t('Password'), password), field(t('Project'), project),
      field(t('Role'), role)], t('Create'), async () => {
      await api('POST', `${ADMIN}/users`, { json: { name: name.value, password: password.value, project: project.value,
        role: role.value } });
      render();
    });
  };
  const grantRole = (user) => {
    const project = projectSelect('project');
    const role = roleSelect();
    formDialog(t('Grant a role to {name}', { name: user.name }), [field(t('Project'), project), field(t('Role'), role)],
      t('Grant'), async () => {
        await api('POST', `${ADMIN}/users/${encodeURIComponent(user.id)}/roles`, { json: { project: project.value, role: role.value } });
        render();
      });
  };
  const toggleUser = (user) => async () => {
    try {
      await api('POST', `${ADMIN}/users/${encodeURIComponent(user.id)}/actions/${user.enabled ? 'disable' : 'enable'}`);
      render();
    } catch (error) { message.replaceChildren(notice(error.message)); }
  };
  const deleteUser = (user) => confirmDialog(t('Delete user'), t('Delete user {name}?', { name: user.name }), t('Delete'),
    async () => { await api('DELETE', `${ADMIN}/users/${encodeURIComponent(user.id)}`); render(); });
  const newKey = () => {
    const user = h('select', { name: 'user' }, users.map((u) => h('option', { value: u.name }, u.name)));
    formDialog(t('Create access key'), [field(t('User'), user)], t('Create'), async () => {
      const { access_key: made } = await api('POST', `${ADMIN}/access-keys`, { json: { user: user.value } });
      const close = h('button', { type: 'button' }, t('Close'));
      const shownOnce = dialog(t('New access key'), [
        notice(t('The secret is shown this once: keep it now.'), 'info'),
        attributes([[t('Access key'), made.access_key], [t('Secret key'), made.secret_key]]),
        h('div', { class: 'buttons' }, close)], { onclose: () => render() });
      close.addEventListener('click', () => shownOnce.close());
    });
  };
  const keyAction = (key, action) => async () => {
    try {
      if (action === 'delete') await api('DELETE', `${ADMIN}/access-keys/${encodeURIComponent(key.access_key)}`);
      else await api('POST', `${ADMIN}/access-keys/${encodeURIComponent(key.access_key)}/actions/${action}`);
      render();
    } catch (error) { message.replaceChildren(notice(error.message)); }
  };
  const newGrant = () => {
    const bucket = h('input', { name: 'bucket', required: true });
    const project = projectSelect('project');
    formDialog(t('Grant a bucket'), [field(t('Bucket'), bucket), field(t('Project'), project)], t('Grant'), async () => {
      await api('POST', `${ADMIN}/bucket-grants`, { json: { bucket: bucket.value, project: project.value } }); render();
    });
  };
  const revokeGrant = (grant) => async () => {
    try {
      await api('DELETE', `${ADMIN}/bucket-grants/${encodeURIComponent(grant.bucket)}/projects/${encodeURIComponent(grant.project_id)}`);
      render();
    } catch (error) { message.replaceChildren(notice(error.message)); }
  };
  const section = (title, button, body) => h('section', { 'aria-label': title },
    h('div', { class: 'heading' }, h('h2', {}, title), button), body);

  content.replaceChildren(h('h1', {}, t('Administration')), message,
    section(t('Projects'), small(t('Create project'), newProject), table(
      [col('Name'), col('ID'), col('Images'), col('Bytes'), col('Actions')],
      projects.map((p) => h('tr', {}, h('td', {}, p.name), h('td', {}, p.id), h('td', {}, quota(p.quotas.images)),
        h('td', {}, quota(p.quotas.bytes)), h('td', {}, small(t('Quotas'), () => setQuotas(p),
          { 'aria-label': t('Quotas of {name}', { name: p.name }) })))))),
    section(t('Users'), small(t('Create user'), newUser), table(
      [col('Name'), col('Roles'), col('Enabled'), col('Actions')],
      users.map((u) => h('tr', {}, h('td', {}, u.name),
        h('td', {}, u.roles.map((r) => `${projectName[r.project_id] ?? r.project_id}: ${r.role}`).join(', ') || '—'),
        h('td', {}, u.enabled ? t('yes') : t('no')),
        h('td', { class: 'actions' },
          small(t('Grant role'), () => grantRole(u), { 'aria-label': t('Grant a role to {name}', { name: u.name }) }),
          small(u.enabled ? t('Disable') : t('Enable'), toggleUser(u),
            { 'aria-label': `${u.enabled ? t('Disable') : t('Enable')} ${u.name}` }),
          u.id === session.userId ? null : small(t('Delete'), () => deleteUser(u),
            { class: 'danger', 'aria-label': `${t('Delete')} ${u.name}` })))))),
    section(t('Access keys'), small(t('Create access key'), newKey), table(
      [col('Access key'), col('User'), col('Enabled'), col('Created'), col('Actions')],
      keys.map((k) => h('tr', {}, h('td', {}, k.access_key), h('td', {}, shown(k.user_name)),
        h('td', {}, k.enabled ? t('yes') : t('no')), h('td', {}, shown(k.created_at)),
        h('td', { class: 'actions' },
          small(k.enabled ? t('Disable') : t('Enable'), keyAction(k, k.enabled ? 'disable' : 'enable'),
            { 'aria-label': `${k.enabled ? t('Disable') : t('Enable')} ${k.access_key}` }),
          small(t('Delete'), keyAction(k, 'delete'), { class: 'danger', 'aria-label': `${t('Delete')} ${k.access_key}` })))))),
    section(t('Bucket grants'), small(t('Grant a bucket'), newGrant), table(
      [col('Bucket'), col('Project'), col('Created'), col('Actions')],
      grants.map((g) => h('tr', {}, h('td', {}, g.bucket), h('td', {}, projectName[g.project_id] ?? g.project_id),
        h('td', {}, shown(g.created_at)), h('td', {}, small(t('Revoke'), revokeGrant(g),
          { 'aria-label': `${t('Revoke')} ${g.bucket}` })))))));
}

// --- start -------------------------------------------------------------------------------------

session = loadSession();
watchExpiry();
window.addEventListener('hashchange', render);
render();
