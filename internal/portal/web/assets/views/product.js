import { get, post, query, enc } from '../api.js';
import {
  h, replace, tags, tag, stateBadge, section, table, alertBox, field, json, timeEl,
  fmtNumber, fmtBytes, fmtSeconds, expirySelect, errorText, link,
} from '../dom.js';
import { lineageGraph } from '../graph.js';
import { shareForm, sharesList } from './shares.js';

export async function productView(main, [topic], _q, app) {
  const alive = app.alive();
  const base = `/api/v1/products/${enc(topic)}`;
  let product;
  let perms;
  try {
    [product, perms] = await Promise.all([
      get(base),
      get(`/api/v1/session/permissions${query({ topic })}`),
    ]);
  } catch (err) {
    if (!alive()) return;
    replace(main, h('p', {}, link('/', '← Products')), h('h1', {}, topic),
      err.status === 404 ? h('p', { role: 'alert' }, 'There is no data product for this topic.') : alertBox('Loading the product failed', err));
    return;
  }
  if (!alive()) return;
  const owner = app.isOwner(product) || perms.admin || await teamMember(product.owner, app);
  if (!alive()) return;
  const sample = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  const activity = h('div', {}, h('p', { class: 'muted' }, 'Loading…'));
  replace(main,
    h('p', {}, link('/', '← Products')),
    header(product),
    h('div', { class: 'product-grid' },
      section('Schema', 'schema', schemaBlock(product.schema, 'Value'), product.keySchema ? schemaBlock(product.keySchema, 'Key') : null,
        product.schema ? diffForm(base, product.schema) : null),
      section('Data contract', 'contract', contractBlock(product.contract)),
      section('Recent records', 'sample', sample),
      section('Throughput and consumers', 'activity', activity),
      section('Lineage', 'lineage', lineageBlock(topic, alive)),
      section('Request access', 'request', requestForm(topic, app, perms)),
      owner ? section('Shares', 'shares', shareBlock(topic, app)) : null));
  loadSample(base, perms, sample, alive);
  loadActivity(base, activity, alive);
}

// teamMember tells whether the caller belongs to the owning team.
async function teamMember(owner, app) {
  if (!owner || !owner.startsWith('Team:')) return false;
  try {
    const team = await get(`/api/v1/teams/${enc(owner.slice('Team:'.length))}`);
    return (team.members || []).includes(app.session.principal);
  } catch {
    return false;
  }
}

function header(p) {
  const meta = [
    ['Owner', p.owner ? h('strong', {}, p.owner) : h('em', {}, 'nobody yet')],
    ['Domain', p.domain || '—'],
    ['Lifecycle', stateBadge(p.lifecycle)],
    ['Partitions', p.exists === false ? h('span', { class: 'warn' }, 'the topic does not exist') : fmtNumber(p.partitions)],
    ['Updated', p.updatedAt ? [timeEl(p.updatedAt), p.updatedBy ? ` by ${p.updatedBy}` : ''] : '—'],
  ];
  const business = Object.entries(p.businessMetadata || {});
  return h('header', { class: 'product-head card' },
    h('h1', {}, p.topic),
    p.description ? h('p', { class: 'desc' }, p.description) : h('p', { class: 'muted' }, 'No description yet.'),
    tags(p.tags),
    h('dl', { class: 'facts' }, meta.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])),
    business.length ? h('div', {}, h('h2', {}, 'Business metadata'),
      h('dl', { class: 'facts' }, business.map(([k, v]) => [h('dt', {}, k), h('dd', {}, typeof v === 'object' ? JSON.stringify(v) : String(v))]))) : null,
    p.links && p.links.length ? h('ul', { class: 'links', 'aria-label': 'Links' },
      p.links.map((l) => h('li', {}, safeURL(l.url) ? h('a', { href: l.url, rel: 'noopener noreferrer', target: '_blank' }, l.title || l.url) : `${l.title}: ${l.url}`))) : null);
}

