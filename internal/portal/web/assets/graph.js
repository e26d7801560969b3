// The lineage graph drawn as SVG: nodes in layers from producers on the
// left to consumers and tables on the right (longest-path layering, then
// a few barycentre sweeps to cut edge crossings), edges as curves with
// arrows. Topic nodes link to their product page.

import { h, s, fmtNumber, fmtBytes, fmtTime, topicHref, table } from './dom.js';

const NODE_W = 176;
const NODE_H = 42;
const GAP_X = 80;
const GAP_Y = 22;
const PAD = 16;

const KIND_LABEL = { topic: 'topic', producer: 'producer', group: 'consumer group', consumer: 'consumer', table: 'table', dlq: 'dead-letter topic', retry: 'retry topic' };

function shorten(text, max) {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

// layout places nodes in columns; it returns {pos: id -> {x, y}, width, height}.
export function layout(nodes, edges) {
  const ids = nodes.map((n) => n.id);
  const known = new Set(ids);
  const es = edges.filter((e) => known.has(e.from) && known.has(e.to) && e.from !== e.to);
  const layer = new Map(ids.map((id) => [id, 0]));
  // Longest path from a source; a cycle stops growing at the node count.
  for (let round = 0; round < ids.length; round++) {
    let changed = false;
    for (const e of es) {
      const want = layer.get(e.from) + 1;
      if (want > layer.get(e.to) && want < ids.length) {
        layer.set(e.to, want);
        changed = true;
      }
    }
    if (!changed) break;
  }
  const columns = [];
  for (const n of nodes) {
    const l = layer.get(n.id);
    (columns[l] ||= []).push(n.id);
  }
  const dense = columns.filter(Boolean);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  for (const col of dense) {
    col.sort((a, b) => (byId.get(a).kind || '').localeCompare(byId.get(b).kind || '') || a.localeCompare(b));
  }
  const preds = new Map(ids.map((id) => [id, []]));
  const succs = new Map(ids.map((id) => [id, []]));
  for (const e of es) {
    preds.get(e.to).push(e.from);
    succs.get(e.from).push(e.to);
  }
  const order = new Map();
  const index = () => dense.forEach((col) => col.forEach((id, i) => order.set(id, i)));
  index();
  const sweep = (cols, neighbours) => {
    for (const col of cols) {
      const bary = new Map(col.map((id) => {
        const ns = neighbours.get(id);
        return [id, ns.length ? ns.reduce((sum, n) => sum + order.get(n), 0) / ns.length : order.get(id)];
      }));
      col.sort((a, b) => bary.get(a) - bary.get(b) || a.localeCompare(b));
      col.forEach((id, i) => order.set(id, i));
    }
  };
  for (let i = 0; i < 4; i++) {
    sweep(dense.slice(1), preds);
    sweep(dense.slice(0, -1).reverse(), succs);
  }
  index();
  const tallest = Math.max(1, ...dense.map((c) => c.length));
  const height = PAD * 2 + tallest * NODE_H + (tallest - 1) * GAP_Y;
  const pos = new Map();
  dense.forEach((col, ci) => {
    const colHeight = col.length * NODE_H + (col.length - 1) * GAP_Y;
    const top = (height - colHeight) / 2;
    col.forEach((id, i) => pos.set(id, { x: PAD + ci * (NODE_W + GAP_X), y: top + i * (NODE_H + GAP_Y) }));
  });
  const width = PAD * 2 + dense.length * NODE_W + Math.max(0, dense.length - 1) * GAP_X;
  return { pos, width, height, edges: es };
}

function edgeTitle(e) {
  const parts = [`${e.kind || 'edge'}: ${e.from} → ${e.to}`];
  if (e.principal) parts.push(`principal ${e.principal}`);
  if (e.clientId) parts.push(`client ${e.clientId}`);
  if (e.software) parts.push(e.software);
  if (e.transactionalId) parts.push(`transactional id ${e.transactionalId}`);
  if (e.records !== undefined) parts.push(`${fmtNumber(e.records)} records, ${fmtBytes(e.bytes)}`);
  if (e.lastSeen) parts.push(`last seen ${fmtTime(e.lastSeen)}`);
  return parts.join('\n');
}

// lineageGraph returns a figure with the graph and, for screen readers
// and exact numbers, the edges as a table.
export function lineageGraph(graph, focusId, title) {
  const nodes = graph.nodes || [];
  const edges = graph.edges || [];
  if (!nodes.length) {
    return h('p', { class: 'muted' }, 'No lineage observed yet: nobody has produced to or consumed from this topic since lineage was recorded.');
  }
  const { pos, width, height, edges: drawn } = layout(nodes, edges);
  const svg = s('svg', { class: 'lineage', viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-label': title },
    s('title', {}, title),
    s('defs', {}, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 10, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      s('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrow' }))));
  for (const e of drawn) {
    const a = pos.get(e.from);
    const b = pos.get(e.to);
    const x1 = a.x + NODE_W;
    const y1 = a.y + NODE_H / 2;
    const x2 = b.x;
    const y2 = b.y + NODE_H / 2;
    const back = x2 <= x1;
    const dx = back ? 60 : Math.max(30, (x2 - x1) / 2);
    const d = `M ${x1} ${y1} C ${x1 + dx} ${y1}, ${x2 - dx} ${y2}, ${x2} ${y2}`;
    svg.append(s('path', { d, class: ['edge', `edge-${e.kind || 'other'}`], 'marker-end': 'url(#arrow)' }, s('title', {}, edgeTitle(e))));
  }
  for (const n of nodes) {
    const p = pos.get(n.id);
    const kind = n.kind || 'other';
    const name = n.name || n.id;
    const box = s('g', { class: ['node', `node-${kind}`, n.id === focusId && 'node-focus'], transform: `translate(${p.x} ${p.y})` },
      s('title', {}, `${KIND_LABEL[kind] || kind}: ${name}`),
      s('rect', { width: NODE_W, height: NODE_H, rx: 8, ry: 8 }),
      s('text', { x: 10, y: 16, class: 'node-kind' }, KIND_LABEL[kind] || kind),
      s('text', { x: 10, y: 33, class: 'node-name' }, shorten(name, 24)));
    if (kind === 'topic' || kind === 'dlq' || kind === 'retry') {
      svg.append(s('a', { href: topicHref(name), 'aria-label': `Product ${name}` }, box));
    } else {
      svg.append(box);
    }
  }
  const rows = edges.map((e) => [e.kind || '', e.from, e.to, e.principal || '', e.clientId || e.group || '', fmtNumber(e.records), fmtTime(e.lastSeen)]);
  return h('figure', { class: 'graph' },
    h('div', { class: 'graph-scroll' }, svg),
    h('details', {}, h('summary', {}, `The ${edges.length} edges as a table`),
      table(null, ['Kind', 'From', 'To', 'Principal', 'Client or group', 'Records', 'Last seen'], rows)));
}
