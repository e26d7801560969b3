import { get, query } from '../api.js';
import { h, replace, table, alertBox, timeEl, field, json, topicHref } from '../dom.js';

// The audit log: every governance step, newest first, filtered by topic,
// actor or action.
export async function auditView(main, _params, q, app) {
  const alive = app.alive();
  const params = { topic: q.get('topic') || '', actor: q.get('actor') || '', action: q.get('action') || '' };
  const inputs = {
    topic: h('input', { id: 'audit-topic', name: 'topic', value: params.topic, autocomplete: 'off' }),
    actor: h('input', { id: 'audit-actor', name: 'actor', value: params.actor, placeholder: 'User:alice', autocomplete: 'off' }),
    action: h('input', { id: 'audit-action', name: 'action', value: params.action, placeholder: 'access.approve', autocomplete: 'off' }),
  };
  const form = h('form', { class: 'filters', 'aria-label': 'Filter the audit log' },
    field('Topic', inputs.topic), field('Actor', inputs.actor), field('Action', inputs.action),
    h('button', { type: 'submit' }, 'Filter'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    app.navigate(`/audit${query({ topic: inputs.topic.value.trim(), actor: inputs.actor.value.trim(), action: inputs.action.value.trim() })}`);
  });
  const list = h('div', { 'aria-live': 'polite' }, h('p', { class: 'muted' }, 'Loading…'));
  replace(main, h('h1', {}, 'Audit log'), form, list);
  let answer;
  try {
    answer = await get(`/api/v1/audit${query({ ...params, limit: 200 })}`);
  } catch (err) {
    if (alive()) replace(list, alertBox('Loading the audit log failed', err));
    return;
  }
  if (!alive()) return;
  const items = answer.items || [];
  if (!items.length) {
    replace(list, h('p', {}, 'No audited steps match.'));
    return;
  }
  replace(list, table(null, ['Time', 'Actor', 'From', 'Action', 'Resource', 'Topic', 'Reason', 'Change'],
    items.map((e) => [
      timeEl(e.time), e.actor, e.host || '—', h('code', {}, e.action), e.resource,
      e.topic ? h('a', { href: topicHref(e.topic) }, e.topic) : '—', e.reason || '—',
      e.before || e.after ? h('details', {}, h('summary', {}, 'Before and after'),
        e.before ? [h('h3', {}, 'Before'), json(e.before)] : null, e.after ? [h('h3', {}, 'After'), json(e.after)] : null) : '—',
    ]), { class: 'audit' }));
}