function safeURL(u) {
  try {
    const url = new URL(u);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}

function schemaBlock(schema, which) {
  if (!schema) return h('p', { class: 'muted' }, `${which}: no schema registered.`);
  const rows = (schema.fields || []).map((f) => [h('code', {}, f.path), h('code', {}, f.type || ''), f.tags && f.tags.length ? h('span', { class: 'tags' }, f.tags.map(tag)) : '', f.doc || '']);
  return h('div', { class: 'schema' },
    h('p', {}, `${which}: subject `, h('code', {}, schema.subject), `, version ${schema.version}, ${schema.type || 'AVRO'}, id ${schema.id}`),
    rows.length ? table(`${which} fields`, ['Field', 'Type', 'Tags', 'Description'], rows, { class: 'fields' }) : h('p', { class: 'muted' }, 'The schema has no fields.'));
}

function diffForm(base, schema) {
  const versions = [];
  for (let v = 1; v <= schema.version; v++) versions.push(v);
  if (versions.length < 2) return h('p', { class: 'muted' }, 'Only one version: nothing to compare yet.');
  const from = h('select', { id: 'diff-from' }, versions.map((v) => h('option', { value: v, selected: v === schema.version - 1 }, `v${v}`)));
  const to = h('select', { id: 'diff-to' }, versions.map((v) => h('option', { value: v, selected: v === schema.version }, `v${v}`)));
  const out = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'inline', 'aria-label': 'Compare schema versions' },
    h('h3', {}, 'Compare versions'), field('From', from), field('To', to), h('button', { type: 'submit' }, 'Compare'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    replace(out, h('p', { class: 'muted' }, 'Comparing…'));
    try {
      const d = await get(`${base}/schema/diff${query({ from: from.value, to: to.value })}`);
      const rows = [
        ...(d.added || []).map((f) => ['added', h('code', {}, f.path), '—', f.type || '']),
        ...(d.removed || []).map((f) => ['removed', h('code', {}, f.path), f.type || '', '—']),
        ...(d.changed || []).map((c) => ['changed', h('code', {}, c.path), describeField(c.from), describeField(c.to)]),
      ];
      replace(out, rows.length
        ? table(`Changes from v${d.from} to v${d.to}`, ['Change', 'Field', `v${d.from}`, `v${d.to}`], rows, { class: 'diff' })
        : h('p', {}, `No field changed from v${d.from} to v${d.to}.`));
    } catch (err) {
      replace(out, alertBox('Comparing failed', err));
    }
  });
  return h('div', {}, form, out);
}

function describeField(f) {
  if (!f) return '—';
  return [f.type || '', f.tags && f.tags.length ? ` [${f.tags.join(', ')}]` : ''].join('');
}

function contractBlock(contract) {
  const rules = (contract && contract.rules) || [];
  if (!rules.length) return h('p', { class: 'muted' }, 'No contract rules: records are checked against the schema only.');
  return table(null, ['Rule', 'Kind', 'Mode', 'Type', 'Expression', 'On failure'],
    rules.map((r) => [r.name, r.kind, r.mode, r.type, h('code', {}, r.expr || ''), r.onFailure || '—']));
}

async function loadSample(base, perms, el, alive) {
  if (!perms.read) {
    replace(el, h('p', {}, 'You need READ access on this topic to see its records. ', h('a', { href: '#request' }, 'Request access below.')));
    return;
  }
  try {
    const answer = await get(`${base}/sample${query({ limit: 10 })}`);
    if (!alive()) return;
    const items = answer.items || [];
    if (!items.length) {
      replace(el, h('p', { class: 'muted' }, 'The topic holds no records yet.'));
      return;
    }
    const masked = [...new Set(items.flatMap((r) => r.masked || []))];
    replace(el,
      masked.length ? h('p', { class: 'note' }, 'Fields tagged PII are masked: ', masked.map((m, i) => [i ? ', ' : '', h('code', {}, m)])) : null,
      table('The newest records', ['Partition', 'Offset', 'Time', 'Key', 'Value'],
        items.map((r) => [fmtNumber(r.partition), fmtNumber(r.offset), timeEl(r.timestamp), value(r.key), value(r.value)]), { class: 'sample' }));
  } catch (err) {
    if (alive()) replace(el, alertBox('Loading records failed', err));
  }
}

function value(v) {
  if (v === null || v === undefined) return h('em', {}, 'null');
  if (typeof v === 'object') return json(v);
  return h('code', {}, String(v));
}

