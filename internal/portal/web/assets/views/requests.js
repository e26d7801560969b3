import { get, post, query, enc } from '../api.js';
import { h, replace, stateBadge, table, alertBox, timeEl, topicHref, errorText } from '../dom.js';

// My requests: the caller's access requests and what became of them.
export async function requestsView(main, _params, q, app) {
  const alive = app.alive();
  const state = q.get('state') || '';
  const list = h('div', { 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading…'));
  replace(main, h('h1', {}, 'My access requests'), stateFilter(state, (s) => app.navigate(`/requests${query({ state: s })}`)), list);
  let answer;
  try {
    answer = await get(`/api/v1/access-requests${query({ role: 'mine', state, limit: 200 })}`);
  } catch (err) {
    if (alive()) replace(list, alertBox('Loading your requests failed', err));
    return;
  }
  if (!alive()) return;
  const items = answer.items || [];
  if (!items.length) {
    replace(list, h('p', {}, 'You have no access requests', state ? ` in state ${state}` : '', '. Find a product and request access on its page.'));
    return;
  }
  replace(list, table(null, ['Topic', 'Access', 'Reason', 'State', 'Decided by', 'Decision reason', 'Requested', 'Expires', ''],
    items.map((r) => [
      h('a', { href: topicHref(r.topic) }, r.topic), r.operation + (r.group ? ` (group ${r.group})` : ''), r.reason || '—',
      stateBadge(r.state), r.decidedBy || '—', r.decisionReason || '—', timeEl(r.createdAt), r.expiresAt ? timeEl(r.expiresAt) : 'never',
      r.state === 'PENDING' ? cancelButton(r, app) : '',
    ]), { class: 'requests' }));
}

function cancelButton(r, app) {
  const b = h('button', { type: 'button', class: 'secondary', 'aria-label': `Cancel the request for ${r.operation} on ${r.topic}` }, 'Cancel');
  b.addEventListener('click', async () => {
    b.disabled = true;
    try {
      await post(`/api/v1/access-requests/${enc(r.id)}/cancel`, {});
      app.toast('Request cancelled.');
      app.navigate(location.pathname + location.search, { replace: true });
    } catch (err) {
      app.toast(`Cancelling failed: ${errorText(err)}`, 'error');
      b.disabled = false;
    }
  });
  return b;
}

export const STATES = ['PENDING', 'APPROVED', 'DECLINED', 'CANCELLED', 'EXPIRED', 'REVOKED'];

export function stateFilter(current, onChange, allLabel = 'All states') {
  const sel = h('select', { id: 'state-filter' }, h('option', { value: '' }, allLabel),
    STATES.map((s) => h('option', { value: s, selected: s === current }, s)));
  sel.addEventListener('change', () => onChange(sel.value));
  return h('div', { class: 'field inline' }, h('label', { for: 'state-filter' }, 'Show'), sel);
}
