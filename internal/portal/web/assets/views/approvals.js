import { get, post, query, enc } from '../api.js';
import { h, replace, stateBadge, alertBox, timeEl, topicHref, errorText, field } from '../dom.js';
import { stateFilter } from './requests.js';

// Approvals: requests for the products the caller owns (all, for an
// administrator), pending ones first, each decided with a reason.
export async function approvalsView(main, _params, q, app) {
  const alive = app.alive();
  const state = q.has('state') ? q.get('state') : 'PENDING';
  const list = h('div', { 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading…'));
  replace(main, h('h1', {}, 'Approvals'),
    h('p', { class: 'muted' }, 'Access requests for the products you own. Approving creates exactly the access asked for, until its expiry.'),
    stateFilter(state, (s) => app.navigate(`/approvals${query({ state: s || 'all' })}`)), list);
  let answer;
  try {
    answer = await get(`/api/v1/access-requests${query({ role: 'approver', state: state === 'all' ? '' : state, limit: 200 })}`);
  } catch (err) {
    if (alive()) replace(list, alertBox('Loading the requests failed', err));
    return;
  }
  if (!alive()) return;
  const items = answer.items || [];
  if (!items.length) {
    replace(list, h('p', {}, state === 'PENDING' ? 'Nothing waits for your decision.' : 'No requests.'));
    return;
  }
  replace(list, h('ul', { class: 'cards' }, items.map((r) => h('li', {}, requestCard(r, app)))));
}

function requestCard(r, app) {
  const title = `${r.requester} requests ${r.operation} on ${r.topic}`;
  const card = h('article', { class: 'card approval', 'aria-label': title },
    h('h2', {}, h('span', {}, r.requester), ' requests ', h('strong', {}, r.operation), ' on ', h('a', { href: topicHref(r.topic) }, r.topic), ' ', stateBadge(r.state)),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Reason'), h('dd', {}, r.reason || '—'),
      r.group ? [h('dt', {}, 'Consumer group'), h('dd', {}, r.group)] : null,
      h('dt', {}, 'Requested'), h('dd', {}, timeEl(r.createdAt), r.requesterHost ? ` from ${r.requesterHost}` : ''),
      h('dt', {}, 'Expires'), h('dd', {}, r.expiresAt ? timeEl(r.expiresAt) : 'never'),
      r.decidedBy ? [h('dt', {}, 'Decided by'), h('dd', {}, r.decidedBy, r.decidedAt ? [' at ', timeEl(r.decidedAt)] : '')] : null,
      r.decisionReason ? [h('dt', {}, 'Decision reason'), h('dd', {}, r.decisionReason)] : null));
  if (r.state === 'PENDING') {
    card.append(decisionForm(r, app, false));
  } else if (r.state === 'APPROVED') {
    card.append(decisionForm(r, app, true));
  }
  return card;
}

function decisionForm(r, app, approved) {
  const reason = h('textarea', { id: `reason-${r.id}`, rows: 2 });
  const out = h('p', { role: 'alert', class: 'error', hidden: true });
  const decide = async (action, button) => {
    if (action !== 'approve' && !reason.value.trim()) {
      replace(out, 'Say why: the requester sees your reason.');
      out.hidden = false;
      reason.focus();
      return;
    }
    for (const b of form.querySelectorAll('button')) b.disabled = true;
    try {
      await post(`/api/v1/access-requests/${enc(r.id)}/${action}`, { reason: reason.value.trim() });
      app.toast(`Request ${action === 'approve' ? 'approved' : action === 'decline' ? 'declined' : 'revoked'}.`);
      app.navigate(location.pathname + location.search, { replace: true });
    } catch (err) {
      replace(out, `${button.textContent} failed: ${errorText(err)}`);
      out.hidden = false;
      for (const b of form.querySelectorAll('button')) b.disabled = false;
    }
  };
  const buttons = approved
    ? [h('button', { type: 'button', class: 'danger', onclick: (ev) => decide('revoke', ev.currentTarget) }, 'Revoke')]
    : [h('button', { type: 'button', onclick: (ev) => decide('approve', ev.currentTarget) }, 'Approve'),
      h('button', { type: 'button', class: 'danger', onclick: (ev) => decide('decline', ev.currentTarget) }, 'Decline')];
  const form = h('form', { class: 'decision', 'aria-label': `Decide on the request of ${r.requester}` },
    field('Reason for your decision', reason), out, h('div', { class: 'row' }, buttons));
  form.addEventListener('submit', (ev) => ev.preventDefault());
  return form;
}