async function loadActivity(base, el, alive) {
  let c;
  try {
    c = await get(`${base}/clients`);
  } catch (err) {
    if (alive()) replace(el, alertBox('Loading producers and consumers failed', err));
    return;
  }
  if (!alive()) return;
  const t = c.throughput || {};
  const producers = c.producers || [];
  const consumers = c.consumers || [];
  replace(el,
    h('dl', { class: 'facts stats' },
      h('dt', {}, 'In'), h('dd', {}, `${fmtBytes(t.bytesInPerSec)}/s · ${fmtNumber(t.recordsInPerSec, 1)} records/s`),
      h('dt', {}, 'Out'), h('dd', {}, `${fmtBytes(t.bytesOutPerSec)}/s`)),
    consumers.length
      ? table('Consuming groups', ['Group', 'Principal', 'Client', 'Lag (records)', 'Lag (seconds)', 'Status', 'Last seen'],
        consumers.map((x) => [x.group || '—', x.principal || '—', x.clientId || '—', fmtNumber(x.lagRecords), fmtSeconds(x.lagSeconds), stateBadge(x.status), timeEl(x.lastSeen)]))
      : h('p', { class: 'muted' }, 'No consumers observed.'),
    producers.length
      ? table('Producers', ['Client', 'Principal', 'Software', 'Transactional id', 'Records', 'Last seen'],
        producers.map((x) => [x.clientId || '—', x.principal || '—', x.software || '—', x.transactionalId || '—', fmtNumber(x.records), timeEl(x.lastSeen)]))
      : h('p', { class: 'muted' }, 'No producers observed.'));
}

// lineageBlock shows the graph one hop around the topic, or the full
// graph, as chosen.
function lineageBlock(topic, alive) {
  const graph = h('div', {});
  const one = h('button', { type: 'button', 'aria-pressed': 'true' }, 'One hop');
  const all = h('button', { type: 'button', 'aria-pressed': 'false' }, 'Full graph');
  let shown = 0;
  const choose = async (depth) => {
    const mine = ++shown;
    one.setAttribute('aria-pressed', String(depth === 1));
    all.setAttribute('aria-pressed', String(depth !== 1));
    replace(graph, h('p', { class: 'muted' }, 'Loading…'));
    try {
      const g = await get(`/api/v1/lineage${query({ topic, depth })}`);
      if (!alive() || mine !== shown) return;
      replace(graph, lineageGraph(g, `topic:${topic}`, depth === 1 ? `Lineage of ${topic}, one hop` : `Full lineage around ${topic}`));
    } catch (err) {
      if (alive() && mine === shown) replace(graph, alertBox('Loading the lineage failed', err));
    }
  };
  one.addEventListener('click', () => choose(1));
  all.addEventListener('click', () => choose('all'));
  choose(1);
  return h('div', {}, h('div', { class: 'toggle', role: 'group', 'aria-label': 'Lineage depth' }, one, all), graph);
}

function requestForm(topic, app, perms) {
  const op = h('select', { id: 'req-op', name: 'operation' }, h('option', { value: 'READ' }, 'READ (consume)'), h('option', { value: 'WRITE' }, 'WRITE (produce)'));
  const group = h('input', { id: 'req-group', name: 'group', autocomplete: 'off' });
  const reason = h('textarea', { id: 'req-reason', name: 'reason', rows: 3, required: true });
  const expiry = expirySelect('req-expiry');
  const out = h('div', { 'aria-live': 'polite' });
  const button = h('button', { type: 'submit' }, 'Request access');
  const groupField = field('Consumer group (optional)', group, 'The group your consumer joins, if it uses one.');
  op.addEventListener('change', () => { groupField.hidden = op.value !== 'READ'; });
  const have = [perms.read && 'READ', perms.write && 'WRITE'].filter(Boolean);
  const form = h('form', { class: 'request', 'aria-label': `Request access to ${topic}` },
    have.length ? h('p', { class: 'note' }, `You already have ${have.join(' and ')} on this topic.`) : null,
    field('Access', op), groupField, field('Reason', reason, 'Shown to the owner who decides.'), field('Expires', expiry),
    button, out);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    button.disabled = true;
    const body = { topic, operation: op.value, reason: reason.value.trim() };
    if (op.value === 'READ' && group.value.trim()) body.group = group.value.trim();
    if (expiry.value) body.duration = expiry.value;
    try {
      const r = await post('/api/v1/access-requests', body);
      replace(out, h('p', { class: 'ok', role: 'status' }, `Request sent: ${r.operation} on ${r.topic} is `, stateBadge(r.state), '. ',
        h('a', { href: '/requests' }, 'Follow it in My requests.')));
      reason.value = '';
      app.toast('Access request sent to the owner.');
    } catch (err) {
      replace(out, h('p', { class: 'error', role: 'alert' }, `The request failed: ${errorText(err)}`));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

function shareBlock(topic, app) {
  const list = h('div', {});
  const refresh = () => sharesList(list, app, topic);
  const el = h('div', {}, h('p', { class: 'muted' }, 'Share this topic with an outside party: they get their own credentials, limited to reading it.'),
    shareForm(app, topic, refresh), list);
  refresh();
  return el;
}
