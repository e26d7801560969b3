import { get, query } from '../api.js';
import { h, replace, tags, stateBadge, topicHref, alertBox, fmtNumber } from '../dom.js';

const PAGE = 25;

// The facets the catalog counts, with the query parameter each sets.
const FACETS = [
  ['tags', 'tag', 'Tags'],
  ['owners', 'owner', 'Owners'],
  ['domains', 'domain', 'Domains'],
  ['lifecycle', 'lifecycle', 'Lifecycle'],
];

function searchURL(params) {
  return `/${query(params)}`;
}

function current(q) {
  const p = {};
  for (const k of ['q', 'tag', 'owner', 'domain', 'lifecycle', 'offset']) {
    if (q.get(k)) p[k] = q.get(k);
  }
  return p;
}

export async function searchView(main, _params, q, app) {
  const alive = app.alive();
  const params = current(q);
  const input = h('input', { id: 'q', name: 'q', type: 'search', value: params.q || '',
    placeholder: 'Topic, field, tag, owner, description…', autocomplete: 'off' });
  const form = h('form', { role: 'search', class: 'search', 'aria-label': 'Products' },
    h('label', { for: 'q' }, 'Search data products'),
    h('div', { class: 'row' }, input, h('button', { type: 'submit' }, 'Search')));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const next = { ...params, q: input.value.trim() };
    delete next.offset;
    app.navigate(searchURL(next));
  });
  const facets = h('aside', { class: 'facets', 'aria-label': 'Filters' });
  const results = h('section', { class: 'results', 'aria-label': 'Results', 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Searching…'));
  replace(main, h('h1', {}, 'Data products'), form, h('div', { class: 'search-layout' }, facets, results));

  let answer;
  try {
    answer = await get(`/api/v1/products${query({ ...params, limit: PAGE })}`);
  } catch (err) {
    if (alive()) replace(results, alertBox('Searching failed', err));
    return;
  }
  if (!alive()) return;
  drawFacets(facets, answer.facets || {}, params);
  drawResults(results, answer, params);
}

function drawFacets(el, facets, params) {
  const groups = [];
  for (const [key, param, title] of FACETS) {
    const counts = facets[key] || {};
    const names = Object.keys(counts).sort((a, b) => counts[b] - counts[a] || a.localeCompare(b));
    if (!names.length && !params[param]) continue;
    const items = names.map((name) => {
      const on = params[param] === name;
      const next = { ...params };
      delete next.offset;
      if (on) delete next[param]; else next[param] = name;
      return h('li', {}, h('a', { href: searchURL(next), class: ['facet', on && 'on'], 'aria-current': on ? 'true' : null },
        h('span', {}, name || '(none)'), h('span', { class: 'count', 'aria-label': `${counts[name]} products` }, fmtNumber(counts[name]))));
    });
    if (params[param] && !names.includes(params[param])) {
      const next = { ...params };
      delete next[param];
      items.unshift(h('li', {}, h('a', { href: searchURL(next), class: 'facet on', 'aria-current': 'true' }, h('span', {}, params[param]), h('span', { class: 'count' }, '×'))));
    }
    groups.push(h('nav', { class: 'facet-group', 'aria-label': title }, h('h2', {}, title), h('ul', {}, items)));
  }
  replace(el, groups.length ? groups : h('p', { class: 'muted' }, 'No filters.'));
}

function drawResults(el, answer, params) {
  const items = answer.items || [];
  const total = answer.total ?? items.length;
  const offset = Number(params.offset || 0);
  const summary = h('p', { class: 'count-line' }, total === 1 ? '1 product' : `${fmtNumber(total)} products`,
    params.q ? [' matching ', h('q', {}, params.q)] : null);
  if (!items.length) {
    replace(el, summary, h('p', {}, 'No product matches. Try fewer words or remove a filter.'));
    return;
  }
  const list = h('ul', { class: 'product-list' }, items.map((p) => h('li', { class: 'product' },
    h('h3', {}, h('a', { href: topicHref(p.topic) }, p.topic), ' ', stateBadge(p.lifecycle)),
    h('p', { class: 'meta' },
      h('span', {}, 'Owner: ', p.owner ? h('strong', {}, p.owner) : h('em', {}, 'none')),
      p.domain ? h('span', {}, ` · Domain: ${p.domain}`) : null,
      p.partitions ? h('span', {}, ` · ${p.partitions} partitions`) : null,
      p.exists === false ? h('span', { class: 'warn' }, ' · topic does not exist') : null),
    p.description ? h('p', { class: 'desc' }, p.description) : null,
    tags(p.tags),
    p.matchedFields && p.matchedFields.length
      ? h('p', { class: 'matched' }, 'Matching fields: ', p.matchedFields.map((f, i) => [i ? ', ' : '', h('code', {}, f)]))
      : null)));
  const pager = h('nav', { class: 'pager', 'aria-label': 'Pages' });
  if (offset > 0) {
    pager.append(h('a', { href: searchURL({ ...params, offset: Math.max(0, offset - PAGE) || '' }) }, '← Previous'));
  }
  if (offset + items.length < total) {
    pager.append(h('a', { href: searchURL({ ...params, offset: offset + PAGE }) }, 'Next →'));
  }
  replace(el, summary, list, pager.childNodes.length ? pager : null);
}
