// Building the page: elements are created, never parsed from strings, so
// no value from the API is ever interpreted as markup.

const SVG_NS = 'http://www.w3.org/2000/svg';

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'class') {
      el.setAttribute('class', Array.isArray(v) ? v.filter(Boolean).join(' ') : v);
    } else if (k === 'value' && 'value' in el) {
      el.value = v;
    } else if (k === 'checked' || k === 'selected') {
      el[k] = Boolean(v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// h('a', {href: '/x', class: 'y'}, 'text', child, [more]) builds an HTML element.
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

// s builds an SVG element.
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

// replace empties el and appends children.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function fmtTime(t) {
  if (!t) return '—';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function timeEl(t) {
  return t ? h('time', { datetime: t }, fmtTime(t)) : '—';
}

export function fmtNumber(n, digits = 0) {
  if (n === null || n === undefined || Number.isNaN(Number(n))) return '—';
  return Number(n).toLocaleString('en-US', { maximumFractionDigits: digits });
}

export function fmtBytes(n) {
  if (n === null || n === undefined) return '—';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = Number(n);
  let i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toLocaleString('en-US', { maximumFractionDigits: i ? 1 : 0 })} ${units[i]}`;
}

export function fmtSeconds(sec) {
  if (sec === null || sec === undefined) return '—';
  const v = Number(sec);
  if (v < 1) return `${v.toFixed(2)} s`;
  if (v < 120) return `${v.toFixed(1)} s`;
  if (v < 7200) return `${(v / 60).toFixed(1)} min`;
  return `${(v / 3600).toFixed(1)} h`;
}

// tag renders a tag as a badge; PII-like tags stand out.
export function tag(name) {
  const sensitive = /^(pii|gdpr|sensitive|confidential|secret)$/i.test(name);
  return h('span', { class: ['tag', sensitive && 'tag-sensitive'] }, name);
}

export function tags(list) {
  if (!list || !list.length) return null;
  return h('span', { class: 'tags' }, list.map(tag));
}

// state renders a lifecycle or request state as a badge.
export function stateBadge(state) {
  return h('span', { class: ['state', `state-${String(state || '').toLowerCase()}`] }, state || '—');
}

export function link(href, text, attrs = {}) {
  return h('a', { href, ...attrs }, text);
}

export function topicHref(topic) {
  return `/products/${encodeURIComponent(topic)}`;
}

// table builds an accessible table: headers is a list of column names,
// rows a list of lists of cells.
export function table(caption, headers, rows, attrs = {}) {
  return h('table', attrs,
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, headers.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c) => h('td', {}, c))))));
}

export function errorText(err) {
  return err && err.message ? err.message : String(err);
}

// alertBox shows an error in place of what could not be loaded.
export function alertBox(what, err) {
  return h('p', { class: 'error', role: 'alert' }, `${what}: ${errorText(err)}`);
}

export function section(title, id, ...children) {
  const hid = `${id}-title`;
  return h('section', { class: 'card', id, 'aria-labelledby': hid }, h('h2', { id: hid }, title), children);
}

// field builds a labelled form control.
export function field(label, control, hint) {
  const id = control.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  control.id = id;
  let hintEl = null;
  if (hint) {
    hintEl = h('small', { id: `${id}-hint`, class: 'hint' }, hint);
    control.setAttribute('aria-describedby', hintEl.id);
  }
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, hintEl);
}

export function json(v) {
  return h('pre', { class: 'json' }, JSON.stringify(v, null, 2));
}

// Durations offered for an expiry, as the API's Go duration strings.
export const EXPIRIES = [
  ['', 'No expiry'],
  ['24h', '1 day'],
  ['168h', '7 days'],
  ['720h', '30 days'],
  ['2160h', '90 days'],
];

export function expirySelect(id) {
  return h('select', { id, name: 'duration' }, EXPIRIES.map(([v, t]) => h('option', { value: v }, t)));
}
